package shutdown

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunJoinsErrorsAndSharesTheDeadline(t *testing.T) {
	var order []int
	boom := errors.New("boom")
	err := Run(context.Background(),
		func(ctx context.Context) error {
			order = append(order, 1)
			if d, ok := ctx.Deadline(); !ok || time.Until(d) > Grace {
				t.Errorf("no Grace deadline: %v %v", d, ok)
			}
			return boom
		},
		func(context.Context) error { order = append(order, 2); return nil },
	)
	if !errors.Is(err, boom) || len(order) != 2 || order[0] != 1 {
		t.Fatalf("err %v, order %v", err, order)
	}
}

// The flush runs on SIGTERM and the process then dies of the signal, as the platform
// expects; checked in a child process, since the signal ends it.
func TestOnSIGTERMFlushesThenDies(t *testing.T) {
	if os.Getenv("SHUTDOWN_CHILD") == "1" {
		OnSIGTERM(slog.Default(), func(context.Context) error {
			os.Stdout.WriteString("flushed\n")
			return nil
		})
		os.Stdout.WriteString("ready\n")
		time.Sleep(30 * time.Second)
		os.Stdout.WriteString("not killed\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestOnSIGTERMFlushesThenDies$")
	cmd.Env = append(os.Environ(), "SHUTDOWN_CHILD=1")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(pipe)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("child did not get ready: %q", lines.Text())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for lines.Scan() {
		rest = append(rest, lines.Text())
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Fatalf("child ended with %v, want death by SIGTERM; output %q", err, rest)
	}
	if strings.Join(rest, "|") != "flushed" {
		t.Fatalf("after SIGTERM the child printed %q, want only flushed", rest)
	}
}
