package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/stack"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
)

// binary builds waooaw-local once per test binary: the tests drive it as a user would, as a
// separate process receiving real signals.
var binary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "waooaw-local-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "waooaw-local")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func build(tb testing.TB) (bin, root string) {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatal(err)
	}
	root, err = infraspec.RepoRoot(".")
	if err != nil {
		tb.Fatal(err)
	}
	return bin, root
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// groupMembers lists the live processes of the given process groups, by reading /proc.
func groupMembers(t *testing.T, pgids map[string]int) map[int]string {
	t.Helper()
	want := map[int]bool{}
	for _, g := range pgids {
		want[g] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 {
			continue
		}
		pgrp, _ := strconv.Atoi(fields[2])
		if want[pgrp] && fields[0] != "Z" {
			out[pid] = s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		}
	}
	return out
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// runningStack is a `waooaw-local run` child process on a temporary state folder.
type runningStack struct {
	cmd     *exec.Cmd
	state   string
	out     *syncBuffer
	exited  chan error
	stopped bool
	ep      *stack.Endpoints
	pids    *stack.Pids
}

// startStack starts the stack and waits for its endpoints.json; cleanup interrupts it if the
// test did not.
func startStack(tb testing.TB, bin, root string) *runningStack {
	tb.Helper()
	s := &runningStack{state: tb.TempDir(), out: &syncBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, "run", "-root", root, "-state", s.state)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { s.exited <- s.cmd.Wait() }()
	tb.Cleanup(func() {
		if !s.stopped {
			s.cmd.Process.Signal(syscall.SIGINT)
			<-s.exited
		}
	})
	deadline := time.Now().Add(3 * time.Minute)
	for {
		var err error
		if s.ep, err = stack.ReadEndpoints(s.state); err == nil {
			break
		}
		select {
		case err := <-s.exited:
			s.stopped = true
			tb.Fatalf("waooaw-local run exited before it was up (%v):\n%s", err, s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no endpoints.json after 3 minutes:\n%s", s.out.String())
		}
	}
	var err error
	if s.pids, err = stack.ReadPids(s.state); err != nil {
		tb.Fatal(err)
	}
	return s
}

// interrupt sends SIGINT (what Ctrl-C sends) and waits for the stack to exit.
func (s *runningStack) interrupt(tb testing.TB) {
	tb.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		tb.Fatal(err)
	}
	select {
	case err := <-s.exited:
		s.stopped = true
		if err != nil {
			tb.Errorf("run exited with %v after SIGINT:\n%s", err, s.out.String())
		}
	case <-time.After(45 * time.Second):
		tb.Fatalf("run still up 45s after SIGINT:\n%s", s.out.String())
	}
}

// waitForVerifiedStream asks the gateway, with a token of role from the stack's issuer, to
// verify stream until it holds entries entries, and fails unless the chain is intact.
func (s *runningStack) waitForVerifiedStream(t *testing.T, bin, root, role, stream string, entries int) {
	t.Helper()
	tok, err := exec.Command(bin, "token", "-root", root, "-state", s.state, "-role", role, "-subject", role+"-1", "-engagement", stream).Output()
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, s.ep.Gateway+"/v1/audit/streams/"+stream+"/verify", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			OK       bool   `json:"ok"`
			Entries  int    `json:"entries"`
			HeadHash string `json:"head_hash"`
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		last = resp.Status + " " + string(body)
		if resp.StatusCode == http.StatusOK && json.Unmarshal(body, &rep) == nil && rep.Entries == entries {
			if !rep.OK || len(rep.HeadHash) != 64 {
				t.Fatalf("stream %s does not verify: %s", stream, body)
			}
			return
		}
	}
	t.Fatalf("stream %s never held %d entries; gateway last said %s", stream, entries, last)
}

