package pdp_test

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"waooaw.dev/governance/shared/policy"
)

// BenchmarkHandler is the pdp's own cost per decision, without HTTP transport.
func BenchmarkHandler(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"nocache", 0}, {"cache", policy.DefaultCacheSize}} {
		b.Run(c.name, func(b *testing.B) {
			h := handlerFor(b, policy.WithCacheSize(c.size))
			ps := probes(1000)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := ps[i%len(ps)]
				i++
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", p.path, bytes.NewReader(p.body)))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
