package meter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// FunctionProxy is a metering reverse proxy in front of one function (any HTTP server).
type FunctionProxy struct {
	ln  net.Listener
	srv *http.Server
}

// URL is the proxy's base URL, to use wherever the function's URL would go.
func (p *FunctionProxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy.
func (p *FunctionProxy) Close() error { return p.srv.Close() }

// Function starts a proxy on addr in front of the function called name at upstream
// ("http://host:port"). See FunctionHandler for what it counts.
func (m *Meter) Function(addr, name, upstream string, patterns ...string) (*FunctionProxy, error) {
	h, err := m.FunctionHandler(name, upstream, patterns...)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("meter: listen %s: %w", addr, err)
	}
	p := &FunctionProxy{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go p.srv.Serve(ln) //nolint:errcheck // ends at Close
	return p, nil
}

// maxDistinctPaths bounds the path keys of one function; past it, "other".
const maxDistinctPaths = 200

// FunctionHandler forwards every request to upstream and counts, under http.<name>, its
// invocations, request and response body bytes and 5xx answers, in total and per path:
// the first of patterns (http.ServeMux patterns, e.g. "POST /v1/stages/{name}") that
// matches, else the method and the path with id-like segments as {id}. A Pub/Sub push it
// forwards is also counted as a delivery (pubsub.deliver.pushed and billed bytes), each
// attempt, since each is billed.
func (m *Meter) FunctionHandler(name, upstream string, patterns ...string) (http.Handler, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("meter: function %s: bad upstream %q: %v", name, upstream, err)
	}
	var mux *http.ServeMux
	if len(patterns) > 0 {
		mux = http.NewServeMux()
		for _, p := range patterns {
			if err := register(mux, p); err != nil {
				return nil, fmt.Errorf("meter: function %s: %w", name, err)
			}
		}
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	h := &functionMeter{m: m, prefix: "http." + name + ".", rp: rp, mux: mux, seen: map[string]bool{}}
	return h, nil
}

func register(mux *http.ServeMux, pattern string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pattern %q: %v", pattern, r)
		}
	}()
	mux.Handle(pattern, http.NotFoundHandler())
	return nil
}

type functionMeter struct {
	m      *Meter
	prefix string
	rp     *httputil.ReverseProxy
	mux    *http.ServeMux

	seen map[string]bool // guarded by m.mu
}

func (h *functionMeter) pathKey(r *http.Request) string {
	if h.mux != nil {
		if _, p := h.mux.Handler(r); p != "" {
			return p
		}
	}
	segs := strings.Split(r.URL.Path, "/")
	for i, s := range segs {
		if idLike(s) {
			segs[i] = "{id}"
			if j := strings.IndexByte(s, ':'); j > 0 {
				segs[i] += s[j:] // a custom verb: /approvals/{id}:decide
			}
		}
	}
	return r.Method + " " + strings.Join(segs, "/")
}

// idLike says whether a path segment names one resource rather than a route: it holds a
// digit and is long, as generated ids are.
func idLike(s string) bool {
	if j := strings.IndexByte(s, ':'); j > 0 {
		s = s[:j]
	}
	return len(s) >= 12 && strings.ContainsAny(s, "0123456789")
}

func (h *functionMeter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var push map[string]int64
	if r.Method == http.MethodPost && r.Body != nil && isJSON(r.Header.Get("Content-Type")) && r.ContentLength >= 0 && r.ContentLength <= 10<<20 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "meter: read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		push = pushDelivery(body)
	}
	in := &countingReader{r: r.Body}
	if r.Body != nil {
		r.Body = in
	}
	out := &countingWriter{ResponseWriter: w}
	key := h.pathKey(r)
	start := time.Now()
	h.rp.ServeHTTP(out, r)
	took := time.Since(start)

	p := h.prefix + "paths." + key + "."
	d := map[string]int64{
		h.prefix + "invocations": 1, h.prefix + "request_bytes": in.n, h.prefix + "response_bytes": out.n,
		h.prefix + "billed_ms": billedMillis(took),
	}
	if out.status >= 500 {
		d[h.prefix+"errors"] = 1
	}
	h.m.mu.Lock()
	if !h.seen[key] && len(h.seen) >= maxDistinctPaths {
		p = h.prefix + "paths.other."
	} else {
		h.seen[key] = true
	}
	h.m.mu.Unlock()
	d[p+"invocations"], d[p+"request_bytes"], d[p+"response_bytes"] = 1, in.n, out.n
	for k, v := range push {
		d[k] += v
	}
	h.m.addMap(d)
}

// billedMillis is a request's time as Cloud Run functions bill it: rounded up to the next
// 100 ms. Measured at the proxy, it includes the loopback hop, which only rounds up.
func billedMillis(d time.Duration) int64 {
	const unit = 100 * time.Millisecond
	return int64((d+unit-1)/unit) * unit.Milliseconds()
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// pushDelivery reads a Pub/Sub push request's envelope; nil when the body is not one.
func pushDelivery(body []byte) map[string]int64 {
	if !bytes.Contains(body, []byte(`"subscription"`)) || !bytes.Contains(body, []byte(`"message"`)) {
		return nil
	}
	var env struct {
		Message *struct {
			Data        []byte            `json:"data"`
			Attributes  map[string]string `json:"attributes"`
			MessageID   string            `json:"messageId"`
			OrderingKey string            `json:"orderingKey"`
		} `json:"message"`
		Subscription string `json:"subscription"`
	}
	if json.Unmarshal(body, &env) != nil || env.Message == nil || env.Subscription == "" {
		return nil
	}
	msg := env.Message
	return delivered(lastSegment(env.Subscription), "pushed", []*pubsubpb.ReceivedMessage{{Message: &pubsubpb.PubsubMessage{
		Data: msg.Data, Attributes: msg.Attributes, MessageId: msg.MessageID, OrderingKey: msg.OrderingKey,
	}}})
}

type countingReader struct {
	r io.ReadCloser
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) Close() error { return c.r.Close() }

type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (c *countingWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *countingWriter) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	n, err := c.ResponseWriter.Write(b)
	c.n += int64(n)
	return n, err
}

// Unwrap lets the reverse proxy flush through the wrapper.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
