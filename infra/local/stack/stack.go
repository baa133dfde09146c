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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"waooaw.dev/governance/infra/local/devauth"
	"waooaw.dev/governance/infra/local/emulators"
	"waooaw.dev/governance/infra/local/funczip"
	"waooaw.dev/governance/infra/local/infraspec"
	"waooaw.dev/governance/infra/local/meter"
	"waooaw.dev/governance/infra/local/workflows"
)

// Project is the project id every local service uses.
const Project = "waooaw-local"

// WebhookClient is the development webhook client whose secret the stack creates.
const WebhookClient = "dev-client"

// Options say where the stack lives and how it runs.
type Options struct {
	Root     string    // repository root (holds infra/infrastructure.yaml and go.work)
	StateDir string    // keys, secrets, logs, binaries, endpoints.json; default <Root>/.local
	Out      io.Writer // where the stack says what it started; default os.Stdout
	// StopGrace is how long a function or emulator gets after SIGTERM before SIGKILL.
	StopGrace time.Duration
	// Clock is the Workflows emulator's clock: workflows.ClockReal (default) or
	// workflows.ClockVirtual, moved only by POST <workflows>/emulator/v1/clock:advance.
	Clock string
	// Fresh starts with no Firestore data, no workflow executions and no virtual clock.
	Fresh bool
	// Meter puts the usage meter (package meter) between the functions and what they call:
	// Firestore and Pub/Sub through counting proxies, each function behind one, the
	// Workflows emulator's step counters read; GET <control>/v1/usage answers the counts.
	// Function URLs are then the meter's (kept across runs like the functions' own).
	Meter bool
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
	if o.Clock == "" {
		o.Clock = workflows.ClockReal
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
// everything it started, in reverse order, saving Firestore's documents before its emulator
// stops, and returns. A failed save is returned. A second Run on the same state folder fails
// with *RunningError while the first is up.
func Run(ctx context.Context, o Options) (err error) {
	o.defaults()
	if o.Clock != workflows.ClockReal && o.Clock != workflows.ClockVirtual {
		return fmt.Errorf("stack: unknown clock %q (real or virtual)", o.Clock)
	}
	lock, err := AcquireLock(o.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()
	warnLeftovers(o)
	r := &run{o: o, groups: map[string]int{}}
	defer r.stopAll()
	// The supervisor and the control endpoint end with the stack, before what they manage.
	live, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := r.start(live); err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "waooaw-local: up; Ctrl-C stops everything")
	<-ctx.Done()
	fmt.Fprintln(o.Out, "waooaw-local: stopping")
	cancel()
	// pids.json and endpoints.json describe a running stack only.
	os.Remove(filepath.Join(o.StateDir, EndpointsFile))
	os.Remove(filepath.Join(o.StateDir, PidsFile))
	r.stopAll()
	return r.stopErr
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
	o       Options
	stops   []func() // in start order; stopAll runs them backwards
	stopErr error    // what stopping could not do (the Firestore export)

	mu     sync.Mutex
	groups map[string]int // process groups by service, as pids.json lists them
	pidsOK bool           // pids.json is written once the stack is up, then kept current
}

func (r *run) onStop(f func()) { r.stops = append(r.stops, f) }

func (r *run) stopAll() {
	for i := len(r.stops) - 1; i >= 0; i-- {
		r.stops[i]()
	}
	r.stops = nil
}

// setGroup records a service's process group (0: stopped) and rewrites pids.json when the
// stack is up, so that a test killing a group finds the current one.
func (r *run) setGroup(name string, pgid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pgid == 0 {
		delete(r.groups, name)
	} else {
		r.groups[name] = pgid
	}
	if r.pidsOK {
		if err := r.writePidsLocked(); err != nil {
			fmt.Fprintf(r.o.Out, "  warning     %v\n", err)
		}
	}
}

func (r *run) writePidsLocked() error {
	return writeJSON(filepath.Join(r.o.StateDir, PidsFile), Pids{Pid: os.Getpid(), Groups: r.groups})
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
	if r.o.Fresh {
		if err := r.clearState(); err != nil {
			return err
		}
	}
	logDir, err := r.dir("logs")
	if err != nil {
		return err
	}
	out := r.o.Out
	ports := loadPorts(r.o.StateDir)
	imported, err := r.firestoreImport()
	if err != nil {
		return err
	}

	// The emulators take seconds of JVM start-up; the builds overlap with it.
	type started struct {
		emu *emulators.Stack
		err error
	}
	emuCh := make(chan started, 1)
	go func() {
		s, err := emulators.Start(ctx, emulators.Options{LogDir: logDir, FirestoreImport: imported})
		emuCh <- started{s, err}
	}()
	var wfBin string
	var wfErr error
	wfBuilt := make(chan struct{})
	go func() {
		defer close(wfBuilt)
		wfBin, wfErr = r.build(ctx, "workflows-emulator", "./infra/local/cmd/workflows-emulator")
	}()
	fns, buildErr := r.buildFunctions(ctx, spec)
	<-wfBuilt
	buildErr = errors.Join(buildErr, wfErr)
	st := <-emuCh
	if st.err != nil {
		hint := ""
		if imported != "" {
			hint = "; `waooaw-local run --fresh` starts without it"
		}
		return fmt.Errorf("stack: %w (logs in %s%s)", st.err, logDir, hint)
	}
	emu := st.emu
	r.onStop(emu.Stop)
	// Runs before the emulators stop, after everything that writes to Firestore has. A
	// start that failed leaves the previous export as it was.
	r.onStop(func() {
		r.mu.Lock()
		up := r.pidsOK
		r.mu.Unlock()
		if up {
			r.stopErr = r.exportFirestore(emu.FirestoreHost)
		}
	})
	if buildErr != nil {
		return buildErr
	}
	pids := emu.Pids() // Start launches Firestore, then Pub/Sub
	r.setGroup("firestore", pids[0])
	r.setGroup("pubsub", pids[1])
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
	if err := ensureAnchorKey(secretsDir); err != nil {
		return err
	}
	gcs, err := r.startStorage(spec, ports)
	if err != nil {
		return err
	}
	r.onStop(func() { gcs.Close() })
	aiURLs, err := r.startAI(ports)
	if err != nil {
		return err
	}
	sink, channels, err := r.startSinks(ports, secretsDir)
	if err != nil {
		return err
	}
	r.onStop(func() { sink.Close() })

	// The Workflows emulator's address is fixed before anything starts: functions are given
	// it, and callbacks it hands out name it.
	wfPort, lost, err := ports.take("workflows")
	if err != nil {
		return err
	}
	wfURL := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(wfPort))
	if lost != 0 {
		fmt.Fprintf(out, "  warning     port %d of the last run's Workflows emulator is taken; callback URLs recorded before name it\n", lost)
	}

	ep := &Endpoints{Firestore: emu.FirestoreHost, PubSub: emu.PubSubHost, Functions: map[string]string{}, JWKS: jwksURL, DevToken: strings.TrimSuffix(jwksURL, devauth.JWKSPath) + devauth.TokenPath, Workflows: wfURL, Storage: gcs.Host(), AI: aiURLs, Sinks: sink.URL}
	fsHost, psHost := emu.FirestoreHost, emu.PubSubHost
	var m *meter.Meter
	if r.o.Meter {
		m = meter.New()
		fsp, err := m.Firestore("127.0.0.1:0", emu.FirestoreHost)
		if err != nil {
			return fmt.Errorf("stack: meter: %w", err)
		}
		r.onStop(func() { fsp.Close() })
		psp, err := m.PubSub("127.0.0.1:0", emu.PubSubHost)
		if err != nil {
			return fmt.Errorf("stack: meter: %w", err)
		}
		r.onStop(func() { psp.Close() })
		fsHost, psHost = fsp.Addr(), psp.Addr()
	}
	local := map[string]string{
		"GOOGLE_CLOUD_PROJECT":    Project,
		"FIRESTORE_EMULATOR_HOST": fsHost,
		"PUBSUB_EMULATOR_HOST":    psHost,
		"WAOOAW_JWKS_URL":         jwksURL,
		"WAOOAW_SECRETS_DIR":      secretsDir,
		"WAOOAW_WORKFLOWS_URL":    wfURL,
		"STORAGE_EMULATOR_HOST":   gcs.Host(),
		// The console's development sign-in (the gateway's EnvConsoleDevToken): only here.
		"WAOOAW_CONSOLE_DEV_TOKEN_URL": ep.DevToken,
	}
	for provider, v := range AIProviders {
		local[v] = aiURLs[provider]
	}
	for k, v := range channels {
		local[k] = v // the notifier's channels: the sinks, never the spec's receivers
	}
	ctl := &control{ctx: ctx, fns: map[string]*proc{}, onGroup: r.setGroup}
	for _, fn := range fns {
		p, err := r.startFunction(ctx, fn, ports, local, secretsDir, logDir)
		if err != nil {
			return err
		}
		ep.Functions[fn.spec.Name] = p.url
		if fn.spec.Name == "gateway" {
			local["WAOOAW_GATEWAY_URL"] = p.url // the notifier's acknowledge link
		}
		ctl.fns[fn.spec.Name] = p
		ctl.order = append(ctl.order, fn.spec.Name)
	}
	var internal []string
	if m != nil {
		// Everyone reaches a function through its meter: the workflow, pushes, clients.
		for _, name := range ctl.order {
			// A meter's port is kept across runs as a function's is: executions waiting
			// through a restart hold these URLs.
			port, _, err := ports.take("meter-" + name)
			if err != nil {
				return err
			}
			fp, err := m.Function(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), name, ep.Functions[name])
			if err != nil {
				return fmt.Errorf("stack: meter: %w", err)
			}
			r.onStop(func() { fp.Close() })
			ep.Functions[name] = fp.URL()
			internal = append(internal, strings.TrimPrefix(fp.URL(), "http://"))
		}
		m.Workflows(wfURL)
		ctl.usage = m.Handler()
	}
	ep.Gateway = ep.Functions["gateway"]

	// Started once the functions serve: executions it resumes call them at once.
	wfState, err := r.dir(WorkflowsDir)
	if err != nil {
		return err
	}
	wf := &proc{name: "workflows", url: wfURL, logPath: filepath.Join(logDir, "workflows.log"), grace: r.o.StopGrace,
		newCmd: func() *exec.Cmd {
			args := []string{"--addr", strings.TrimPrefix(wfURL, "http://"), "--state", wfState, "--clock", r.o.Clock}
			if len(internal) > 0 {
				// A call to a metered function is billed as a call to a Cloud Run function is.
				args = append(args, "--internal-hosts", strings.Join(internal, ","))
			}
			cmd := exec.Command(wfBin, args...)
			cmd.Dir = r.o.Root
			return cmd
		}}
	r.onStop(func() { wf.stop(true) })
	if err := wf.start(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("stack: workflows emulator: %w", err)
	}
	pid, _ := wf.state()
	r.setGroup("workflows", pid)
	go r.superviseWorkflows(ctx, wf, r.o.Clock)
	deployed, err := deployWorkflows(ctx, r.o.Root, wfURL, spec, ep.Functions, out)
	if err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	for _, f := range undeclaredWorkflows(r.o.Root, spec) {
		fmt.Fprintf(out, "  warning     %s is not declared in %s: not deployed\n", f, infraspec.RelPath)
	}

	ps, err := pubsub.NewClient(ctx, Project)
	if err != nil {
		return fmt.Errorf("stack: pubsub client: %w", err)
	}
	defer ps.Close()
	if err := emulators.Provision(ctx, ps, spec, ep.Functions); err != nil {
		return fmt.Errorf("stack: %w", err)
	}

	// Schedules start once everything they reach is up.
	if ctl.sched, err = newScheduler(spec, ep.Functions, out); err != nil {
		return fmt.Errorf("stack: %w", err)
	}
	ctl.sched.start(ctx)
	ctlSrv, ctlURL, err := serveControl(ctl)
	if err != nil {
		return err
	}
	r.onStop(func() { ctlSrv.Close() })
	ep.Control = ctlURL

	if err := ports.save(); err != nil {
		return err
	}
	r.mu.Lock()
	r.pidsOK = true
	err = r.writePidsLocked()
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(r.o.StateDir, EndpointsFile), ep); err != nil {
		return err
	}
	r.report(spec, ep, fns, logDir)
	from := "empty"
	if imported != "" {
		from = "imported from " + imported
	}
	fmt.Fprintf(out, "  data        Firestore %s; exported to %s on Ctrl-C\n", from, filepath.Join(r.o.StateDir, FirestoreExportDir))
	fmt.Fprintf(out, "  workflows   %-26s %d deployed under %s, clock %s, state %s, UI %s/ui/, log %s\n", ep.Workflows, len(deployed), WorkflowsParent(spec), r.o.Clock, wfState, ep.Workflows, wf.logPath)
	if r.o.Clock == workflows.ClockVirtual {
		fmt.Fprintf(out, "              move the clock: curl -X POST -d '{\"seconds\":3600}' %s/emulator/v1/clock:advance\n", ep.Workflows)
	}
	fmt.Fprintf(out, "  control     %-26s GET /v1/functions, POST /v1/functions/{name}:stop|:start, POST /v1/schedules/{name}:run\n", ep.Control)
	fmt.Fprintf(out, "  storage     %-26s STORAGE_EMULATOR_HOST, %d buckets in %s; %d schedules\n", ep.Storage, len(spec.Buckets), filepath.Join(r.o.StateDir, StorageDir), len(spec.Schedules))
	fmt.Fprintf(out, "  ai          groq %s, openai %s (local OpenAI-compatible servers; no keys until added to %s)\n", ep.AI["groq"], ep.AI["openai"], secretsDir)
	fmt.Fprintf(out, "  endpoints   %s\n", filepath.Join(r.o.StateDir, EndpointsFile))
	fmt.Fprintf(out, "  token       go run ./infra/local/cmd/waooaw-local token -role governor -subject me -engagement eng-1\n")
	return nil
}