// TestRun starts the stack once and checks what a user relies on, ending with Ctrl-C.
func TestRun(t *testing.T) {
	bin, root := build(t)
	s := startStack(t, bin, root)
	cmd, state, ep, pids := s.cmd, s.state, s.ep, s.pids
	if pids.Pid != cmd.Process.Pid {
		t.Errorf("pids.json names pid %d, the stack is %d", pids.Pid, cmd.Process.Pid)
	}
	members := groupMembers(t, pids.Groups)
	sawJava := false
	for _, comm := range members {
		sawJava = sawJava || comm == "java"
	}
	if !sawJava {
		t.Fatalf("no java process among the stack's process groups %v: %v", pids.Groups, members)
	}

	t.Run("endpoints answer", func(t *testing.T) {
		for _, name := range []string{"gateway", "auditor"} {
			if ep.Functions[name] == "" {
				t.Errorf("endpoints.json has no function %q: %+v", name, ep)
			}
		}
		if ep.Gateway == "" || ep.Gateway != ep.Functions["gateway"] {
			t.Errorf("gateway = %q, functions.gateway = %q", ep.Gateway, ep.Functions["gateway"])
		}
		urls := map[string]string{"firestore": "http://" + ep.Firestore, "pubsub": "http://" + ep.PubSub, "jwks": ep.JWKS, "workflows": ep.Workflows}
		for name, u := range ep.Functions {
			urls["function "+name] = u
		}
		client := &http.Client{Timeout: 5 * time.Second}
		for name, u := range urls {
			if !strings.HasPrefix(u, "http://127.0.0.1:") {
				t.Errorf("%s: %q is not a loopback URL", name, u)
				continue
			}
			resp, err := client.Get(u)
			if err != nil {
				t.Errorf("%s at %s does not answer: %v", name, u, err)
				continue
			}
			resp.Body.Close()
		}
	})

	// Every workflows/*.yaml is deployed to the Workflows emulator, which answers Google's API.
	t.Run("workflows are deployed", func(t *testing.T) {
		spec, err := stack.LoadSpec(root)
		if err != nil {
			t.Fatal(err)
		}
		files, err := filepath.Glob(filepath.Join(root, "workflows", "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ep.Workflows + "/v1/" + stack.WorkflowsParent(spec) + "/workflows")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Workflows []struct {
				Name string `json:"name"`
			} `json:"workflows"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&list) != nil {
			t.Fatalf("list workflows: %s", resp.Status)
		}
		if len(list.Workflows) != len(files) {
			t.Fatalf("%d workflows deployed, %d files in workflows/", len(list.Workflows), len(files))
		}
	})

	t.Run("second run refuses", func(t *testing.T) {
		var stderr bytes.Buffer
		second := exec.Command(bin, "run", "-root", root, "-state", state)
		second.Stderr = &stderr
		done := make(chan error, 1)
		if err := second.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- second.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() == 0 {
				t.Fatalf("second run: %v, want a non-zero exit", err)
			}
		case <-time.After(30 * time.Second):
			second.Process.Signal(syscall.SIGINT)
			<-done
			t.Fatal("second run kept running")
		}
		msg := stderr.String()
		if !strings.Contains(msg, "already running") || !strings.Contains(msg, strconv.Itoa(cmd.Process.Pid)) {
			t.Errorf("second run says %q; want it to name the running pid %d", msg, cmd.Process.Pid)
		}
	})

	t.Run("token is accepted", func(t *testing.T) {
		token := func(role string) string {
			t.Helper()
			b, err := exec.Command(bin, "token", "-root", root, "-state", state, "-role", role, "-subject", "user-1", "-engagement", "eng-1").Output()
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			return strings.TrimSpace(string(b))
		}
		governor := token("governor")
		spec, err := stack.LoadSpec(root)
		if err != nil {
			t.Fatal(err)
		}
		gw, _ := spec.Function("gateway")
		keys, err := auth.NewJWKS(ep.JWKS)
		if err != nil {
			t.Fatal(err)
		}
		v, err := auth.NewVerifier(gw.Env["WAOOAW_JWT_ISSUER"], gw.Env["WAOOAW_JWT_AUDIENCE"], keys)
		if err != nil {
			t.Fatal(err)
		}
		claims, err := v.Verify(context.Background(), governor)
		if err != nil {
			t.Fatalf("token does not verify against the served JWKS: %v", err)
		}
		if claims.Subject != "user-1" || claims.Role != "governor" || claims.Engagement != "eng-1" {
			t.Errorf("claims = %+v", claims)
		}

		// The gateway itself: a good token gets past authentication, a tampered one does not.
		cases := []struct {
			name      string
			token     string
			want401   bool
			forbidden bool
		}{
			{"governor token", governor, false, false},
			{"tampered token", governor[:len(governor)-4] + "AAAA", true, false},
			{"no token", "", true, false},
		}
		for _, c := range cases {
			req, _ := http.NewRequest(http.MethodGet, ep.Gateway+"/v1/audit/streams/eng-1/verify", nil)
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			resp.Body.Close()
			if got401 := resp.StatusCode == http.StatusUnauthorized; got401 != c.want401 {
				t.Errorf("%s: gateway answered %s", c.name, resp.Status)
			}
		}
	})

	// The whole wiring at once: an event published to the stack's Pub/Sub is pushed to the
	// auditor (push endpoint, FUNCTION_TARGET, project), appended in the stack's Firestore,
	// and the gateway, reading the same Firestore, verifies the stream.
	t.Run("audit event flows through push to the gateway", func(t *testing.T) {
		ctx := context.Background()
		t.Setenv("PUBSUB_EMULATOR_HOST", ep.PubSub)
		client, err := pubsub.NewClient(ctx, stack.Project)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		pub := events.NewPubSub(client)
		defer pub.Close()
		stream := "eng-e2e-" + strconv.Itoa(os.Getpid())
		e, err := events.New("waooaw.audit.recorded", "//test/waooaw-local", "system:test", map[string]any{
			"stream": stream, "event_type": "decision", "actor_id": "gov-1", "actor_type": "human", "action": "approve",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, events.TopicAuditEvents, e); err != nil {
			t.Fatalf("publish: %v", err)
		}
		s.waitForVerifiedStream(t, bin, root, "governor", stream, 1)
	})

	// The slice a client sees: a signed webhook to the gateway becomes a health event and an
	// audit event; the auditor appends it to the engagement's chain; the gateway verifies it.
	t.Run("signed webhook reaches the verified audit chain", func(t *testing.T) {
		secret, err := os.ReadFile(filepath.Join(state, "secrets", "webhook-"+stack.WebhookClient))
		if err != nil {
			t.Fatal(err)
		}
		stream := "eng-hook-" + strconv.Itoa(os.Getpid())
		body := []byte(`{"agent_id":"agent-1","engagement_id":"` + stream + `","status":"degraded","check_type":"http","observed_at":"2026-11-26T10:00:00Z"}`)
		req, _ := http.NewRequest(http.MethodPost, ep.Gateway+"/v1/webhooks/health", bytes.NewReader(body))
		auth.SignWebhook(req.Header, stack.WebhookClient, secret, body, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var accepted struct {
			EventID string `json:"event_id"`
		}
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(answer, &accepted) != nil || accepted.EventID == "" {
			t.Fatalf("webhook answered %s %s", resp.Status, answer)
		}
		s.waitForVerifiedStream(t, bin, root, "auditor", stream, 1)
	})

	// The gateway is the policy enforcement point: a viewer is refused with the policy's
	// reason, and every decision, refusal or allow, is attested on policy_attestations under
	// the decision id the answer carries.
	t.Run("policy decisions are enforced and attested", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		t.Setenv("PUBSUB_EMULATOR_HOST", ep.PubSub)
		client, err := pubsub.NewClient(ctx, stack.Project)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		sub := "projects/" + stack.Project + "/subscriptions/test-attestations-" + strconv.Itoa(os.Getpid())
		if _, err := client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
			Name: sub, Topic: "projects/" + stack.Project + "/topics/" + events.TopicPolicyAttestations,
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{} // decision id -> outcome
		for _, c := range []struct {
			role, outcome string
			status        int
			message       string
		}{
			{"viewer", "deny", http.StatusForbidden, "forbidden: role viewer may not verify: reserved to governor, auditor"},
			{"auditor", "allow", http.StatusNotFound, "unknown audit stream"},
		} {
			tok, err := exec.Command(bin, "token", "-root", root, "-state", state, "-role", c.role, "-subject", c.role+"-1", "-engagement", "eng-policy").Output()
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			req, _ := http.NewRequest(http.MethodGet, ep.Gateway+"/v1/audit/streams/eng-policy-none/verify", nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != c.status || body.Error.Code != c.status || !strings.Contains(body.Error.Message, c.message) {
				t.Fatalf("%s: %s %+v (%v), want %d %q", c.role, resp.Status, body, err, c.status, c.message)
			}
			id := resp.Header.Get("X-Waooaw-Decision-Id")
			if id == "" {
				t.Fatalf("%s: no decision id on the answer", c.role)
			}
			want[id] = c.outcome
		}
		got := map[string]string{}
		var mu sync.Mutex
		rctx, stop := context.WithCancel(ctx)
		err = client.Subscriber(sub).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			m.Ack()
			var e struct {
				Data struct {
					DecisionID       string `json:"decision_id"`
					Decision         string `json:"decision"`
					EnforcementPoint string `json:"enforcement_point"`
				} `json:"data"`
			}
			if json.Unmarshal(m.Data, &e) != nil || e.Data.EnforcementPoint != "gateway" {
				return // another enforcement point's, or not ours
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := want[e.Data.DecisionID]; ok {
				got[e.Data.DecisionID] = e.Data.Decision
			}
			if len(got) == len(want) {
				stop()
			}
		})
		stop()
		if err != nil {
			t.Fatal(err)
		}
		for id, outcome := range want {
			if got[id] != outcome {
				t.Errorf("decision %s: attested %q, answered %q", id, got[id], outcome)
			}
		}
	})

	t.Run("interrupt stops everything", func(t *testing.T) {
		members := groupMembers(t, pids.Groups)
		s.interrupt(t)
		// Stop waits for its children, so nothing may be left by the time it exits; a short
		// grace covers the kernel reaping grandchildren re-parented to init.
		limit := time.Now().Add(5 * time.Second)
		for {
			var left []string
			for pid, comm := range members {
				if alive(pid) {
					left = append(left, fmt.Sprintf("%d(%s)", pid, comm))
				}
			}
			if len(left) == 0 {
				break
			}
			if time.Now().After(limit) {
				t.Fatalf("still running after stop: %v\n%s", left, s.out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		for _, f := range []string{stack.EndpointsFile, stack.PidsFile, stack.LockFile} {
			if _, err := os.Stat(filepath.Join(state, f)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still there after stop (%v)", f, err)
			}
		}
	})
}

// TestEmulatorsWrapper checks that `waooaw-local emulators -- CMD` gives CMD a working pair
// of emulators, passes its exit status through, and stops the emulators on every way out.
func TestEmulatorsWrapper(t *testing.T) {
	bin, root := build(t)
	// The command records where the emulators are, then waits for the test to let it end.
	const script = `echo "$FIRESTORE_EMULATOR_HOST $PUBSUB_EMULATOR_HOST" > "$OUT"; while [ ! -e "$OUT.go" ]; do sleep 0.1; done; exit 7`
	cases := []struct {
		name     string
		sigterm  bool // SIGTERM the wrapper instead of letting the command end
		wantCode int
	}{
		{"exit status passes through", false, 7},
		{"SIGTERM stops command and emulators", true, 128 + int(syscall.SIGTERM)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hostsFile := filepath.Join(t.TempDir(), "hosts")
			cmd := exec.Command(bin, "emulators", "-root", root, "-state", t.TempDir(), "--", "sh", "-c", script)
			cmd.Env = append(os.Environ(), "OUT="+hostsFile)
			var out syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var hosts []string
			deadline := time.After(3 * time.Minute)
			for len(hosts) < 2 {
				select {
				case <-deadline:
					cmd.Process.Kill()
					t.Fatalf("command never ran:\n%s", out.String())
				case <-time.After(100 * time.Millisecond):
				}
				if b, err := os.ReadFile(hostsFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
					hosts = strings.Fields(string(b))
				}
			}
			client := &http.Client{Timeout: 5 * time.Second}
			for _, h := range hosts {
				resp, err := client.Get("http://" + h + "/")
				if err != nil {
					t.Fatalf("emulator at %s does not answer the command: %v", h, err)
				}
				resp.Body.Close()
			}
			if c.sigterm {
				cmd.Process.Signal(syscall.SIGTERM)
			} else if err := os.WriteFile(hostsFile+".go", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("wrapper did not end:\n%s", out.String())
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.wantCode {
				t.Fatalf("wrapper ended with %v, want exit status %d:\n%s", err, c.wantCode, out.String())
			}
			for _, h := range hosts {
				if resp, err := client.Get("http://" + h + "/"); err == nil {
					resp.Body.Close()
					t.Errorf("emulator at %s still answers after the wrapper ended", h)
				}
			}
		})
	}
}

// BenchmarkRunUpAndDown measures what a developer waits for: `waooaw-local run` from start to
// endpoints.json (emulators, builds from a warm cache, provisioning), and Ctrl-C to exit.
func BenchmarkRunUpAndDown(b *testing.B) {
	bin, root := build(b)
	var up, down time.Duration
	for b.Loop() {
		t0 := time.Now()
		s := startStack(b, bin, root)
		t1 := time.Now()
		s.interrupt(b)
		up, down = up+t1.Sub(t0), down+time.Since(t1)
	}
	b.ReportMetric(up.Seconds()/float64(b.N), "s-up/op")
	b.ReportMetric(down.Seconds()/float64(b.N), "s-down/op")
}
