// Command demo runs one agent request through the precedent-seed path against the running
// local stack (`make run CLOCK=virtual`), printing each stage as it happens: submitted,
// stages 1–6 (auto-approved by seed GEN-004), deployed after a healthy report, the veto
// window, a veto at hour 23, the compensation saga, and the verified audit chain.
//
//	make demo              (go run ./infra/local/cmd/demo)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/infraspec"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(out io.Writer) error {
	root := flag.String("root", "", "repository root (default: found from the current folder)")
	state := flag.String("state", "", "the stack's state folder (default <root>/.local)")
	vetoAt := flag.Duration("veto-at", 23*time.Hour, "when, into the veto window, the Governor vetoes")
	flag.Parse()
	if *root == "" {
		r, err := infraspec.RepoRoot(".")
		if err != nil {
			return err
		}
		*root = r
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := apiclient.OpenLocal(*root, *state)
	if err != nil {
		return err
	}
	start, err := l.Clock(ctx)
	if err != nil {
		return fmt.Errorf("workflows emulator clock: %w", err)
	}
	if _, err := l.Advance(ctx, 0); err != nil {
		return fmt.Errorf("the Workflows emulator does not run on its virtual clock (start the stack with make run CLOCK=virtual): %w", err)
	}
	suffix := randomHex(3)
	engagement, governor, manager := "demo-"+suffix, "governor-"+suffix, "manager-"+suffix
	admin, err := l.As("admin", "demo-admin", "")
	if err != nil {
		return err
	}
	gov, err := l.As("governor", governor, engagement)
	if err != nil {
		return err
	}
	mgr, err := l.As("manager", manager, engagement)
	if err != nil {
		return err
	}
	say := func(format string, args ...any) {
		now, _ := l.Clock(ctx)
		fmt.Fprintf(out, "[+%-8s] %s\n", now.Sub(start).Round(time.Second), fmt.Sprintf(format, args...))
	}

	if _, err := admin.CreateEngagement(ctx, engagement, governor); err != nil {
		return fmt.Errorf("create engagement: %w", err)
	}
	if _, err := admin.BindClient(ctx, engagement, l.WebhookClient); err != nil {
		return fmt.Errorf("bind the webhook client: %w", err)
	}
	say("engagement %s, Governor %s, health reported by client %s", engagement, governor, l.WebhookClient)
	// The governor policy reads engagements as data; give it its few seconds.
	time.Sleep(500 * time.Millisecond)

	spec, wow := apiclient.SeedRequest(engagement, "Clinic FAQ writer "+suffix)
	sub, err := mgr.Submit(ctx, "demo-"+suffix, spec, wow)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	say("submitted %s (execution %s)", sub.RequestID, sub.Execution)

	shown := 0
	healthSent := false
	show := func(r apiclient.Request) {
		for ; shown < len(r.Stages); shown++ {
			s := r.Stages[shown]
			say("stage %d %-20s %-18s %s", s.Stage, s.Name, s.Outcome, strings.Join(s.Reasons, "; "))
		}
	}
	r, err := mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool {
		show(r)
		if r.Status == "deploying" && r.AgentID != "" && !healthSent {
			if err := l.Health(ctx, r.AgentID, engagement, "healthy", time.Now()); err == nil {
				healthSent = true
				say("agent %s reports healthy through the health webhook", r.AgentID)
			}
		}
		return r.Status == "veto_window" || terminal(r.Status)
	})
	if err != nil {
		return err
	}
	if r.Status != "veto_window" || r.Approval == nil {
		return fmt.Errorf("request ended %s (%s) instead of opening a veto window", r.Status, r.Reason)
	}
	say("deployed on seed %s; veto window %s open until %s", r.Approval.SeedID, r.Approval.ApprovalID, r.Approval.Deadline)

	if _, err := l.Advance(ctx, *vetoAt); err != nil {
		return err
	}
	say("the Workflows emulator's clock moved %s", *vetoAt)
	d, err := gov.Decide(ctx, r.Approval.ApprovalID, "veto", "demo: the clinic asked for a human-written FAQ")
	if err != nil {
		return fmt.Errorf("veto: %w", err)
	}
	say("%s: %s by %s", d.ApprovalID, d.Decision, d.DecidedBy)

	done := 0
	r, err = mgr.WaitFor(ctx, sub.RequestID, func(r apiclient.Request) bool {
		show(r)
		for ; done < len(r.Compensations); done++ {
			say("undone: stage %d", r.Compensations[done].Stage)
		}
		return r.Status == "vetoed" && len(r.Compensations) >= 4
	})
	if err != nil {
		return err
	}
	say("request %s: %s", r.RequestID, r.Status)

	var rep apiclient.Report
	var entries []apiclient.Entry
	err = waitUntil(ctx, func() (bool, error) {
		var err error
		if entries, err = gov.Entries(ctx, engagement, 0); err != nil {
			return false, err
		}
		// A verify walks the whole stream and each caller has a few walks a minute: walk
		// once the saga's last entry is there.
		if !hasAction(entries, "undo_stage_3_genesis_certification") {
			return false, nil
		}
		if rep, err = gov.Verify(ctx, engagement); err != nil {
			return false, err
		}
		return rep.OK && rep.Entries >= int64(len(entries)) && hasAction(entries, "undo_stage_3_genesis_certification"), nil
	})
	if err != nil {
		return fmt.Errorf("audit stream %s: %w", engagement, err)
	}
	say("audit stream %s verified: %d entries, chain intact", engagement, rep.Entries)
	for _, e := range entries {
		fmt.Fprintf(out, "    #%-3d %-36s %-18s %s\n", e.Seq, e.Action, e.ActorID, e.Result)
	}
	return nil
}

func terminal(s string) bool {
	switch s {
	case "deployed", "rejected", "denied", "vetoed", "failed":
		return true
	}
	return false
}

func hasAction(es []apiclient.Entry, action string) bool {
	for _, e := range es {
		if e.Action == action {
			return true
		}
	}
	return false
}

func waitUntil(ctx context.Context, f func() (bool, error)) error {
	var last error
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