// function is a built function ready to run.
type function struct {
	spec infraspec.Function
	bin  string
}

// buildFunctions builds each function of spec that has a cmd folder with Go files, a few
// at a time (linking dominates and is single-threaded); the others are reported and skipped,
// since functions land one at a time.
func (r *run) buildFunctions(ctx context.Context, spec *infraspec.Spec) ([]function, error) {
	var fns []function
	for _, f := range spec.Functions {
		cmdDir := filepath.Join(r.o.Root, f.Source, "cmd")
		if !funczip.HasSource(cmdDir) {
			fmt.Fprintf(r.o.Out, "  skipped     %-10s no %s/cmd with Go files yet\n", f.Name, f.Source)
			continue
		}
		fns = append(fns, function{spec: f})
	}
	errs := make([]error, len(fns))
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	var wg sync.WaitGroup
	for i := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			fns[i].bin, errs[i] = r.build(ctx, fns[i].spec.Name, "./"+filepath.ToSlash(filepath.Join(fns[i].spec.Source, "cmd")))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return fns, nil
}

// build compiles the package pkg of the workspace to <state>/bin/name.
func (r *run) build(ctx context.Context, name, pkg string) (string, error) {
	binDir, err := r.dir("bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Dir = r.o.Root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("stack: build %s: %w\n%s", name, err, b)
	}
	return bin, nil
}

