package stack

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"waooaw.dev/governance/infra/local/aiemu"
)

// AIProviders are the AI providers the stack stands in for, each by a local
// OpenAI-compatible server (package aiemu) in this process, and the variable that gives
// every function its base URL.
var AIProviders = map[string]string{
	"groq":   "WAOOAW_AI_GROQ_BASE_URL",
	"openai": "WAOOAW_AI_OPENAI_BASE_URL",
}

// startAI serves one aiemu per provider on the port it had last run and returns their
// base URLs (http://127.0.0.1:P/v1) by provider. No key is written: without one in the
// secrets folder the platform runs its rule-based path.
func (r *run) startAI(ports *ports) (map[string]string, error) {
	urls := map[string]string{}
	for _, name := range []string{"groq", "openai"} {
		port, _, err := ports.take("ai-" + name)
		if err != nil {
			return nil, err
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("stack: %s AI server: %w", name, err)
		}
		srv := &http.Server{Handler: aiemu.New(name), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Printf("stack: %s AI server: %v\n", name, err)
			}
		}()
		r.onStop(func() { srv.Close() })
		urls[name] = "http://" + l.Addr().String() + "/v1"
	}
	return urls, nil
}
