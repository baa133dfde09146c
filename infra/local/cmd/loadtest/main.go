// Command loadtest measures a running `make run` stack under load, side by side with the
// reference `opa run --server`:
//
//	go run ./infra/local/cmd/loadtest [-c 16] [-d 10s] [-corr request|run] [-path P -input JSON]
//
// It reads .local/endpoints.json, starts opa (the platform's OPA version, built once into the
// user cache) on the same policies and data document as the pdp, and drives in turn opa, the
// pdp (the same policy path and input) and the gateway's policy-refused route (GET
// /v1/audit/streams/<s>/verify with a dev token whose role may not verify), each with c
// connections for d. Every decision the pdp and the gateway answer is attested on
// policy_attestations; a pull subscription made before the run collects them afterwards, and
// the tool reports decisions answered against attestations received. `make load` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/infra/local/loadtest"
	"waooaw.dev/governance/infra/local/opaserver"
	"waooaw.dev/governance/infra/local/stack"
)

// defaultInput is what the gateway's refused route asks the rbac policy: a viewer verifying
// an audit stream, which only governors and auditors may.
const defaultInput = `{"input":{"subject":{"id":"loadtest","type":"user","role":"viewer"},"action":"verify","resource":{"type":"audit_stream","id":"loadtest"}}}`

// headerDecisionID is where the gateway names the decisions behind an answer.
const headerDecisionID = "X-Waooaw-Decision-Id"