// startFunction runs fn the way Cloud Functions does (PORT, FUNCTION_TARGET), on the port it
// had last run when free, and waits until it answers HTTP.
func (r *run) startFunction(ctx context.Context, fn function, ports *ports, local map[string]string, secretsDir, logDir string) (*proc, error) {
	port, _, err := ports.take(fn.spec.Name)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("stack: %s: secret %s: %w", fn.spec.Name, s.Secret, err)
		}
		env[s.Name] = string(b)
	}
	for k, v := range local {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	env["FUNCTION_TARGET"] = fn.spec.EntryPoint
	env["K_SERVICE"] = fn.spec.Name
	environ := mergeEnv(os.Environ(), env)

	p := &proc{name: fn.spec.Name, url: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		logPath: filepath.Join(logDir, fn.spec.Name+".log"), grace: r.o.StopGrace,
		newCmd: func() *exec.Cmd {
			cmd := exec.Command(fn.bin)
			cmd.Dir = r.o.Root
			cmd.Env = environ
			return cmd
		}}
	r.onStop(func() { p.stop(true) })
	if err := p.start(ctx, 30*time.Second); err != nil {
		return nil, err
	}
	pid, _ := p.state()
	r.setGroup(fn.spec.Name, pid)
	return p, nil
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
	fmt.Fprintf(out, "  dev token   %s (POST {\"role\",\"subject\",\"engagement\"}; `waooaw login --local`)\n", ep.DevToken)
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
