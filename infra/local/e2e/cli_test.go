package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"waooaw.dev/governance/infra/local/apiclient"
	"waooaw.dev/governance/infra/local/stack"
)

// The `waooaw` CLI driven as its users drive it: the binary built from infra/cli, logged in
// through the running stack's development issuer, its exit codes and -o json read as a
// script reads them. apiclient is used only for what the CLI does not do: binding the
// stack's webhook client, the agent's healthy report, the Workflows emulator's clock.

var (
	cliOnce sync.Once
	cliBin  string
	cliErr  error
)

// waooawBinary builds the CLI once for the package.
func waooawBinary(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "waooaw-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliBin = filepath.Join(dir, "waooaw")
		build := exec.Command("go", "build", "-o", cliBin, "./infra/cli/cmd/waooaw")
		build.Dir = shared.root
		if b, err := build.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("build waooaw: %w\n%s", err, b)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliBin
}

// cliUser is one person's CLI: a config file of their own.
type cliUser struct {
	bin, config, dir string
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// command prepares a CLI run: in a folder of its own, so no .local/endpoints.json of the
// checkout is found, and with a config folder of its own.
func (u cliUser) command(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, u.bin, append([]string{"--config", u.config}, args...)...)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+u.dir, "HOME="+u.dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	return cmd, &out, &errb
}

func (u cliUser) run(t *testing.T, ctx context.Context, args ...string) cliResult {
	t.Helper()
	cmd, out, errb := u.command(ctx, args...)
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return cliResult{0, out.String(), errb.String()}
	case errors.As(err, &ee):
		return cliResult{ee.ExitCode(), out.String(), errb.String()}
	}
	t.Fatalf("waooaw %v: %v", args, err)
	return cliResult{}
}

