package emulators

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/infra/local/infraspec"
)

// Env is a pair of emulators and a project of one's own on them.
type Env struct {
	FirestoreHost string
	PubSubHost    string
	Project       string
}

var (
	once     sync.Once
	shared   *Stack
	startErr error
	projects atomic.Int64
)

// ForTest returns emulators for a test: those named by FIRESTORE_EMULATOR_HOST and
// PUBSUB_EMULATOR_HOST when both are set (`make test` starts one pair for the whole run),
// otherwise a pair started once for this test binary and stopped when the binary exits.
// Each call gets a fresh project id, so tests never see each other's data. The test fails
// if the emulators cannot be reached or started.
func ForTest(t testing.TB) *Env {
	t.Helper()
	fs, ps := os.Getenv("FIRESTORE_EMULATOR_HOST"), os.Getenv("PUBSUB_EMULATOR_HOST")
	if fs == "" || ps == "" {
		once.Do(func() {
			shared, startErr = Start(context.Background(), Options{})
			if startErr == nil {
				startErr = watchdog(shared)
				os.Setenv("FIRESTORE_EMULATOR_HOST", shared.FirestoreHost)
				os.Setenv("PUBSUB_EMULATOR_HOST", shared.PubSubHost)
			}
		})
		if startErr != nil {
			t.Fatalf("emulators: %v", startErr)
		}
		fs, ps = shared.FirestoreHost, shared.PubSubHost
	}
	project := fmt.Sprintf("test-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000, projects.Add(1))
	return &Env{FirestoreHost: fs, PubSubHost: ps, Project: project}
}

// watchdog stops the emulators when the test binary exits, however it exits: a detached
// shell polls this process and kills the emulators' process groups once it is gone.
func watchdog(s *Stack) error {
	script := "while kill -0 " + strconv.Itoa(os.Getpid()) + " 2>/dev/null; do sleep 1; done"
	for _, pid := range s.Pids() {
		script += "; kill -TERM -" + strconv.Itoa(pid) + " 2>/dev/null"
	}
	script += "; sleep 3"
	for _, pid := range s.Pids() {
		script += "; kill -KILL -" + strconv.Itoa(pid) + " 2>/dev/null"
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("emulators: watchdog: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // reaped only to avoid a zombie
	return nil
}

// Firestore returns a client for the env's project, closed when the test ends.
func (e *Env) Firestore(t testing.TB) *firestore.Client {
	t.Helper()
	c, err := firestore.NewClient(context.Background(), e.Project)
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// PubSub returns a client for the env's project, closed when the test ends.
func (e *Env) PubSub(t testing.TB) *pubsub.Client {
	t.Helper()
	c, err := pubsub.NewClient(context.Background(), e.Project)
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Provision creates the repository's topics, schemas and subscriptions in the env's project,
// pushing to the given function base URLs (pull subscriptions for the others).
func (e *Env) Provision(t testing.TB, pushBase map[string]string) *infraspec.Spec {
	t.Helper()
	spec, _, err := infraspec.LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	if err := Provision(context.Background(), e.PubSub(t), spec, pushBase); err != nil {
		t.Fatal(err)
	}
	return spec
}
