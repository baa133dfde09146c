// Package sinks are the local stand-ins for the notifier's receivers: an SMTP server and an
// HTTP webhook receiver that keep every message they accept, for tests to read over HTTP.
//
//	POST /hooks/{name}              a webhook delivery (answered 200, or a queued failure)
//	GET  /v1/messages[?sink=NAME]   what was received, oldest first (sink "email" is SMTP)
//	POST /v1/hooks/{name}:fail      {"status": 503, "count": 3, "match": "eng-1"}: the next
//	                                count deliveries to that hook whose body contains match
//	                                (any, without it) are answered status, and still recorded
//	DELETE /v1/messages             forget everything received
//
// The SMTP side speaks enough of RFC 5321 for net/smtp (EHLO, MAIL, RCPT, DATA, RSET, NOOP,
// QUIT) and offers no STARTTLS: it listens on loopback only.
package sinks

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Message is one received delivery.
type Message struct {
	Sink     string            `json:"sink"` // a hook's name, or "email"
	At       time.Time         `json:"at"`   // by the sink's clock
	Headers  map[string]string `json:"headers,omitempty"`
	Body     string            `json:"body"`
	Status   int               `json:"status,omitempty"` // what a hook answered
	From     string            `json:"from,omitempty"`
	To       []string          `json:"to,omitempty"`
	Accepted bool              `json:"accepted"`
}

// Sinks is a running SMTP sink and webhook sink.
type Sinks struct {
	// SMTPAddr is host:port of the SMTP sink; URL is the HTTP side's base URL.
	SMTPAddr string
	URL      string

	smtp net.Listener
	http *http.Server
	wg   sync.WaitGroup

	mu       sync.Mutex
	messages []Message
	failures map[string][]failure // per hook, in order
}

// Start listens on loopback: the SMTP sink on smtpAddr and the HTTP side on httpAddr
// ("127.0.0.1:0" picks a port).
func Start(smtpAddr, httpAddr string) (*Sinks, error) {
	sl, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		return nil, fmt.Errorf("sinks: smtp listen: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		sl.Close()
		return nil, fmt.Errorf("sinks: http listen: %w", err)
	}
	s := &Sinks{SMTPAddr: sl.Addr().String(), URL: "http://" + hl.Addr().String(), smtp: sl, failures: map[string][]failure{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{name}", s.serveHook)
	mux.HandleFunc("GET /v1/messages", s.serveMessages)
	mux.HandleFunc("DELETE /v1/messages", s.serveForget)
	mux.HandleFunc("POST /v1/hooks/{action}", s.serveFail)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.http.Serve(hl) }()
	go func() { defer s.wg.Done(); s.acceptSMTP() }()
	return s, nil
}

// failure is a queued answer for the next delivery whose body contains match.
type failure struct {
	status int
	match  string
}

// HookURL is the URL of the webhook named name.
func (s *Sinks) HookURL(name string) string { return s.URL + "/hooks/" + name }

// Close stops both sinks.
func (s *Sinks) Close() error {
	err := errors.Join(s.smtp.Close(), s.http.Shutdown(context.Background()))
	s.wg.Wait()
	return err
}

// Messages are the deliveries received so far to sink ("" for all).
func (s *Sinks) Messages(sink string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if sink == "" || m.Sink == sink {
			out = append(out, m)
		}
	}
	return out
}

func (s *Sinks) record(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
}

func (s *Sinks) serveHook(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := map[string]string{}
	for k := range r.Header {
		h[k] = r.Header.Get(k)
	}
	s.mu.Lock()
	code := http.StatusOK
	q := s.failures[name]
	if i := slices.IndexFunc(q, func(f failure) bool { return strings.Contains(string(body), f.match) }); i >= 0 {
		code = q[i].status
		s.failures[name] = slices.Delete(q, i, i+1)
	}
	s.messages = append(s.messages, Message{Sink: name, At: time.Now().UTC(), Headers: h, Body: string(body), Status: code, Accepted: code/100 == 2})
	s.mu.Unlock()
	w.WriteHeader(code)
	fmt.Fprintln(w, http.StatusText(code))
}

func (s *Sinks) serveMessages(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	msgs := s.Messages(r.URL.Query().Get("sink"))
	if msgs == nil {
		msgs = []Message{}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": msgs})
}

func (s *Sinks) serveForget(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	s.messages, s.failures = nil, map[string][]failure{}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sinks) serveFail(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("action"), ":fail")
	if !ok || name == "" {
		http.Error(w, "use POST /v1/hooks/{name}:fail", http.StatusNotFound)
		return
	}
	var b struct {
		Status, Count int
		Match         string
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Status < 400 || b.Status > 599 || b.Count < 1 {
		http.Error(w, `want {"status": 400..599, "count": n >= 1}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	for range b.Count {
		s.failures[name] = append(s.failures[name], failure{status: b.Status, match: b.Match})
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Sinks) acceptSMTP() {
	for {
		c, err := s.smtp.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.session(c) }()
	}
}

// session serves one SMTP connection.
func (s *Sinks) session(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	rd := bufio.NewReader(c)
	reply := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	reply("220 waooaw-sink ESMTP")
	var from string
	var to []string
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-waooaw-sink")
			reply("250 8BITMIME")
		case "HELO":
			reply("250 waooaw-sink")
		case "MAIL":
			from, to = addr(arg), nil
			reply("250 OK")
		case "RCPT":
			to = append(to, addr(arg))
			reply("250 OK")
		case "DATA":
			if from == "" || len(to) == 0 {
				reply("503 need MAIL and RCPT first")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			var b strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, ".")) // undo dot-stuffing
			}
			s.record(Message{Sink: "email", At: time.Now().UTC(), From: from, To: to, Body: b.String(), Accepted: true})
			reply("250 OK queued")
			from, to = "", nil
		case "RSET":
			from, to = "", nil
			reply("250 OK")
		case "NOOP":
			reply("250 OK")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 command not implemented")
		}
	}
}

// addr takes the address out of "FROM:<a@b>" or "TO:<a@b> ...".
func addr(arg string) string {
	_, v, _ := strings.Cut(arg, ":")
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '>'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimPrefix(v, "<")
}
