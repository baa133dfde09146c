// Package logging writes structured logs in the JSON shape Cloud Logging reads from a
// function's stdout: severity, message, time, the request's trace, and correlation_id as a
// label so one business flow can be followed across functions with a single filter.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Cloud Logging's special JSON fields.
const (
	KeyTrace        = "logging.googleapis.com/trace"
	KeySpanID       = "logging.googleapis.com/spanId"
	KeyTraceSampled = "logging.googleapis.com/trace_sampled"
	KeyLabels       = "logging.googleapis.com/labels"
	KeySource       = "logging.googleapis.com/sourceLocation"
)

// LevelCritical is above slog.LevelError and maps to Cloud Logging's CRITICAL: what needs
// a person now, such as a function that cannot start at all.
const LevelCritical = slog.Level(12)

// Options configure a handler.
type Options struct {
	// Project turns a trace id into the resource name Cloud Logging links to Cloud Trace
	// ("projects/<Project>/traces/<id>"); empty leaves the bare id.
	Project string
	// Level is the minimum level written; nil means Info.
	Level slog.Leveler
	// AddSource writes the caller as logging.googleapis.com/sourceLocation.
	AddSource bool
}

// New returns a logger writing Cloud Logging JSON lines to w.
func New(w io.Writer, opts *Options) *slog.Logger { return slog.New(NewHandler(w, opts)) }

// NewHandler returns a slog.Handler writing Cloud Logging JSON lines to w.
func NewHandler(w io.Writer, opts *Options) slog.Handler {
	if opts == nil {
		opts = &Options{}
	}
	jh := slog.NewJSONHandler(w, &slog.HandlerOptions{
		AddSource:   opts.AddSource,
		Level:       opts.Level,
		ReplaceAttr: replaceTopLevel,
	})
	return &handler{inner: jh, project: opts.Project}
}

// Severity is Cloud Logging's name for a slog level.
func Severity(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "DEBUG"
	case l < slog.LevelWarn:
		return "INFO"
	case l < slog.LevelError:
		return "WARNING"
	case l < LevelCritical:
		return "ERROR"
	default:
		return "CRITICAL"
	}
}

func replaceTopLevel(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		lvl, _ := a.Value.Any().(slog.Level)
		return slog.String("severity", Severity(lvl))
	case slog.MessageKey:
		a.Key = "message"
	case slog.SourceKey:
		if src, ok := a.Value.Any().(*slog.Source); ok {
			return slog.Group(KeySource,
				slog.String("file", src.File),
				slog.String("line", strconv.Itoa(src.Line)),
				slog.String("function", src.Function))
		}
	}
	return a
}

// handler adds the request's trace and correlation id (from the context) at the top level of
// each record, where Cloud Logging looks for them, even inside WithGroup.
type handler struct {
	inner   slog.Handler // has every WithAttrs made before the first WithGroup
	ops     []op         // WithGroup/WithAttrs calls from the first WithGroup on, replayed per record
	project string
}

type op struct {
	group string
	attrs []slog.Attr
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	if len(h.ops) == 0 {
		c.inner = h.inner.WithAttrs(attrs)
		return &c
	}
	c.ops = append(h.ops[:len(h.ops):len(h.ops)], op{attrs: attrs})
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.ops = append(h.ops[:len(h.ops):len(h.ops)], op{group: name})
	return &c
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	extra := h.contextAttrs(ctx)
	if len(extra) == 0 && len(h.ops) == 0 {
		return h.inner.Handle(ctx, r)
	}
	if len(h.ops) == 0 {
		r.AddAttrs(extra...)
		return h.inner.Handle(ctx, r)
	}
	// Groups are open: put the extras on the group-free handler, then reopen the groups.
	inner := h.inner
	if len(extra) > 0 {
		inner = inner.WithAttrs(extra)
	}
	for _, o := range h.ops {
		if o.group != "" {
			inner = inner.WithGroup(o.group)
		} else {
			inner = inner.WithAttrs(o.attrs)
		}
	}
	return inner.Handle(ctx, r)
}

func (h *handler) contextAttrs(ctx context.Context) []slog.Attr {
	if ctx == nil {
		return nil
	}
	var out []slog.Attr
	if tr, ok := ctx.Value(traceKey{}).(Trace); ok && tr.ID != "" {
		name := tr.ID
		if h.project != "" {
			name = "projects/" + h.project + "/traces/" + tr.ID
		}
		out = append(out, slog.String(KeyTrace, name))
		if tr.SpanID != "" {
			out = append(out, slog.String(KeySpanID, tr.SpanID))
		}
		out = append(out, slog.Bool(KeyTraceSampled, tr.Sampled))
	}
	if id, ok := ctx.Value(correlationKey{}).(string); ok && id != "" {
		out = append(out, slog.Group(KeyLabels, slog.String("correlation_id", id)))
	}
	return out
}

type (
	traceKey       struct{}
	correlationKey struct{}
)

// Trace identifies the Cloud Trace span a request belongs to.
type Trace struct {
	ID      string // 32 hex characters
	SpanID  string // 16 hex characters
	Sampled bool
}

// WithTrace returns ctx carrying tr, which the handler writes on every record logged with it.
func WithTrace(ctx context.Context, tr Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

// TraceFrom returns the trace carried by ctx.
func TraceFrom(ctx context.Context) (Trace, bool) {
	tr, ok := ctx.Value(traceKey{}).(Trace)
	return tr, ok
}

// HeaderCorrelationID is the HTTP header that carries a business flow's correlation id into
// a function and back out, the same on every function.
const HeaderCorrelationID = "X-Correlation-Id"

var correlationRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// ValidCorrelationID reports whether id may be used as a correlation id: 1 to 128 of
// [A-Za-z0-9._:-], so it is safe in a log label and as a Pub/Sub ordering key.
func ValidCorrelationID(id string) bool { return correlationRE.MatchString(id) }

// WithCorrelationID returns ctx carrying the business flow's correlation id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the correlation id carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

var (
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	cloudTraceRE  = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]+))?(?:;o=([01]))?$`)
)

// TraceFromRequest reads the W3C traceparent header, else Google's X-Cloud-Trace-Context
// ("TRACE/SPAN;o=1", span in decimal). ok is false when neither is usable.
func TraceFromRequest(r *http.Request) (Trace, bool) {
	if m := traceparentRE.FindStringSubmatch(strings.TrimSpace(r.Header.Get("traceparent"))); m != nil {
		flags, _ := strconv.ParseUint(m[3], 16, 8)
		if m[1] != strings.Repeat("0", 32) {
			return Trace{ID: m[1], SpanID: m[2], Sampled: flags&1 == 1}, true
		}
	}
	if m := cloudTraceRE.FindStringSubmatch(strings.TrimSpace(r.Header.Get("X-Cloud-Trace-Context"))); m != nil {
		tr := Trace{ID: strings.ToLower(m[1]), Sampled: m[3] == "1"}
		if span, err := strconv.ParseUint(m[2], 10, 64); err == nil && span != 0 {
			tr.SpanID = fmt.Sprintf("%016x", span)
		}
		return tr, true
	}
	return Trace{}, false
}
