package api

import (
	"net/http"
	"strings"

	"waooaw.dev/governance/infra/local/workflows/service"
)

// EmulatorHandler serves the emulator's own API under /emulator/v1/: the clock
// (ClockHandler) and the step counters, which Google's API does not expose:
//
//	GET /emulator/v1/usage                 every execution since start (service.Totals)
//	GET /emulator/v1/{execution name}:usage one execution (engine.Usage)
func EmulatorHandler(svc *service.Service) http.Handler {
	clock := ClockHandler(svc)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/emulator/v1/usage" && r.Method == http.MethodGet:
			writeJSON(w, 200, svc.TotalUsage())
		case strings.HasSuffix(p, ":usage") && r.Method == http.MethodGet:
			name := strings.TrimSuffix(strings.TrimPrefix(p, "/emulator/v1/"), ":usage")
			u, err := svc.ExecutionUsage(name)
			if err != nil {
				WriteError(w, err)
				return
			}
			writeJSON(w, 200, u)
		default:
			clock(w, r)
		}
	})
}
