// Package meter counts, on the local stack, what Google bills: Firestore document reads,
// writes and deletes, Pub/Sub messages and bytes, function invocations, and (read from the
// Workflows emulator) workflow steps. A benchmark takes a Snapshot, runs N requests, takes
// another, and divides their Diff by N: the per-request figures a cost model uses.
//
// Each service is metered by a proxy that clients reach exactly as they reach the service:
//
//	m := meter.New()
//	fs, _ := m.Firestore("127.0.0.1:0", emulators.FirestoreHost) // gRPC (and REST) proxy
//	ps, _ := m.PubSub("127.0.0.1:0", emulators.PubSubHost)
//	fn, _ := m.Function("127.0.0.1:0", "genesis", "http://127.0.0.1:P") // HTTP reverse proxy
//	m.Workflows(workflowsURL) // the emulator's own step counters
//	defer fs.Close(); defer ps.Close(); defer fn.Close()
//
// Wiring it into the stack:
//   - start the emulators, then m.Firestore and m.PubSub in front of them, and give every
//     function and the Workflows emulator (its Pub/Sub connector) the proxies' addresses
//     as FIRESTORE_EMULATOR_HOST and PUBSUB_EMULATOR_HOST;
//   - start each function, then m.Function in front of it (its name, its URL, the route
//     patterns it serves), and use fn.URL() wherever the function's URL goes: push
//     subscriptions' endpoints, the workflow's *_URL variables, the gateway's callers;
//   - start the Workflows emulator with --internal-hosts set to the function proxies'
//     host:port (a stage call is an internal step, as a Cloud Run functions call is), and
//     call m.Workflows(its URL);
//   - serve m.Handler() on the stack's own HTTP server (GET /v1/usage, POST
//     /v1/usage:reset) and write its URL to endpoints.json.
//
// Provisioning (topics, schemas, subscriptions) may go straight to the emulators: only what
// goes through a proxy is counted. Clients outside the stack (tests, `make demo`) that call
// the gateway directly are not counted by the gateway's proxy unless they use its URL.
//
// Counters are a flat map of dotted names, so Diff and division need no knowledge of them:
//
//	firestore.reads                 documents billed as read (below)
//	firestore.reads.missing         of which lookups of documents that do not exist
//	firestore.writes                set, update and transform writes committed
//	firestore.deletes               deletes committed
//	firestore.write_bytes           encoded size of the documents committed writes set (a
//	                                measure of stored bytes, before Firestore's own overhead)
//	firestore.calls.<Method>        RPCs by method (Commit, BatchGetDocuments, RunQuery, …)
//	firestore.errors.<Code>         RPCs that ended with an error, by code
//	pubsub.publish.requests         Publish requests answered OK (gRPC and REST)
//	pubsub.publish.messages         messages published
//	pubsub.publish.bytes            data + attribute keys and values + ordering key
//	pubsub.publish.billed_bytes     as billed: bytes + 20 (timestamp) + message id, ≥ 1000 a request
//	pubsub.topics.<topic>.{messages,bytes,billed_bytes}
//	pubsub.deliver.{pulled,pushed}  messages delivered by pull/streaming pull, by push
//	pubsub.deliver.billed_bytes     delivered volume as billed (≥ 1000 a pull response or push)
//	pubsub.subscriptions.<sub>.{messages,billed_bytes}
//	pubsub.acks                     ack ids acknowledged
//	pubsub.calls.<Method>           RPCs by method
//	pubsub.errors.<Method>          RPCs that ended with an error
//	http.<function>.{invocations,request_bytes,response_bytes,errors}
//	http.<function>.billed_ms       request time, each request rounded up to 100 ms
//	http.<function>.paths.<pattern>.{invocations,request_bytes,response_bytes}
//	workflows.{executions,steps,internal_steps,external_steps,http_calls,external_http_calls,callback_waits}
//
// Firestore reads follow Google's billing page: each document a get, query, listener or
// transaction returns is one read; a query (or ListDocuments) returning nothing is one;
// documents an offset skips are read too; a lookup of a missing document is one; an
// aggregation is one read per 1,000 index entries it matched, at least one, taken from its
// count (an aggregation without a count is one read). A listener's reads are its document
// changes, the initial results included. Writes are counted only when the commit succeeds
// (BatchWrite: each write whose status is OK). Firestore REST requests are forwarded and not
// counted (the Go client speaks gRPC). A pull answered with no message is not counted as a
// delivery.
package meter

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Snapshot is the counters at one moment.
type Snapshot struct {
	Time     time.Time        `json:"time"`
	Counters map[string]int64 `json:"counters"`
}

