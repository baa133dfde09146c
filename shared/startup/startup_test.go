package startup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
)

// logBuffer captures what instances log, in place of stdout.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// capture sends the package's logs and exits to the test.
func capture(t *testing.T) (*logBuffer, *atomic.Int32) {
	t.Helper()
	logs := &logBuffer{}
	code := &atomic.Int32{}
	code.Store(-1)
	oldOut, oldExit := stdout, exit
	stdout, exit = logs, func(c int) { code.Store(int32(c)) }
	t.Cleanup(func() { stdout, exit = oldOut, oldExit })
	return logs, code
}

func TestHTTPRetriesUntilBuilt(t *testing.T) {
	logs, code := capture(t)
	var opens, closed atomic.Int32
	fail := atomic.Bool{}
	fail.Store(true)
	entry := HTTP("TestHTTPRetriesUntilBuilt", func(ctx context.Context, env *Env) (http.Handler, error) {
		opens.Add(1)
		env.OnShutdown(func(context.Context) error { closed.Add(1); return nil })
		if fail.Load() {
			return nil, errors.New("pubsub.NewClient: connection refused")
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "served") }), nil
	})

	rec := httptest.NewRecorder()
	entry(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("503 body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Error.Code != 503 || !strings.Contains(body.Error.Message, "TestHTTPRetriesUntilBuilt is not configured") {
		t.Fatalf("failed build answered %d %q", rec.Code, rec.Body)
	}
	if closed.Load() != 1 {
		t.Fatalf("what the failed build opened was closed %d times, want 1", closed.Load())
	}
	if !strings.Contains(logs.String(), `"severity":"ERROR"`) || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("failed build not logged at ERROR with its cause: %s", logs)
	}

	fail.Store(false)
	for range 3 {
		rec = httptest.NewRecorder()
		entry(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusOK || rec.Body.String() != "served" {
			t.Fatalf("after recovery: %d %q", rec.Code, rec.Body)
		}
	}
	if opens.Load() != 2 || code.Load() != -1 {
		t.Fatalf("opened %d times (want 2: one failure, one success), exit %d", opens.Load(), code.Load())
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	capture(t)
	t.Setenv("STARTUP_TEST_A", "")
	t.Setenv("STARTUP_TEST_B", "")
	t.Setenv("STARTUP_TEST_N", "many")
	in := newInstance("TestConfigErrors", func(ctx context.Context, env *Env) (int, error) {
		env.Required("STARTUP_TEST_A")
		env.Required("STARTUP_TEST_B")
		env.Int("STARTUP_TEST_N", 1)
		return 1, nil // open may leave the check to startup
	})
	_, err := in.get(t.Context())
	if err == nil {
		t.Fatal("missing variables accepted")
	}
	for _, want := range []string{"TestConfigErrors", "STARTUP_TEST_A", "STARTUP_TEST_B", "STARTUP_TEST_N"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestPermanentErrorStopsTheProcess(t *testing.T) {
	logs, code := capture(t)
	cause := errors.New("policy: rbac.rego:4: rego_parse_error: unexpected eof token")
	in := newInstance("TestPermanent", func(ctx context.Context, env *Env) (int, error) {
		return 0, Permanent(fmt.Errorf("policy.New: %w", cause))
	})
	_, err := in.get(t.Context())
	if !errors.Is(err, cause) || !IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if code.Load() != 1 {
		t.Fatalf("exit code %d, want 1", code.Load())
	}
	if !strings.Contains(logs.String(), `"severity":"CRITICAL"`) || !strings.Contains(logs.String(), "rbac.rego:4") {
		t.Fatalf("not logged at CRITICAL with file:line: %s", logs)
	}
}

func TestCloudEventFailsUntilBuilt(t *testing.T) {
	capture(t)
	var ready atomic.Bool
	var handled atomic.Int32
	entry := CloudEvent("TestCloudEventFailsUntilBuilt", func(ctx context.Context, env *Env) (EventHandler, error) {
		if !ready.Load() {
			return nil, errors.New("store: no project id")
		}
		return func(context.Context, event.Event) error { handled.Add(1); return nil }, nil
	})
	ce := event.New()
	if err := entry(t.Context(), ce); err == nil || !strings.Contains(err.Error(), "no project id") {
		t.Fatalf("unbuilt: %v, want the build error so Pub/Sub retries", err)
	}
	ready.Store(true)
	if err := entry(t.Context(), ce); err != nil || handled.Load() != 1 {
		t.Fatalf("built: %v, handled %d", err, handled.Load())
	}
}

func TestShutdownRunsLastRegisteredFirst(t *testing.T) {
	var order []string
	env := &Env{}
	env.OnShutdown(func(context.Context) error { order = append(order, "client"); return nil })
	env.OnShutdown(func(context.Context) error { order = append(order, "queue"); return errors.New("2 lost") })
	err := env.close(t.Context())
	if strings.Join(order, ",") != "queue,client" || err == nil || !strings.Contains(err.Error(), "2 lost") {
		t.Fatalf("order %v, err %v", order, err)
	}
}

func TestPreparedOnceForItsTarget(t *testing.T) {
	capture(t)
	t.Setenv("FUNCTION_TARGET", "TestPrepared")
	built := make(chan struct{}, 4)
	in := newInstance("TestPrepared", func(ctx context.Context, env *Env) (int, error) {
		built <- struct{}{}
		return 1, nil
	})
	in.prepare()
	in.prepare()
	<-built
	if v, err := in.get(t.Context()); v != 1 || err != nil {
		t.Fatalf("get = %d, %v", v, err)
	}
	if len(built) != 0 {
		t.Fatalf("built %d more times", len(built))
	}
	other := newInstance("NotTheTarget", func(ctx context.Context, env *Env) (int, error) {
		t.Error("a function that is not FUNCTION_TARGET was prepared")
		return 0, nil
	})
	other.prepare()
}