type options struct {
	root, state string
	conns       int
	dur         time.Duration
	corr        string
	path, input string
	pdpURL      string
	wait        time.Duration
	warm        time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.root, "root", "", "repository root (default: found from the current folder)")
	flag.StringVar(&o.state, "state", "", "the stack's state folder (default: <root>/.local)")
	flag.IntVar(&o.conns, "c", 16, "concurrent connections per target")
	flag.DurationVar(&o.dur, "d", 10*time.Second, "how long each target is driven")
	flag.StringVar(&o.corr, "corr", "request", "X-Correlation-Id: request (a new one per request) or run (one per target for the whole run, one Pub/Sub ordering key)")
	flag.StringVar(&o.path, "path", "/v1/data/waooaw/rbac/decision", "the data API path asked of the pdp and opa")
	flag.StringVar(&o.input, "input", defaultInput, "the request body for the pdp and opa")
	flag.StringVar(&o.pdpURL, "pdp", "", "the pdp's URL (default: the stack's)")
	flag.DurationVar(&o.warm, "warm", 3*time.Second, "warm-up per target before it is measured (the Java emulators compile their hot paths in the first seconds)")
	flag.DurationVar(&o.wait, "wait", 30*time.Second, "after the load, how long to keep waiting for attestations once none arrives")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if o.corr != "request" && o.corr != "run" {
		return fmt.Errorf("-corr %q: want request or run", o.corr)
	}
	if err := resolve(&o); err != nil {
		return err
	}
	ep, err := stack.ReadEndpoints(o.state)
	if err != nil {
		return fmt.Errorf("is `make run` up? %w", err)
	}
	pdpURL := o.pdpURL
	if pdpURL == "" {
		pdpURL = ep.Functions["pdp"]
	}
	if pdpURL == "" || ep.Gateway == "" || ep.PubSub == "" {
		return fmt.Errorf("%s names no pdp, gateway or pubsub", filepath.Join(o.state, stack.EndpointsFile))
	}
	token, err := viewerToken(o)
	if err != nil {
		return err
	}

	bin, err := opaserver.Binary(ctx)
	if err != nil {
		return err
	}
	bundle, err := os.MkdirTemp("", "loadtest-opa-")
	if err != nil {
		return fmt.Errorf("bundle folder: %w", err)
	}
	defer os.RemoveAll(bundle)
	if err := opaserver.WriteBundle(bundle, nil); err != nil {
		return err
	}
	opa, err := opaserver.Start(ctx, bin, bundle)
	if err != nil {
		return err
	}
	defer opa.Stop()

	os.Setenv("PUBSUB_EMULATOR_HOST", ep.PubSub)
	client, err := pubsub.NewClient(ctx, stack.Project)
	if err != nil {
		return fmt.Errorf("pubsub.NewClient: %w", err)
	}
	defer client.Close()
	atts, err := loadtest.Subscribe(ctx, client, stack.Project, "policy_attestations", "loadtest")
	if err != nil {
		return err
	}
	defer atts.Close(context.WithoutCancel(ctx))

	runID := fmt.Sprintf("lt%d", time.Now().UnixNano())
	corr := func(target string) func(w, i int) string {
		if o.corr == "run" {
			id := runID + "-" + target
			return func(int, int) string { return id }
		}
		return func(w, i int) string { return fmt.Sprintf("%s-%s-%d-%d", runID, target, w, i) }
	}
	body := []byte(o.input)
	targets := []loadtest.Target{
		{Name: "opa run --server", Method: http.MethodPost, URL: opa.URL + o.path, Body: body, Status: http.StatusOK},
		{Name: "pdp", Method: http.MethodPost, URL: strings.TrimSuffix(pdpURL, "/") + o.path, Body: body, Status: http.StatusOK,
			Correlation: corr("pdp"), DecisionIDs: loadtest.BodyDecisionID},
		{Name: "gateway 403 (verify as viewer)", Method: http.MethodGet, URL: ep.Gateway + "/v1/audit/streams/loadtest/verify",
			Header: http.Header{"Authorization": {"Bearer " + token}}, Status: http.StatusForbidden,
			Correlation: corr("gw"), DecisionIDs: headerIDs},
	}
	fmt.Fprintf(out, "load: %d connections x %s per target, X-Correlation-Id per %s; pdp %s, gateway %s, opa v%s %s\n",
		o.conns, o.dur, o.corr, pdpURL, ep.Gateway, opaserver.Version, opa.URL)
	var results []loadtest.Result
	for _, t := range targets {
		// A warm-up opens the connections, fills caches and lets the Pub/Sub emulator's JIT
		// compile what the load runs; its decisions are attested too, so their ids join the
		// count.
		warm := loadtest.Run(ctx, t, o.conns, o.warm)
		if warm.Answered == 0 {
			return fmt.Errorf("%s: no answer during warm-up: %s", t.Name, warm.FirstError)
		}
		r := loadtest.Run(ctx, t, o.conns, o.dur)
		r.DecisionIDs = append(r.DecisionIDs, warm.DecisionIDs...)
		results = append(results, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	loadtest.WriteTable(out, results, 0, 1)

	var ids []string
	for _, r := range results {
		ids = append(ids, r.DecisionIDs...)
	}
	c, err := atts.Await(ctx, ids, o.wait)
	fmt.Fprintf(out, "\nattestations on policy_attestations: %d received of %d decisions answered (pdp and gateway, warm-up included)", c.Received, c.Want)
	fmt.Fprintf(out, "; the last %.1fs after the load ended; %d repeats, %d other decisions\n", c.Waited.Seconds(), c.Repeats, c.Others)
	if err != nil {
		return err
	}
	if c.Received != c.Want {
		return errors.New("attestations missing")
	}
	return nil
}

func headerIDs(h http.Header, _ []byte) []string {
	v := h.Get(headerDecisionID)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// viewerToken is a dev token the gateway accepts, for a role the rbac policy refuses to
// verify, as `waooaw-local token -role viewer -subject loadtest` prints.
func viewerToken(o options) (string, error) {
	spec, err := stack.LoadSpec(o.root)
	if err != nil {
		return "", err
	}
	iss, err := stack.Issuer(spec, o.state)
	if err != nil {
		return "", err
	}
	return iss.Token("loadtest", "viewer", "", time.Hour)
}

// resolve finds the repository root (the folder holding go.work) and the state folder.
func resolve(o *options) error {
	if o.root == "" {
		dir, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("working folder: %w", err)
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return errors.New("no go.work above the current folder; pass -root")
			}
			dir = parent
		}
		o.root = dir
	}
	if o.state == "" {
		o.state = filepath.Join(o.root, ".local")
	}
	return nil
}
