package pdp_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The function as Cloud Functions starts it (its cmd, from the environment alone): a
// policy that does not compile stops the process with status 1 and a CRITICAL log line
// naming file:line, rather than serving anything.
func TestBrokenPolicyStopsTheProcess(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "pdp")
	build := exec.Command("go", "build", "-o", bin, "./cmd")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd: %v\n%s", err, out)
	}
	policies := filepath.Join(dir, "policies")
	if err := os.MkdirAll(filepath.Join(policies, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"rbac.rego":          "package waooaw.rbac\n\ngrants contains x if {\n\tx := undefined_fn(input)\n}\n",
		"data/platform.json": "{}",
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(policies, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "PORT=0", "FUNCTION_TARGET=PDP", "GOOGLE_CLOUD_PROJECT=", "PDP_POLICY_DIR="+policies)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("pdp with a broken policy ended with %v, want exit status 1; output:\n%s", err, out.String())
	}
	var critical string
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, `"severity":"CRITICAL"`) {
			critical = line
		}
	}
	if !strings.Contains(critical, "rbac.rego:4:") {
		t.Fatalf("no CRITICAL line naming rbac.rego:4; output:\n%s", out.String())
	}
}
