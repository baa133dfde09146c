package workflows_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/workflowstest"
)

// emulatorProc is the emulator binary running as a subprocess.
type emulatorProc struct {
	cmd *exec.Cmd
	url string
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// buildEmulator builds the command once per test binary run; TestMain
// removes it.
func buildEmulator(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "workflows-emulator-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "workflows-emulator")
		cmd := exec.Command("go", "build", "-o", builtBin, "../cmd/workflows-emulator")
		cmd.Stderr = os.Stderr
		buildErr = cmd.Run()
	})
	if buildErr != nil {
		t.Fatalf("build emulator: %v", buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// The command's --clock=virtual: a sleeping execution wakes only through
// POST /emulator/v1/clock:advance.
func TestCommandVirtualClock(t *testing.T) {
	bin := buildEmulator(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--addr", addr, "--clock=virtual", "--quiet")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.Contains(line, "clock=virtual") {
		t.Fatalf("start line %q %v", line, err)
	}
	p := &emulatorProc{cmd: cmd, url: "http://" + addr}
	p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows?workflowId=nap", map[string]any{"sourceContents": sleepingSrc}, nil)
	var ex struct{ Name, State string }
	p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows/nap/executions", map[string]any{}, &ex)
	p.do(t, "GET", p.url+"/v1/"+ex.Name, nil, &ex)
	if ex.State != "ACTIVE" {
		t.Fatalf("state %s before the clock moved", ex.State)
	}
	if code := p.do(t, "POST", p.url+"/emulator/v1/clock:advance", map[string]any{"seconds": 3600}, nil); code != 200 {
		t.Fatalf("advance: %d", code)
	}
	p.do(t, "GET", p.url+"/v1/"+ex.Name, nil, &ex)
	if ex.State != "SUCCEEDED" {
		t.Fatalf("state %s after advancing an hour", ex.State)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startProc(t *testing.T, bin, addr, state string) *emulatorProc {
	t.Helper()
	cmd := exec.Command(bin, "--addr", addr, "--state", state, "--quiet")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, "listening on ") {
		cmd.Process.Kill()
		t.Fatalf("emulator did not start: %q %v", line, err)
	}
	p := &emulatorProc{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

func (p *emulatorProc) do(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func (p *emulatorProc) countState(t *testing.T, wf, state string) int {
	var page struct {
		Executions []struct {
			Status *struct {
				CurrentSteps []struct{ Step string } `json:"currentSteps"`
			} `json:"status"`
		} `json:"executions"`
	}
	p.do(t, "GET", p.url+"/v1/"+wf+"/executions?pageSize=1000&filter=state%3D"+state, nil, &page)
	if state != "ACTIVE" {
		return len(page.Executions)
	}
	n := 0
	for _, e := range page.Executions {
		if e.Status != nil && len(e.Status.CurrentSteps) == 1 && e.Status.CurrentSteps[0].Step == "await" {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGKILL while 1,000 executions wait on callbacks (and 50 sleep, and one
// has finished); after a restart every callback URL handed out before the
// kill is still deliverable and every execution finishes, the sleepers wake
// at their time and the finished one keeps its result.
func TestSIGKILLWithWaitingExecutions(t *testing.T) {
	const n = 1000
	bin := buildEmulator(t)
	state := t.TempDir()
	addr := freeAddr(t)
	p := startProc(t, bin, addr, state)
	wf := workflowstest.Parent + "/workflows/veto"
	if code := p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows?workflowId=veto", map[string]any{"sourceContents": waitingSrc}, nil); code != 200 {
		t.Fatalf("deploy: %d", code)
	}
	names := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			var ex struct{ Name string }
			p.do(t, "POST", p.url+"/v1/"+wf+"/executions", map[string]any{"argument": fmt.Sprint(i)}, &ex)
			names[i] = ex.Name
		}(i)
	}
	wg.Wait()
	waitFor(t, "all executions waiting", 30*time.Second, func() bool { return p.countState(t, wf, "ACTIVE") == n })
	urls := make([]string, n)
	for i, name := range names {
		var cbs struct {
			Callbacks []struct{ Name string } `json:"callbacks"`
		}
		p.do(t, "GET", p.url+"/v1/"+name+"/callbacks", nil, &cbs)
		if len(cbs.Callbacks) != 1 {
			t.Fatalf("%s has %d callbacks", name, len(cbs.Callbacks))
		}
		urls[i] = p.url + "/v1/" + cbs.Callbacks[0].Name
	}

	// Alongside: sleepers due after the restart, and a finished execution.
	napSrc := "- s:\n    call: sys.sleep\n    args:\n      seconds: 3\n- r:\n    return: \"rested\"\n"
	p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows?workflowId=nap", map[string]any{"sourceContents": napSrc}, nil)
	p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows?workflowId=quick", map[string]any{"sourceContents": "- r:\n    return: 42\n"}, nil)
	napWF := workflowstest.Parent + "/workflows/nap"
	for i := 0; i < 50; i++ {
		p.do(t, "POST", p.url+"/v1/"+napWF+"/executions", map[string]any{}, nil)
	}
	var quick struct{ Name, State, Result string }
	p.do(t, "POST", p.url+"/v1/"+workflowstest.Parent+"/workflows/quick/executions", map[string]any{}, &quick)
	waitFor(t, "the quick execution", 30*time.Second, func() bool {
		p.do(t, "GET", p.url+"/v1/"+quick.Name, nil, &quick)
		return quick.State == "SUCCEEDED"
	})

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()

	p2 := startProc(t, bin, addr, state)
	if got := p2.countState(t, wf, "ACTIVE"); got != n {
		t.Fatalf("%d of %d executions waiting after restart", got, n)
	}
	var after struct{ State, Result string }
	p2.do(t, "GET", p2.url+"/v1/"+quick.Name, nil, &after)
	if after.State != "SUCCEEDED" || after.Result != "42" {
		t.Fatalf("finished execution after restart: %+v", after)
	}
	waitFor(t, "sleepers to wake", 30*time.Second, func() bool { return p2.countState(t, napWF, "SUCCEEDED") == 50 })
	for i, u := range urls {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, u string) {
			defer wg.Done()
			defer func() { <-sem }()
			if code := p2.do(t, "POST", u, map[string]any{"i": i}, nil); code != 200 {
				t.Errorf("callback %d answered %d", i, code)
			}
		}(i, u)
	}
	wg.Wait()
	waitFor(t, "all executions finished", 30*time.Second, func() bool { return p2.countState(t, wf, "SUCCEEDED") == n })
	var ex struct {
		State, Result string
	}
	p2.do(t, "GET", p2.url+"/v1/"+names[7], nil, &ex)
	if ex.Result != `[7,{"i":7}]` {
		t.Fatalf("execution 7 result %q", ex.Result)
	}
}