// ok runs a command that must exit 0 and returns its stdout.
func (u cliUser) ok(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	r := u.run(t, ctx, args...)
	if r.code != 0 {
		t.Fatalf("waooaw %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// jsonOf runs a command with -o json and decodes its output.
func (u cliUser) jsonOf(t *testing.T, ctx context.Context, out any, args ...string) {
	t.Helper()
	b := u.ok(t, ctx, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(b), out); err != nil {
		t.Fatalf("waooaw %s -o json printed %q: %v", strings.Join(args, " "), b, err)
	}
}

// cliLogin logs a user in with a development token from the running stack.
func cliLogin(t *testing.T, ctx context.Context, role, subject, engagement string) cliUser {
	t.Helper()
	dir := t.TempDir()
	u := cliUser{bin: waooawBinary(t), config: filepath.Join(dir, "waooaw", "config.json"), dir: dir}
	args := []string{"--endpoints", filepath.Join(shared.state, stack.EndpointsFile), "login", "--local", "--role", role, "--subject", subject}
	if engagement != "" {
		args = append(args, "--engagement", engagement)
	}
	var who struct{ Role, Subject, Engagement string }
	u.jsonOf(t, ctx, &who, args...)
	if who.Role != role || who.Subject != subject || who.Engagement != engagement {
		t.Fatalf("logged in as %+v; want %s %s of %q", who, role, subject, engagement)
	}
	if info, err := os.Stat(u.config); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("config %s: %v %v; want mode 0600", u.config, info, err)
	}
	return u
}

// cliParty is an engagement set up through the CLI, with its people logged in.
type cliParty struct {
	eng                  string
	admin, gov, mgr, vwr cliUser
}

func newCLIParty(t *testing.T, ctx context.Context) cliParty {
	t.Helper()
	p := cliParty{eng: randomID("eng-cli-")}
	gov := "gov-" + p.eng
	p.admin = cliLogin(t, ctx, "admin", "admin-cli", "")
	var set struct {
		EngagementID string `json:"engagement_id"`
		Governor     string `json:"governor"`
	}
	p.admin.jsonOf(t, ctx, &set, "engagements", "create", p.eng, "--governor", gov)
	if set.EngagementID != p.eng || set.Governor != gov {
		t.Fatalf("engagements create answered %+v", set)
	}
	// Not a CLI command: the stack's webhook client reports the agents' health.
	admin, err := shared.client().As("admin", "admin-cli", "")
	if err != nil {
		t.Fatal(err)
	}
	if code, err := admin.BindClient(ctx, p.eng, shared.client().WebhookClient); err != nil || code != http.StatusCreated {
		t.Fatalf("bind the webhook client: %d %v", code, err)
	}
	p.gov = cliLogin(t, ctx, "governor", gov, p.eng)
	p.mgr = cliLogin(t, ctx, "manager", "mgr-"+p.eng, p.eng)
	p.vwr = cliLogin(t, ctx, "viewer", "viewer-"+p.eng, p.eng)
	return p
}

// requestFile writes a request as YAML, the way a requester keeps one.
func requestFile(t *testing.T, spec, wow map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(map[string]any{"spec": spec, "way_of_working": wow})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "request.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// create submits a request file and returns its id; a second submission of the same file
// answers the same request (the key is derived from the content).
func (p cliParty) create(t *testing.T, ctx context.Context, file string) string {
	t.Helper()
	var sub, again struct {
		RequestID string `json:"request_id"`
		Status    string `json:"status"`
	}
	p.mgr.jsonOf(t, ctx, &sub, "requests", "create", "-f", file)
	if sub.RequestID == "" || sub.Status != "running" {
		t.Fatalf("requests create answered %+v", sub)
	}
	p.mgr.jsonOf(t, ctx, &again, "requests", "create", "-f", file)
	if again.RequestID != sub.RequestID {
		t.Fatalf("the same file submitted twice made %s and %s; want one request", sub.RequestID, again.RequestID)
	}
	return sub.RequestID
}

// cliRequest is what `requests get -o json` prints.
type cliRequest struct {
	RequestID     string                   `json:"request_id"`
	AgentID       string                   `json:"agent_id"`
	Status        string                   `json:"status"`
	Stages        []apiclient.Stage        `json:"stages"`
	Approval      *apiclient.Approval      `json:"approval"`
	Compensations []apiclient.Compensation `json:"compensations"`
}

// watch runs `requests get ID --watch -o json` to its end, meanwhile sending the agent's
// healthy report once the request is deploying, and returns every state the watch printed.
func (p cliParty) watch(t *testing.T, ctx context.Context, u cliUser, id string, extra ...string) []cliRequest {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd, out, errb := u.command(wctx, append([]string{"requests", "get", id, "--watch", "--interval", "100ms", "-o", "json"}, extra...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	mgr, err := shared.client().As("manager", "mgr-"+p.eng, p.eng)
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("waooaw requests get --watch: %v\nstdout:\n%s\nstderr:\n%s", err, out, errb)
			}
			var states []cliRequest
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				var r cliRequest
				if err := json.Unmarshal([]byte(line), &r); err != nil {
					t.Fatalf("watch printed %q, not a JSON line: %v", line, err)
				}
				states = append(states, r)
			}
			return states
		case <-ctx.Done():
			t.Fatalf("the watch did not end: %v\nstdout:\n%s\nstderr:\n%s", ctx.Err(), out, errb)
		case <-time.After(100 * time.Millisecond):
		}
		if sent {
			continue
		}
		if r, err := mgr.Get(ctx, id); err == nil && r.Status == "deploying" && r.AgentID != "" {
			sent = mgr.Health(ctx, r.AgentID, p.eng, "healthy", time.Now()) == nil
		}
	}
}

// decide decides as the Governor; a Governor set a moment ago may take the policy a few
// seconds to see, which the CLI reports as the API's refusal (exit 1).
func (p cliParty) decide(t *testing.T, ctx context.Context, decision, approvalID string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := p.gov.run(t, ctx, "approvals", decision, approvalID, "--reason", "cli e2e: "+decision, "-o", "json")
		if r.code == 1 && strings.Contains(r.stderr, "no Governor on record") && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var d apiclient.Decided
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil || d.ApprovalID != approvalID || d.Decision != decision || d.DecidedBy == "" {
			t.Fatalf("approvals %s %s: %s", decision, approvalID, r)
		}
		return
	}
}

