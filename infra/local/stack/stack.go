// Package stack runs the local stand-in for GCP that `make run` starts: the Firestore and
// Pub/Sub emulators, a development token issuer, and every function of
// infra/infrastructure.yaml as its own process, wired together as in production.
package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/funczip"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/workflows"
)

// Project is the project id every local service uses.
const Project = "waooaw-local"

// WebhookClient is the development webhook client whose secret the stack creates.
const WebhookClient = "dev-client"

// Options say where the stack lives.
type Options struct {
	Root     string    // repository root (holds infra/infrastructure.yaml and go.work)
	StateDir string    // keys, secrets, logs, binaries, endpoints.json; default <Root>/.local
	Out      io.Writer // where the stack says what it started; default os.Stdout
	// StopGrace is how long a function or emulator gets after SIGTERM before SIGKILL.
	StopGrace time.Duration
}

func (o *Options) defaults() {
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Root, ".local")
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.StopGrace == 0 {
		o.StopGrace = 5 * time.Second
	}
}

// LoadSpec reads the repository's infrastructure.yaml.
func LoadSpec(root string) (*infraspec.Spec, error) {
	return infraspec.Load(filepath.Join(root, infraspec.RelPath))
}

// Issuer returns the development token issuer for the gateway of spec, creating its key in
// stateDir on first use. The stack and the `token` command share it.
func Issuer(spec *infraspec.Spec, stateDir string) (*devauth.Issuer, error) {
	gw, ok := spec.Function("gateway")
	if !ok {
		return nil, errors.New("stack: infrastructure.yaml has no gateway function")
	}
	key, err := devauth.LoadOrCreateKey(stateDir)
	if err != nil {
		return nil, err
	}
	return &devauth.Issuer{Key: key, Issuer: gw.Env["WAOOAW_JWT_ISSUER"], Audience: gw.Env["WAOOAW_JWT_AUDIENCE"]}, nil
}

// Run starts the stack, reports it, and keeps it up until ctx is done; then it stops
// everything it started, in reverse order, and returns. A second Run on the same state folder
// fails with *RunningError while the first is up.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	lock, err := AcquireLock(o.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	warnLeftovers(o)
	r := &run{o: o, groups: map[string]int{}}
	defer r.stopAll()
	if err := r.start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "waooaw-local: up; Ctrl-C stops everything")
	<-ctx.Done()
	fmt.Fprintln(o.Out, "waooaw-local: stopping")
	// pids.json and endpoints.json describe a running stack only.
	os.Remove(filepath.Join(o.StateDir, EndpointsFile))
	os.Remove(filepath.Join(o.StateDir, PidsFile))
	return nil
}

// warnLeftovers clears what a run that was killed outright (SIGKILL, power loss) left
// behind, and names its process groups that still live: they are not killed blindly, since
// after a reboot those ids may belong to anything.
func warnLeftovers(o Options) {
	if old, err := ReadPids(o.StateDir); err == nil {
		for name, pgid := range old.Groups {
			if groupAlive(pgid) {
				fmt.Fprintf(o.Out, "  warning     a previous run did not stop cleanly; %s may still run as process group %d (kill -TERM -%d)\n", name, pgid, pgid)
			}
		}
	}
	os.Remove(filepath.Join(o.StateDir, EndpointsFile))
	os.Remove(filepath.Join(o.StateDir, PidsFile))
}

// run is one stack's lifetime: what it started and how to stop it.
type run struct {
	o      Options
	stops  []func() // in start order; stopAll runs them backwards
	groups map[string]int
}

func (r *run) onStop(f func()) { r.stops = append(r.stops, f) }

func (r *run) stopAll() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
}

func (r *run) dir(parts ...string) (string, error) {
	d := filepath.Join(append([]string{r.o.StateDir}, parts...)...)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("stack: %w", err)
	}
	return d, nil
}