// Get returns one counter (0 when absent).
func (s Snapshot) Get(name string) int64 { return s.Counters[name] }

// Per divides every counter by n (the requests run between two snapshots).
func (s Snapshot) Per(n int) map[string]float64 {
	out := make(map[string]float64, len(s.Counters))
	for k, v := range s.Counters {
		out[k] = float64(v) / float64(n)
	}
	return out
}

// String lists the non-zero counters, one a line, sorted.
func (s Snapshot) String() string {
	keys := make([]string, 0, len(s.Counters))
	for k, v := range s.Counters {
		if v != 0 {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, s.Counters[k])
	}
	return b.String()
}

// Diff is after − before, counter by counter; counters equal in both are left out.
func Diff(before, after Snapshot) Snapshot {
	out := Snapshot{Time: after.Time, Counters: map[string]int64{}}
	for k, v := range after.Counters {
		if d := v - before.Counters[k]; d != 0 {
			out.Counters[k] = d
		}
	}
	for k, v := range before.Counters {
		if _, ok := after.Counters[k]; !ok && v != 0 {
			out.Counters[k] = -v
		}
	}
	return out
}

// Source is a set of counters kept elsewhere (the Workflows emulator's), read at each
// Snapshot. Its names are prefixed with the source's name.
type Source func(ctx context.Context) (map[string]int64, error)

// Meter holds every counter. It is safe for concurrent use.
type Meter struct {
	mu       sync.Mutex
	counters map[string]int64

	srcMu    sync.Mutex
	sources  map[string]Source
	baseline map[string]int64 // sources' values at the last Reset
}

// New returns a meter with every counter at zero.
func New() *Meter {
	return &Meter{counters: map[string]int64{}, sources: map[string]Source{}, baseline: map[string]int64{}}
}

// addMap adds a batch of deltas under one lock.
func (m *Meter) addMap(d map[string]int64) {
	if len(d) == 0 {
		return
	}
	m.mu.Lock()
	for k, n := range d {
		if n != 0 {
			m.counters[k] += n
		}
	}
	m.mu.Unlock()
}

// AddSource reads counters from elsewhere at each Snapshot, as name.<counter>.
func (m *Meter) AddSource(name string, src Source) {
	m.srcMu.Lock()
	defer m.srcMu.Unlock()
	m.sources[name] = src
}

// Snapshot returns the counters now. A source that cannot be read is an error, so a
// benchmark never divides a silent zero.
func (m *Meter) Snapshot(ctx context.Context) (Snapshot, error) {
	s := Snapshot{Time: time.Now().UTC()}
	m.mu.Lock()
	s.Counters = maps.Clone(m.counters)
	m.mu.Unlock()
	if s.Counters == nil {
		s.Counters = map[string]int64{}
	}
	src, err := m.readSources(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	m.srcMu.Lock()
	for k, v := range src {
		s.Counters[k] = v - m.baseline[k]
	}
	m.srcMu.Unlock()
	return s, nil
}

func (m *Meter) readSources(ctx context.Context) (map[string]int64, error) {
	m.srcMu.Lock()
	srcs := maps.Clone(m.sources)
	m.srcMu.Unlock()
	out := map[string]int64{}
	for name, src := range srcs {
		c, err := src(ctx)
		if err != nil {
			return nil, fmt.Errorf("meter: source %s: %w", name, err)
		}
		for k, v := range c {
			out[name+"."+k] = v
		}
	}
	return out, nil
}

// Reset sets every counter back to zero (sources: their current values become zero).
func (m *Meter) Reset(ctx context.Context) error {
	src, err := m.readSources(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.counters = map[string]int64{}
	m.mu.Unlock()
	m.srcMu.Lock()
	m.baseline = src
	m.srcMu.Unlock()
	return nil
}

// Handler serves GET /v1/usage (the Snapshot as JSON) and POST /v1/usage:reset.
func (m *Meter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/usage", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Snapshot(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s) //nolint:errcheck // the client went away
	})
	mux.HandleFunc("POST /v1/usage:reset", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Reset(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