// pending lists the Governor's pending approvals through the CLI, until id's shows.
func (p cliParty) pending(t *testing.T, ctx context.Context, requestID string) apiclient.Approval {
	t.Helper()
	for {
		var list struct {
			Approvals []apiclient.Approval `json:"approvals"`
		}
		p.gov.jsonOf(t, ctx, &list, "approvals", "list")
		if i := slices.IndexFunc(list.Approvals, func(a apiclient.Approval) bool { return a.RequestID == requestID }); i >= 0 {
			return list.Approvals[i]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pending approval for %s in %+v", requestID, list.Approvals)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// verified checks the engagement's chain through `audit verify` (exit 0, "verified") and
// that `audit entries` holds each action named.
func (p cliParty) verified(t *testing.T, ctx context.Context, actions ...string) {
	t.Helper()
	for {
		var page struct {
			Entries []apiclient.Entry `json:"entries"`
		}
		p.gov.jsonOf(t, ctx, &page, "audit", "entries", p.eng)
		var missing []string
		for _, a := range actions {
			if !slices.ContainsFunc(page.Entries, func(e apiclient.Entry) bool { return e.Action == a }) {
				missing = append(missing, a)
			}
		}
		if len(missing) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("audit entries %s still lacks %v", p.eng, missing)
		case <-time.After(200 * time.Millisecond):
		}
	}
	out := p.gov.ok(t, ctx, "audit", "verify", p.eng)
	if !strings.Contains(out, "chain verified to seq") {
		t.Fatalf("audit verify %s printed:\n%s", p.eng, out)
	}
	var rep struct {
		OK      bool  `json:"ok"`
		Entries int64 `json:"entries"`
	}
	p.gov.jsonOf(t, ctx, &rep, "audit", "verify", p.eng)
	if !rep.OK || rep.Entries < int64(len(actions)) {
		t.Fatalf("audit verify %s -o json: %+v", p.eng, rep)
	}
}

// TestCLI drives the blocking path through the CLI alone, with its refusals and usage
// errors. The veto path moves the clock, so it runs in TestAgentCreationOnTheClock
// (testCLIVeto).
func TestCLI(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	p := newCLIParty(t, ctx)

	t.Run("wrong command lines print help on stderr and exit 2", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			says string
		}{
			{[]string{"approvals", "approve", "apr-x"}, `required flag(s) "reason" not set`},
			{[]string{"requests", "get", "req-x", "--bogus"}, "unknown flag: --bogus"},
			{[]string{"requests", "create"}, `required flag(s) "file" not set`},
			{[]string{"audit", "verify"}, "takes STREAM"},
			{[]string{"engagements"}, "needs a subcommand"},
		} {
			r := p.gov.run(t, ctx, c.args...)
			if r.code != 2 || !strings.Contains(r.stderr, c.says) || !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
				t.Errorf("waooaw %s: %s; want exit 2, %q and the help on stderr", strings.Join(c.args, " "), r, c.says)
			}
		}
	})

	t.Run("blocking path: request from YAML, watch, approvals list, approve, deployed", func(t *testing.T) {
		id := p.create(t, ctx, requestFile(t, apiclient.LowRiskSpec(p.eng, "CLI catalogue writer"), apiclient.WayOfWorking()))
		states := p.watch(t, ctx, p.gov, id, "--until", "awaiting_approval")
		last := states[len(states)-1]
		if last.Status != "awaiting_approval" || last.Approval == nil || last.Approval.Kind != "blocking" {
			t.Fatalf("watch --until awaiting_approval ended at %+v", last)
		}
		ap := p.pending(t, ctx, id)
		if ap.ApprovalID != last.Approval.ApprovalID || ap.Kind != "blocking" || ap.Deadline == "" {
			t.Fatalf("approvals list shows %+v; want the request's %+v", ap, last.Approval)
		}
		table := p.gov.ok(t, ctx, "approvals", "list")
		if !strings.Contains(table, "APPROVAL") || !strings.Contains(table, ap.ApprovalID) {
			t.Errorf("approvals list table:\n%s", table)
		}

		// A viewer of the engagement may see, not decide: the API's reason, exit 1.
		r := p.vwr.run(t, ctx, "approvals", "approve", ap.ApprovalID, "--reason", "not mine to give")
		if r.code != 1 || !strings.Contains(r.stderr, "role viewer") || !strings.Contains(r.stderr, "may not approve") || !strings.Contains(r.stderr, "HTTP 403") {
			t.Fatalf("a viewer's approve: %s; want exit 1 with the policy's reason", r)
		}

		p.decide(t, ctx, "approve", ap.ApprovalID)
		states = p.watch(t, ctx, p.mgr, id)
		final := states[len(states)-1]
		var names []string
		for _, s := range final.Stages {
			names = append(names, s.Name+":"+s.Outcome)
		}
		if final.Status != "deployed" || final.AgentID == "" || !slices.Contains(names, "governor_approval:approved") || !slices.Contains(names, "deploy:deployed") {
			t.Fatalf("the watch ended at %s %v agent %q; want deployed after the approval", final.Status, names, final.AgentID)
		}
		page := p.mgr.ok(t, ctx, "requests", "get", id)
		for _, s := range []string{"deployed", "governor_approval", "approved", final.AgentID} {
			if !strings.Contains(page, s) {
				t.Errorf("requests get table lacks %q:\n%s", s, page)
			}
		}
		p.verified(t, ctx, steps("stage_6_governor_approval", "stage_7_deploy")...)
	})
}

