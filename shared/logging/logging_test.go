package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func decodeLine(t *testing.T, b []byte) map[string]any {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %d: %s", len(lines), b)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return m
}

func TestHandlerFields(t *testing.T) {
	traced := WithCorrelationID(WithTrace(context.Background(), Trace{ID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Sampled: true}), "corr-1")
	tests := []struct {
		name    string
		ctx     context.Context
		log     func(l *slog.Logger, ctx context.Context)
		want    map[string]any // top-level fields that must be present with these values
		absent  []string
		nested  string // a JSON path "a.b" that must hold "v"
		project string
	}{
		{
			name:   "severity and message",
			ctx:    context.Background(),
			log:    func(l *slog.Logger, ctx context.Context) { l.WarnContext(ctx, "disk low", "free", 3) },
			want:   map[string]any{"severity": "WARNING", "message": "disk low", "free": 3.0},
			absent: []string{"level", "msg", KeyTrace, KeyLabels},
		},
		{
			name:    "trace and correlation id",
			ctx:     traced,
			project: "p1",
			log:     func(l *slog.Logger, ctx context.Context) { l.InfoContext(ctx, "accepted") },
			want: map[string]any{
				"severity": "INFO", KeyTrace: "projects/p1/traces/4bf92f3577b34da6a3ce929d0e0e4736",
				KeySpanID: "00f067aa0ba902b7", KeyTraceSampled: true,
				KeyLabels: map[string]any{"correlation_id": "corr-1"},
			},
		},
		{
			name: "trace stays top level inside a group",
			ctx:  traced,
			log: func(l *slog.Logger, ctx context.Context) {
				l.With("a", 1).WithGroup("req").With("path", "/x").ErrorContext(ctx, "failed", "status", 500)
			},
			want:   map[string]any{"severity": "ERROR", "a": 1.0, KeyTrace: "4bf92f3577b34da6a3ce929d0e0e4736", KeyLabels: map[string]any{"correlation_id": "corr-1"}},
			nested: "req.status",
		},
		{
			name: "critical",
			ctx:  context.Background(),
			log:  func(l *slog.Logger, ctx context.Context) { l.Log(ctx, LevelCritical, "chain broken") },
			want: map[string]any{"severity": "CRITICAL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.log(New(&buf, &Options{Project: tt.project}), tt.ctx)
			m := decodeLine(t, buf.Bytes())
			for k, v := range tt.want {
				got, _ := json.Marshal(m[k])
				want, _ := json.Marshal(v)
				if string(got) != string(want) {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			for _, k := range tt.absent {
				if _, ok := m[k]; ok {
					t.Errorf("field %s present: %v", k, m)
				}
			}
			if _, ok := m["time"]; !ok {
				t.Error("no time field")
			}
			if tt.nested != "" {
				parts := strings.Split(tt.nested, ".")
				grp, _ := m[parts[0]].(map[string]any)
				if grp == nil || grp[parts[1]] == nil || grp["path"] != "/x" {
					t.Errorf("group %s not nested as expected: %v", parts[0], m)
				}
			}
		})
	}
}

func TestSourceLocationAndLevel(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, &Options{AddSource: true, Level: slog.LevelWarn})
	l.Info("dropped")
	if buf.Len() != 0 {
		t.Fatalf("info logged below Warn level: %s", buf.String())
	}
	l.Warn("kept")
	m := decodeLine(t, buf.Bytes())
	src, _ := m[KeySource].(map[string]any)
	if src == nil || !strings.HasSuffix(src["file"].(string), "logging_test.go") || src["line"] == "" || !strings.Contains(src["function"].(string), "TestSourceLocationAndLevel") {
		t.Fatalf("sourceLocation = %v", m[KeySource])
	}
}

func TestTraceFromRequest(t *testing.T) {
	tests := []struct {
		name   string
		header map[string]string
		want   Trace
		ok     bool
	}{
		{"traceparent sampled", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}, Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true}, true},
		{"traceparent wins", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"}, Trace{"4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", false}, true},
		{"cloud trace context", map[string]string{"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/255;o=1"}, Trace{"105445aa7843bc8bf206b12000100000", "00000000000000ff", true}, true},
		{"cloud trace id only", map[string]string{"X-Cloud-Trace-Context": "105445AA7843BC8BF206B12000100000"}, Trace{ID: "105445aa7843bc8bf206b12000100000"}, true},
		{"zero trace id refused", map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, Trace{}, false},
		{"garbage", map[string]string{"traceparent": "nope", "X-Cloud-Trace-Context": "xyz"}, Trace{}, false},
		{"none", nil, Trace{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			got, ok := TraceFromRequest(r)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("TraceFromRequest = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestContextHelpers(t *testing.T) {
	ctx := WithCorrelationID(context.Background(), "c9")
	if CorrelationID(ctx) != "c9" || CorrelationID(context.Background()) != "" {
		t.Fatal("CorrelationID round trip failed")
	}
	if _, ok := TraceFrom(ctx); ok {
		t.Fatal("TraceFrom found a trace that was never set")
	}
}