func (r *run) start(ctx context.Context) error {
	spec, err := LoadSpec(r.o.Root)
	if err != nil {
		return err
	}
	logDir, err := r.dir("logs")
	if err != nil {
		return err
	}
	out := r.o.Out

	// The emulators take seconds of JVM start-up; the function builds overlap with it.
	type started struct {
		emu *emulators.Stack
		err error
	}
	emuCh := make(chan started, 1)
	go func() {
		s, err := emulators.Start(ctx, emulators.Options{LogDir: logDir})
		emuCh <- started{s, err}
	}()
	fns, buildErr := r.buildFunctions(ctx, spec)
	st := <-emuCh
	if st.err != nil {
		return fmt.Errorf("stack: %w (logs in %s)", st.err, logDir)
	}
	emu := st.emu
	r.onStop(emu.Stop)
	if buildErr != nil {
		return buildErr
	}
	pids := emu.Pids() // Start launches Firestore, then Pub/Sub
	r.groups["firestore"], r.groups["pubsub"] = pids[0], pids[1]
	// This process's own clients (provisioning) must reach these emulators, whatever the
	// caller's environment named.
	os.Setenv("FIRESTORE_EMULATOR_HOST", emu.FirestoreHost)
	os.Setenv("PUBSUB_EMULATOR_HOST", emu.PubSubHost)

	issuer, err := Issuer(spec, r.o.StateDir)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("stack: jwks listener: %w", err)
	}
	jwksSrv, jwksURL, err := issuer.Serve(l)
	if err != nil {
		l.Close()
		return err
	}
	r.onStop(func() { jwksSrv.Close() })

	secretsDir, err := r.dir("secrets")
	if err != nil {
		return err
	}
	if err := ensureSecrets(secretsDir, issuer); err != nil {
		return err
	}

	// The Workflows emulator runs in this process; its executions survive restarts under
	// the state folder, like Cloud Workflows' own.
	wfState, err := r.dir("workflows")
	if err != nil {
		return err
	}
	wf, err := workflows.Start(ctx, workflows.Options{Addr: "127.0.0.1:0", StateDir: wfState})
	if err != nil {
		return fmt.Errorf("stack: workflows emulator: %w", err)
	}
	r.onStop(func() { wf.Close() })
	deployed, err := deployWorkflows(ctx, r.o.Root, wf.URL(), WorkflowsParent(spec))
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}

	ep := &Endpoints{Firestore: emu.FirestoreHost, PubSub: emu.PubSubHost, Functions: map[string]string{}, JWKS: jwksURL, Workflows: wf.URL()}
	local := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    Project,
		"FIRESTORE_EMULATOR_HOST": emu.FirestoreHost,
		"PUBSUB_EMULATOR_HOST":    emu.PubSubHost,
		"WAOOAW_JWKS_URL":         jwksURL,
		"WAOOAW_SECRETS_DIR":      secretsDir,
		"WAOOAW_WORKFLOWS_URL":    wf.URL(),
	}
	for _, fn := range fns {
		url, err := r.startFunction(ctx, fn, local, secretsDir, logDir)
		if err != nil {
			return err
		}
		ep.Functions[fn.spec.Name] = url
	}
	ep.Gateway = ep.Functions["gateway"]

	ps, err := pubsub.NewClient(ctx, Project)
	if err != nil {
		return fmt.Errorf("stack: pubsub client: %w", err)
	}
	defer ps.Close()
	if err := emulators.Provision(ctx, ps, spec, ep.Functions); err != nil {
		return fmt.Errorf("stack: %w", err)
	}

	if err := writeJSON(filepath.Join(r.o.StateDir, PidsFile), Pids{Pid: os.Getpid(), Groups: r.groups}); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(r.o.StateDir, EndpointsFile), ep); err != nil {
		return err
	}
	r.report(spec, ep, fns, logDir)
	fmt.Fprintf(out, "  workflows   %-26s %d deployed from workflows/*.yaml under %s, UI %s/ui/\n", ep.Workflows, len(deployed), WorkflowsParent(spec), ep.Workflows)
	fmt.Fprintf(out, "  endpoints   %s\n", filepath.Join(r.o.StateDir, EndpointsFile))
	fmt.Fprintf(out, "  token       go run ./infra/local/cmd/waooaw-local token -role governor -subject me -engagement eng-1\n")
	return nil
}

// function is a built function ready to run.
type function struct {
	spec infraspec.Function
	bin  string
}

// buildFunctions builds each function of spec that has a cmd folder with Go files; the
// others are reported and skipped, since functions land one at a time.
func (r *run) buildFunctions(ctx context.Context, spec *infraspec.Spec) ([]function, error) {
	binDir, err := r.dir("bin")
	if err != nil {
		return nil, err
	}
	var fns []function
	for _, f := range spec.Functions {
		cmdDir := filepath.Join(r.o.Root, f.Source, "cmd")
		if !funczip.HasSource(cmdDir) {
			fmt.Fprintf(r.o.Out, "  skipped     %-10s no %s/cmd with Go files yet\n", f.Name, f.Source)
			continue
		}
		bin := filepath.Join(binDir, f.Name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./"+filepath.ToSlash(filepath.Join(f.Source, "cmd")))
		cmd.Dir = r.o.Root
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("stack: build %s: %w\n%s", f.Name, err, b)
		}
		fns = append(fns, function{spec: f, bin: bin})
	}
	return fns, nil
}