// testCLIVeto drives the veto path through the CLI: a seed-approved request's veto window,
// the veto with its reason at hour 23, the undo steps 7, 5, 4, 3 followed by the watch, and a
// verified chain.
func testCLIVeto(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	p := newCLIParty(t, ctx)
	spec, wow := apiclient.SeedRequest(p.eng, randomID("CLI clinic FAQ "))
	id := p.create(t, ctx, requestFile(t, spec, wow))
	states := p.watch(t, ctx, p.gov, id, "--until", "veto_window,awaiting_approval")
	last := states[len(states)-1]
	if last.Status != "veto_window" || last.Approval == nil || last.Approval.Kind != "veto_window" || last.Approval.SeedID == "" {
		t.Fatalf("seed request ended its watch at %s %+v; want an open veto window citing a seed", last.Status, last.Approval)
	}
	ap := p.pending(t, ctx, id)
	if ap.Kind != "veto_window" || ap.SeedID != last.Approval.SeedID {
		t.Fatalf("approvals list shows %+v; want the veto window citing %s", ap, last.Approval.SeedID)
	}
	// A veto window takes a veto only: the API's words, exit 1.
	if r := p.gov.run(t, ctx, "approvals", "approve", ap.ApprovalID, "--reason", "fine"); r.code != 1 || !strings.Contains(r.stderr, "takes veto") {
		t.Fatalf("approve on a veto window: %s; want exit 1 saying it takes veto", r)
	}
	advance(t, ctx, 23*time.Hour)
	p.decide(t, ctx, "veto", ap.ApprovalID)
	states = p.watch(t, ctx, p.gov, id)
	final := states[len(states)-1]
	var undone []int
	for _, c := range final.Compensations {
		undone = append(undone, c.Stage)
	}
	if final.Status != "vetoed" || !slices.Equal(undone, []int{7, 5, 4, 3}) {
		t.Fatalf("the watch ended at %s with undo steps %v; want vetoed, 7, 5, 4, 3", final.Status, undone)
	}
	p.verified(t, ctx, steps("stage_6_governor_approval", "stage_7_deploy",
		"undo_stage_7_deploy", "undo_stage_5_ethics_review", "undo_stage_4_architecture_review", "undo_stage_3_genesis_certification")...)
}
