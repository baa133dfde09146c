package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// FunctionState is one function as the control endpoint reports it.
type FunctionState struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Pid  int    `json:"pid"` // its process group; 0 while stopped
	Up   bool   `json:"up"`
}

// control is the loopback endpoint through which tests and operators stop and start a
// function on its own address, as a crashed or redeployed instance would be:
//
//	GET  /v1/functions                 {"functions": [FunctionState...]}
//	POST /v1/functions/{name}:stop     SIGTERM to its group; it stays down
//	POST /v1/functions/{name}:start    started again on the same port, answered once it serves
type control struct {
	ctx     context.Context // the stack's: a start ends with it
	fns     map[string]*proc
	order   []string
	onGroup func(name string, pid int)
	usage   http.Handler // the usage meter's, when the stack runs with one
	sched   *scheduler   // GET /v1/schedules, POST /v1/schedules/{name}:run
}

func (c *control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/functions", func(w http.ResponseWriter, _ *http.Request) {
		out := make([]FunctionState, 0, len(c.order))
		for _, name := range c.order {
			out = append(out, c.state(name))
		}
		writeControl(w, http.StatusOK, map[string]any{"functions": out})
	})
	mux.HandleFunc("POST /v1/functions/{call}", func(w http.ResponseWriter, r *http.Request) {
		name, verb, _ := strings.Cut(r.PathValue("call"), ":")
		p, ok := c.fns[name]
		if !ok {
			writeControlError(w, http.StatusNotFound, fmt.Sprintf("no running function %q", name))
			return
		}
		switch verb {
		case "stop":
			p.stop(false)
			c.onGroup(name, 0)
		case "start":
			ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
			defer cancel()
			if err := p.start(ctx, 30*time.Second); err != nil {
				writeControlError(w, http.StatusInternalServerError, err.Error())
				return
			}
			pid, _ := p.state()
			c.onGroup(name, pid)
		default:
			writeControlError(w, http.StatusBadRequest, fmt.Sprintf("unknown verb %q: stop or start", verb))
			return
		}
		writeControl(w, http.StatusOK, c.state(name))
	})
	if c.sched != nil {
		c.sched.handle(mux)
	}
	if c.usage != nil {
		mux.Handle("/v1/usage", c.usage)
		mux.Handle("/v1/usage:reset", c.usage)
	}
	return mux
}

func (c *control) state(name string) FunctionState {
	p := c.fns[name]
	pid, up := p.state()
	return FunctionState{Name: name, URL: p.url, Pid: pid, Up: up}
}

// serveControl serves c on a loopback port until the returned server is closed.
func serveControl(c *control) (*http.Server, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("stack: control listener: %w", err)
	}
	srv := &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l) //nolint:errcheck // ends with Close
	return srv, "http://" + l.Addr().String(), nil
}

func writeControl(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeControlError(w http.ResponseWriter, code int, msg string) {
	writeControl(w, code, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}
