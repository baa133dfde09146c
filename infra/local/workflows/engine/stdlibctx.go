package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
	"waooaw.dev/governance/infra/local/workflows/stdlib"
)

// Now implements stdlib.Ctx.
func (x *Exec) Now() time.Time { return x.Host.Now() }

// Getenv implements stdlib.Ctx.
func (x *Exec) Getenv(name string) (string, bool) { return x.Host.Getenv(name) }

// HTTPClient implements stdlib.Ctx.
func (x *Exec) HTTPClient() *http.Client { return x.Host.HTTPClient() }

// Log implements stdlib.Ctx.
func (x *Exec) Log(severity string, v any) {
	x.St.LogSeq++
	s, ok := v.(string)
	if !ok {
		s = lang.Repr(v)
	}
	text := s
	if len(text) > MaxLogText {
		text = strings.ToValidUTF8(text[:MaxLogText], "")
	}
	if len(s) > 512 {
		s = s[:512]
	}
	x.St.LastLog = severity + ": " + s
	if len(x.St.Logs) >= MaxLogs {
		n := copy(x.St.Logs, x.St.Logs[len(x.St.Logs)-MaxLogs+1:])
		x.St.Logs = x.St.Logs[:n]
	}
	x.St.Logs = append(x.St.Logs, LogEntry{Seq: x.St.StepCount, Time: x.Host.Now().UnixNano(), Severity: severity, Text: text})
	x.Host.Log(severity, v)
}

// Token implements stdlib.Ctx: the host's token, or none.
func (x *Exec) Token(kind, audience string) (string, error) {
	if ts, ok := x.Host.(TokenSource); ok {
		return ts.Token(kind, audience)
	}
	return "", nil
}

// NewCallback implements stdlib.Ctx.
func (x *Exec) NewCallback(method string) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("engine: callback id: %w", err)
	}
	id := hex.EncodeToString(b[:])
	if x.St.Callbacks == nil {
		x.St.Callbacks = map[string]*Callback{}
	}
	x.St.Callbacks[id] = &Callback{ID: id, Method: method, Waiter: -1}
	return x.Host.CallbackURL(id), nil
}

var _ stdlib.Ctx = (*Exec)(nil)