// startFunction runs fn on a free port the way Cloud Functions does (PORT, FUNCTION_TARGET)
// and waits until it answers HTTP.
func (r *run) startFunction(ctx context.Context, fn function, local map[string]string, secretsDir, logDir string) (string, error) {
	port, err := emulators.FreePort()
	if err != nil {
		return "", err
	}
	env := map[string]string{}
	for k, v := range fn.spec.Env {
		env[k] = v
	}
	// Secrets exposed as variables in production get the local secret file's content.
	for _, s := range fn.spec.Secrets {
		if !envName(s.Name) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(secretsDir, s.Secret))
		if err != nil {
			return "", fmt.Errorf("stack: %s: secret %s: %w", fn.spec.Name, s.Secret, err)
		}
		env[s.Name] = string(b)
	}
	for k, v := range local {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	env["FUNCTION_TARGET"] = fn.spec.EntryPoint
	env["K_SERVICE"] = fn.spec.Name

	cmd := exec.Command(fn.bin)
	cmd.Dir = r.o.Root
	cmd.Env = mergeEnv(os.Environ(), env)
	g, err := startGroup(fn.spec.Name, cmd, filepath.Join(logDir, fn.spec.Name+".log"))
	if err != nil {
		return "", err
	}
	r.groups[fn.spec.Name] = g.pgid()
	r.onStop(func() { g.stop(r.o.StopGrace) })
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := waitAnswer(ctx, url, g, 30*time.Second); err != nil {
		return "", fmt.Errorf("stack: %s did not come up (log %s): %w", fn.spec.Name, filepath.Join(logDir, fn.spec.Name+".log"), err)
	}
	return url, nil
}

// waitAnswer polls url until any HTTP response comes back: a function's root may well answer
// 404 or 405, which still proves it serves.
func waitAnswer(ctx context.Context, url string, g *group, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		if g.exited() {
			return fmt.Errorf("exited: %v", g.err)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ensureSecrets writes the local secrets a fresh checkout lacks: the webhook client's
// random signing secret (kept across runs) and the JWKS (rewritten, it follows the key).
func ensureSecrets(dir string, issuer *devauth.Issuer) error {
	hook := filepath.Join(dir, "webhook-"+WebhookClient)
	if _, err := os.Stat(hook); errors.Is(err, fs.ErrNotExist) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("stack: webhook secret: %w", err)
		}
		if err := os.WriteFile(hook, []byte(hex.EncodeToString(b)), 0o600); err != nil {
			return fmt.Errorf("stack: webhook secret: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("stack: webhook secret: %w", err)
	}
	doc, err := issuer.Key.JWKS()
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "jwks"), doc, 0o644); err != nil {
		return fmt.Errorf("stack: jwks secret: %w", err)
	}
	return nil
}

// envName reports whether s can be an environment variable name (secrets named like
// "webhook-dev-client" are read from WAOOAW_SECRETS_DIR instead).
func envName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// mergeEnv returns base with the keys of set replaced or added.
func mergeEnv(base []string, set map[string]string) []string {
	out := make([]string, 0, len(base)+len(set))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+set[k])
	}
	return out
}

// report prints what runs where.
func (r *run) report(spec *infraspec.Spec, ep *Endpoints, fns []function, logDir string) {
	out := r.o.Out
	fmt.Fprintf(out, "  firestore   %-26s FIRESTORE_EMULATOR_HOST, log %s\n", ep.Firestore, filepath.Join(logDir, "firestore.log"))
	fmt.Fprintf(out, "  pubsub      %-26s PUBSUB_EMULATOR_HOST, project %s, log %s\n", ep.PubSub, Project, filepath.Join(logDir, "pubsub.log"))
	fmt.Fprintf(out, "  jwks        %s (dev issuer; `waooaw-local token` signs)\n", ep.JWKS)
	for _, fn := range fns {
		how := "http"
		if fn.spec.Trigger.Type == "pubsub" {
			how = "push from " + fn.spec.Trigger.Subscription + " (topic " + fn.spec.Trigger.Topic + ")"
		}
		fmt.Fprintf(out, "  %-11s %-26s %s=%s, %s, log %s\n", fn.spec.Name, ep.Functions[fn.spec.Name], "FUNCTION_TARGET", fn.spec.EntryPoint, how, filepath.Join(logDir, fn.spec.Name+".log"))
	}
	fmt.Fprintf(out, "  topics      %d, and %d subscriptions each with a dead-letter topic\n", len(spec.Topics), len(spec.Subscriptions))
}

// WorkflowsParent is where the local stack deploys workflows: the spec's region in the
// local project.
func WorkflowsParent(spec *infraspec.Spec) string {
	return "projects/" + Project + "/locations/" + spec.Region
}

// deployWorkflows deploys every workflows/*.yaml through the emulator's Workflows API, as
// a deploy to Cloud Workflows would, so a workflow the API refuses stops the stack.
func deployWorkflows(ctx context.Context, root, url, parent string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "workflows", "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("workflows: %w", err)
	}
	return workflows.DeployFiles(ctx, url, parent, files...)
}
