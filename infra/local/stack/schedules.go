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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"waooaw.dev/governance/infra/local/gcsemu"
	"waooaw.dev/governance/infra/local/infraspec"
)

// StorageDir is where the local Cloud Storage keeps its buckets, under the state folder.
const StorageDir = "storage"

// AnchorKeySecret is the local secret holding the audit anchors' signing key; the stack
// creates it at random once, as it does the webhook client's secret.
const AnchorKeySecret = "audit-anchor-key"

// startStorage serves the spec's buckets from <state>/storage on the port it had last run,
// each bucket created with its retention policy the first time. Cloud Storage has no
// official emulator: this is package gcsemu, in this process.
func (r *run) startStorage(spec *infraspec.Spec, ports *ports) (*gcsemu.Running, error) {
	dir, err := r.dir(StorageDir)
	if err != nil {
		return nil, err
	}
	port, _, err := ports.take("storage")
	if err != nil {
		return nil, err
	}
	srv, err := gcsemu.Start(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir)
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	for _, b := range spec.Buckets {
		err := srv.CreateBucket(b.Name, time.Duration(b.RetentionDays)*24*time.Hour)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			srv.Close()
			return nil, fmt.Errorf("stack: %w", err)
		}
	}
	return srv, nil
}

// ensureAnchorKey writes the anchors' random signing key into the secrets folder once.
func ensureAnchorKey(dir string) error {
	p := filepath.Join(dir, AnchorKeySecret)
	if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return fmt.Errorf("stack: anchor key: %w", err)
	}
	if err := os.WriteFile(p, []byte(hex.EncodeToString(b)), 0o600); err != nil {
		return fmt.Errorf("stack: anchor key: %w", err)
	}
	return nil
}

// scheduler is the local Cloud Scheduler: a ticker per schedule of the spec, posting to its
// function's path as a job does, and a way to run one now (the control endpoint's
// POST /v1/schedules/{name}:run).
type scheduler struct {
	jobs   map[string]job
	order  []string
	client *http.Client
	out    io.Writer

	mu   sync.Mutex
	last map[string]RunResult
}

type job struct {
	url   string
	every time.Duration
}

// RunResult is one run of a schedule as the control endpoint reports it.
type RunResult struct {
	Name   string    `json:"name"`
	URL    string    `json:"url"`
	At     time.Time `json:"at"`
	Status int       `json:"status"` // the function's HTTP status; 0 if it could not be reached
	Body   string    `json:"body"`   // its answer (the first 64 KiB)
	Error  string    `json:"error,omitempty"`
}

// newScheduler builds the jobs of spec against the functions' URLs; a schedule whose
// function does not run here is reported and left out.
func newScheduler(spec *infraspec.Spec, urls map[string]string, out io.Writer) (*scheduler, error) {
	s := &scheduler{jobs: map[string]job{}, client: &http.Client{Timeout: 5 * time.Minute}, out: out, last: map[string]RunResult{}}
	for _, sc := range spec.Schedules {
		every, err := sc.Every()
		if err != nil {
			return nil, err
		}
		base, ok := urls[sc.Function]
		if !ok {
			fmt.Fprintf(out, "  skipped     schedule %s: function %s does not run\n", sc.Name, sc.Function)
			continue
		}
		s.jobs[sc.Name] = job{url: strings.TrimSuffix(base, "/") + sc.Path, every: every}
		s.order = append(s.order, sc.Name)
	}
	return s, nil
}

// start runs every job on its ticker until ctx ends.
func (s *scheduler) start(ctx context.Context) {
	for _, name := range s.order {
		go func() {
			t := time.NewTicker(s.jobs[name].every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if res := s.run(ctx, name); res.Error != "" || res.Status/100 != 2 {
						fmt.Fprintf(s.out, "  warning     schedule %s: status %d %s\n", name, res.Status, res.Error)
					}
				}
			}
		}()
	}
}

// run posts the job once, as Cloud Scheduler would (an empty JSON body), and records the
// outcome.
func (s *scheduler) run(ctx context.Context, name string) RunResult {
	j := s.jobs[name]
	res := RunResult{Name: name, URL: j.url, At: time.Now().UTC()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.url, strings.NewReader("{}"))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "Google-Cloud-Scheduler")
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			res.Status, res.Body = resp.StatusCode, string(b)
		}
	}
	if err != nil {
		res.Error = err.Error()
	}
	s.mu.Lock()
	s.last[name] = res
	s.mu.Unlock()
	return res
}

// handle serves POST /v1/schedules/{name}:run (the run's outcome) and GET /v1/schedules
// (each schedule with its last run).
func (s *scheduler) handle(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/schedules", func(w http.ResponseWriter, _ *http.Request) {
		type state struct {
			Name  string     `json:"name"`
			URL   string     `json:"url"`
			Every string     `json:"every"`
			Last  *RunResult `json:"last"`
		}
		out := []state{}
		s.mu.Lock()
		for _, name := range s.order {
			st := state{Name: name, URL: s.jobs[name].url, Every: s.jobs[name].every.String()}
			if l, ok := s.last[name]; ok {
				st.Last = &l
			}
			out = append(out, st)
		}
		s.mu.Unlock()
		writeControl(w, http.StatusOK, map[string]any{"schedules": out})
	})
	mux.HandleFunc("POST /v1/schedules/{call}", func(w http.ResponseWriter, r *http.Request) {
		name, verb, _ := strings.Cut(r.PathValue("call"), ":")
		if _, ok := s.jobs[name]; !ok {
			writeControlError(w, http.StatusNotFound, fmt.Sprintf("no schedule %q", name))
			return
		}
		if verb != "run" {
			writeControlError(w, http.StatusBadRequest, fmt.Sprintf("unknown verb %q: run", verb))
			return
		}
		writeControl(w, http.StatusOK, s.run(r.Context(), name))
	})
}
