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

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	return startStackIn(tb, bin, root, tb.TempDir())
}

// startStackIn is startStack on a given state folder, with more flags for `run`.
func startStackIn(tb testing.TB, bin, root, state string, flags ...string) *runningStack {
	tb.Helper()
	s := &runningStack{state: state, out: &syncBuffer{}, exited: make(chan error, 1)}
	s.cmd = exec.Command(bin, append([]string{"run", "-root", root, "-state", s.state}, flags...)...)
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
	s := startStackIn(t, bin, root, t.TempDir(), "-clock=virtual")
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
		urls := map[string]string{"firestore": "http://" + ep.Firestore, "pubsub": "http://" + ep.PubSub, "jwks": ep.JWKS, "workflows": ep.Workflows, "control": ep.Control}
		for name, u := range ep.Functions {
			urls["function "+name] = u
		}
		if ep.AI["groq"] == "" || ep.AI["openai"] == "" {
			t.Errorf("endpoints.json has no local AI servers: %+v", ep.AI)
		}
		for name, u := range ep.AI {
			urls["ai "+name] = u
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

	// Every workflow infrastructure.yaml declares (its source written) is deployed to the
	// Workflows emulator, with the URLs of its running functions as environment variables.
	t.Run("workflows are deployed", func(t *testing.T) {
		spec, err := stack.LoadSpec(root)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Workflows []struct {
				Name           string            `json:"name"`
				ServiceAccount string            `json:"serviceAccount"`
				CallLogLevel   string            `json:"callLogLevel"`
				UserEnvVars    map[string]string `json:"userEnvVars"`
			} `json:"workflows"`
		}
		if code := callJSON(t, http.MethodGet, ep.Workflows+"/v1/"+stack.WorkflowsParent(spec)+"/workflows", nil, &list); code != http.StatusOK {
			t.Fatalf("list workflows: HTTP %d", code)
		}
		deployed := map[string]int{}
		for i, w := range list.Workflows {
			deployed[w.Name] = i
		}
		want := 0
		for _, w := range spec.Workflows {
			if _, err := os.Stat(filepath.Join(root, w.Source)); err != nil {
				continue // not written yet: the stack says it skipped it
			}
			want++
			i, ok := deployed[stack.WorkflowsParent(spec)+"/workflows/"+w.Name]
			if !ok {
				t.Errorf("workflow %s is not deployed", w.Name)
				continue
			}
			got := list.Workflows[i]
			if got.ServiceAccount != stack.ServiceAccountName(w.ServiceAccount) || got.CallLogLevel != w.CallLogLevel {
				t.Errorf("%s deployed as %s, %s; want %s, %s", w.Name, got.ServiceAccount, got.CallLogLevel, w.ServiceAccount, w.CallLogLevel)
			}
			for env, fn := range w.FunctionURLs {
				if url := ep.Functions[fn]; got.UserEnvVars[env] != url { // "" for one not running
					t.Errorf("%s: %s = %q, function %s runs at %q", w.Name, env, got.UserEnvVars[env], fn, url)
				}
			}
		}
		if len(list.Workflows) != want {
			t.Fatalf("%d workflows deployed, %d declared with their source", len(list.Workflows), want)
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
		// The stack's client starts bound to nothing: an admin binds it to the engagement.
		admin, err := exec.Command(bin, "token", "-root", root, "-state", state, "-role", "admin", "-subject", "admin-1").Output()
		if err != nil {
			t.Fatal(err)
		}
		bind, _ := http.NewRequest(http.MethodPost, ep.Gateway+"/v1/engagements/"+stream+"/clients", strings.NewReader(`{"client_id":"`+stack.WebhookClient+`"}`))
		bind.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
		bound, err := http.DefaultClient.Do(bind)
		if err != nil {
			t.Fatal(err)
		}
		bound.Body.Close()
		if bound.StatusCode != http.StatusCreated {
			t.Fatalf("binding %s to %s answered %s", stack.WebhookClient, stream, bound.Status)
		}
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
		want := map[string]string{} // decision id -> the outcome of the answer it is part of
		var answers [][]string      // the decision ids of each answer
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
			header := resp.Header.Get("X-Waooaw-Decision-Id")
			if header == "" {
				t.Fatalf("%s: no decision id on the answer", c.role)
			}
			// One id per policy asked (rbac, data_scope): an allowed answer needs every one to
			// allow, a refused one at least one to deny.
			for _, id := range strings.Split(header, ",") {
				want[id] = c.outcome
			}
			answers = append(answers, strings.Split(header, ","))
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
		for _, ids := range answers {
			outcome := want[ids[0]]
			denies := 0
			for _, id := range ids {
				switch got[id] {
				case "":
					t.Errorf("decision %s was never attested", id)
				case "deny":
					denies++
				}
				if outcome == "allow" && got[id] != "allow" {
					t.Errorf("decision %s of an allowed answer: attested %q", id, got[id])
				}
			}
			if outcome == "deny" && denies == 0 {
				t.Errorf("refused answer %v: no decision attested deny (%v)", ids, got)
			}
		}
	})

	// The Workflows emulator runs on the virtual clock -clock=virtual asked for.
	var clockBefore time.Time
	t.Run("virtual clock", func(t *testing.T) {
		before := emulatorClock(t, ep.Workflows)
		var moved struct{ Now time.Time }
		if code := callJSON(t, http.MethodPost, ep.Workflows+"/emulator/v1/clock:advance", map[string]any{"seconds": 3600}, &moved); code != http.StatusOK {
			t.Fatalf("advance: HTTP %d", code)
		}
		after := emulatorClock(t, ep.Workflows)
		if d := after.Sub(before); d != time.Hour || !moved.Now.Equal(after) {
			t.Fatalf("clock %s, advanced by an hour to %s (answered %s): moved %s", before, after, moved.Now, d)
		}
		clockBefore = after
		if !strings.Contains(s.out.String(), "clock virtual") {
			t.Errorf("the printout does not say the clock mode:\n%s", s.out.String())
		}
	})

	// SIGKILL of the emulator's group: the stack starts it again on the same port and state,
	// and an execution waiting for a callback before takes it after.
	t.Run("workflows emulator restarted after SIGKILL", func(t *testing.T) {
		ex := startWaiting(t, root, ep.Workflows)
		old := s.pids.Groups["workflows"]
		if old == 0 {
			t.Fatalf("pids.json has no workflows group: %+v", s.pids)
		}
		if err := syscall.Kill(-old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var now int
		for deadline := time.Now().Add(time.Minute); now == 0 || now == old; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the workflows emulator was not restarted:\n%s", s.out.String())
			}
			if p, err := stack.ReadPids(state); err == nil {
				now = p.Groups["workflows"]
			}
		}
		if got := emulatorClock(t, ep.Workflows); !got.Equal(clockBefore) {
			t.Errorf("virtual clock %s after the restart, was %s", got, clockBefore)
		}
		if !strings.Contains(s.out.String(), "restarted on "+ep.Workflows) {
			t.Errorf("the restart is not reported:\n%s", s.out.String())
		}
		ex.complete(t, "after-kill")
	})

	// A function stopped through the control endpoint stays down; started, it serves again on
	// its own URL as a new process group.
	t.Run("control stops and starts a function", func(t *testing.T) {
		fn := func() stack.FunctionState {
			t.Helper()
			var list struct{ Functions []stack.FunctionState }
			if code := callJSON(t, http.MethodGet, ep.Control+"/v1/functions", nil, &list); code != http.StatusOK {
				t.Fatalf("list: HTTP %d", code)
			}
			for _, f := range list.Functions {
				if f.Name == "pdp" {
					return f
				}
			}
			t.Fatalf("no pdp in %+v", list)
			return stack.FunctionState{}
		}
		first := fn()
		if !first.Up || first.URL != ep.Functions["pdp"] || first.Pid != s.pids.Groups["pdp"] {
			t.Fatalf("pdp = %+v, endpoints %s, pids %d", first, ep.Functions["pdp"], s.pids.Groups["pdp"])
		}
		client := &http.Client{Timeout: 2 * time.Second}
		answers := func() bool {
			resp, err := client.Get(first.URL)
			if err == nil {
				resp.Body.Close()
			}
			return err == nil
		}
		cases := []struct {
			call   string
			status int
			up     bool
		}{
			{"pdp:stop", http.StatusOK, false},
			{"pdp:stop", http.StatusOK, false},
			{"pdp:start", http.StatusOK, true},
			{"pdp:restart", http.StatusBadRequest, true},
			{"nosuch:stop", http.StatusNotFound, true},
		}
		for _, c := range cases {
			var got stack.FunctionState
			if code := callJSON(t, http.MethodPost, ep.Control+"/v1/functions/"+c.call, nil, &got); code != c.status {
				t.Fatalf("%s: HTTP %d, want %d", c.call, code, c.status)
			}
			now := fn()
			if now.Up != c.up || answers() != c.up || now.URL != first.URL {
				t.Fatalf("after %s: %+v, answers %v; want up %v on %s", c.call, now, answers(), c.up, first.URL)
			}
			if p, err := stack.ReadPids(state); err != nil || p.Groups["pdp"] != now.Pid {
				t.Errorf("after %s: pids.json says pdp is %d (%v), control says %d", c.call, p.Groups["pdp"], err, now.Pid)
			}
		}
		if fn().Pid == first.Pid {
			t.Errorf("pdp started again kept process group %d", first.Pid)
		}
	})

	// An event published while its function is down reaches it once it is started again:
	// the emulator's pushes fail meanwhile and are redelivered, as Pub/Sub's are.
	t.Run("push to a stopped function is redelivered", func(t *testing.T) {
		if code := callJSON(t, http.MethodPost, ep.Control+"/v1/functions/auditor:stop", nil, nil); code != http.StatusOK {
			t.Fatalf("stop auditor: HTTP %d", code)
		}
		ctx := context.Background()
		t.Setenv("PUBSUB_EMULATOR_HOST", ep.PubSub)
		client, err := pubsub.NewClient(ctx, stack.Project)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		pub := events.NewPubSub(client)
		defer pub.Close()
		stream := "eng-down-" + strconv.Itoa(os.Getpid())
		e, err := events.New("waooaw.audit.recorded", "//test/waooaw-local", "system:test", map[string]any{
			"stream": stream, "event_type": "decision", "actor_id": "gov-1", "actor_type": "human", "action": "approve",
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.Publish(ctx, events.TopicAuditEvents, e); err != nil {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(2 * time.Second) // a push or two meet the stopped function
		if code := callJSON(t, http.MethodPost, ep.Control+"/v1/functions/auditor:start", nil, nil); code != http.StatusOK {
			t.Fatalf("start auditor: HTTP %d", code)
		}
		s.waitForVerifiedStream(t, bin, root, "governor", stream, 1)
	})

	// What the next start must find: a document and an execution waiting for its callback.
	const docPath = "stack_test/kept"
	t.Run("write a document", func(t *testing.T) {
		writeDoc(t, ep.Firestore, docPath)
	})
	waiting := startWaiting(t, root, ep.Workflows)

	t.Run("interrupt stops everything", func(t *testing.T) {
		// The groups of now: restarts above replaced some.
		current, err := stack.ReadPids(state)
		if err != nil {
			t.Fatal(err)
		}
		members := groupMembers(t, current.Groups)
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
		if !strings.Contains(s.out.String(), "firestore   exported to ") {
			t.Errorf("no Firestore export reported:\n%s", s.out.String())
		}
	})

	// A clean stop and start keeps Firestore's documents, the executions and the virtual
	// clock, on the same Workflows address (callback URLs name it); -fresh drops them all.
	t.Run("restart keeps state, fresh drops it", func(t *testing.T) {
		again := startStackIn(t, bin, root, state, "-clock=virtual")
		if again.ep.Workflows != ep.Workflows {
			t.Errorf("workflows emulator on %s, was %s", again.ep.Workflows, ep.Workflows)
		}
		if !readDoc(t, again.ep.Firestore, docPath) {
			t.Errorf("document %s lost across a clean restart:\n%s", docPath, again.out.String())
		}
		if got := emulatorClock(t, again.ep.Workflows); !got.Equal(clockBefore) {
			t.Errorf("virtual clock %s after the restart, was %s", got, clockBefore)
		}
		waiting.complete(t, "after-restart")
		again.interrupt(t)

		fresh := startStackIn(t, bin, root, state, "-clock=virtual", "-fresh")
		if readDoc(t, fresh.ep.Firestore, docPath) {
			t.Errorf("document %s still there after -fresh", docPath)
		}
		if code := callJSON(t, http.MethodGet, fresh.ep.Workflows+"/v1/"+waiting.name, nil, nil); code != http.StatusNotFound {
			t.Errorf("execution %s after -fresh: HTTP %d, want 404", waiting.name, code)
		}
		if got := emulatorClock(t, fresh.ep.Workflows); !got.Before(clockBefore) {
			t.Errorf("virtual clock %s after -fresh, not before the old %s", got, clockBefore)
		}
		fresh.interrupt(t)
	})
}

// callJSON sends body (JSON, when not nil) and decodes a 2xx answer into out (when not nil);
// it returns the HTTP status.
func callJSON(t *testing.T, method, url string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode
}

func emulatorClock(t *testing.T, workflowsURL string) time.Time {
	t.Helper()
	var c struct{ Now time.Time }
	if code := callJSON(t, http.MethodGet, workflowsURL+"/emulator/v1/clock", nil, &c); code != http.StatusOK {
		t.Fatalf("clock: HTTP %d", code)
	}
	return c.Now
}

// waitSrc waits for one callback and returns what it carried.
const waitSrc = `
main:
  steps:
    - create:
        call: events.create_callback_endpoint
        result: cb
    - await:
        call: events.await_callback
        args:
          callback: ${cb}
          timeout: 86400
        result: req
    - r:
        return: ${req.http_request.body.v}
`

// waitingExecution is an execution of waitSrc and the callback it waits on.
type waitingExecution struct {
	workflows, name, callback string
}

// startWaiting deploys waitSrc (once) through the Workflows API and starts an execution
// that waits for its callback.
func startWaiting(t *testing.T, root, workflowsURL string) *waitingExecution {
	t.Helper()
	spec, err := stack.LoadSpec(root)
	if err != nil {
		t.Fatal(err)
	}
	wf := stack.WorkflowsParent(spec) + "/workflows/stack_test_wait"
	if callJSON(t, http.MethodGet, workflowsURL+"/v1/"+wf, nil, nil) == http.StatusNotFound {
		code := callJSON(t, http.MethodPost, workflowsURL+"/v1/"+stack.WorkflowsParent(spec)+"/workflows?workflowId=stack_test_wait", map[string]string{"sourceContents": waitSrc}, nil)
		if code != http.StatusOK {
			t.Fatalf("deploy: HTTP %d", code)
		}
	}
	var ex struct{ Name string }
	if code := callJSON(t, http.MethodPost, workflowsURL+"/v1/"+wf+"/executions", map[string]any{}, &ex); code != http.StatusOK {
		t.Fatalf("execution: HTTP %d", code)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var cbs struct{ Callbacks []struct{ Name string } }
		callJSON(t, http.MethodGet, workflowsURL+"/v1/"+ex.Name+"/callbacks", nil, &cbs)
		if len(cbs.Callbacks) == 1 {
			return &waitingExecution{workflows: workflowsURL, name: ex.Name, callback: workflowsURL + "/v1/" + cbs.Callbacks[0].Name}
		}
	}
	t.Fatalf("execution %s never waited for its callback", ex.Name)
	return nil
}

// complete delivers the callback with v and waits for the execution to return v.
func (w *waitingExecution) complete(t *testing.T, v string) {
	t.Helper()
	if code := callJSON(t, http.MethodPost, w.callback, map[string]string{"v": v}, nil); code != http.StatusOK {
		t.Fatalf("callback %s: HTTP %d", w.callback, code)
	}
	var ex struct{ State, Result string }
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if callJSON(t, http.MethodGet, w.workflows+"/v1/"+w.name, nil, &ex); ex.State != "ACTIVE" {
			break
		}
	}
	if ex.State != "SUCCEEDED" || ex.Result != strconv.Quote(v) {
		t.Fatalf("execution %s: %s %s, want SUCCEEDED %q", w.name, ex.State, ex.Result, v)
	}
}

// writeDoc writes a document with the Firestore client, in the stack's project.
func writeDoc(t *testing.T, host, path string) {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	c, err := firestore.NewClient(context.Background(), stack.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Doc(path).Set(context.Background(), map[string]any{"kept": true}); err != nil {
		t.Fatal(err)
	}
}

// readDoc reports whether the document exists, as written by writeDoc.
func readDoc(t *testing.T, host, path string) bool {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	c, err := firestore.NewClient(context.Background(), stack.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := c.Doc(path).Get(context.Background())
	if status.Code(err) == codes.NotFound {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	kept, _ := snap.DataAt("kept")
	return kept == true
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
