package notifier

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Channel is one way of telling the Governor: a webhook, email, and in the same way a push or
// SMS provider. Send delivers m once; an error wrapping ErrRefused will fail the same way on
// every attempt, any other may succeed when retried.
type Channel interface {
	Send(ctx context.Context, m Message) error
}

// ErrRefused marks a delivery the receiver refused for good (a 4xx other than 408 and 429, a
// 5xx SMTP reply): retrying it would fail again.
var ErrRefused = errors.New("notifier: delivery refused")

// Message is what every channel says about a pending approval.
type Message struct {
	ApprovalID   string `json:"approval_id"`
	EngagementID string `json:"engagement_id"`
	Type         string `json:"type"`
	Subject      string `json:"subject"`
	Action       string `json:"action"`
	Rationale    string `json:"rationale,omitempty"`
	Deadline     string `json:"deadline,omitempty"` // RFC 3339, when the approval times out
	// AcknowledgeURL is the gateway's acknowledge route for this approval (bearer token).
	AcknowledgeURL string `json:"acknowledge_url,omitempty"`
	// AcknowledgeLink is the signed, once-only link that acknowledges without a token, set
	// at each send (it names the cascade's execution and expires at the deadline).
	AcknowledgeLink string `json:"acknowledge_link,omitempty"`
	Step            int    `json:"step"` // the cascade's step, from 1
}

// Title is the message's one-line summary.
func (m Message) Title() string {
	return strings.Map(noCRLF, fmt.Sprintf("Approval needed: %s %s (%s, engagement %s)", m.Type, m.Subject, m.Action, m.EngagementID))
}

// Text is the message's plain text, as email and the webhook's fallback text carry it.
func (m Message) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\napproval: %s\n", m.Title(), m.ApprovalID)
	if m.Rationale != "" {
		fmt.Fprintf(&b, "why: %s\n", m.Rationale)
	}
	if m.Deadline != "" {
		fmt.Fprintf(&b, "decide before: %s\n", m.Deadline)
	}
	if m.AcknowledgeLink != "" {
		fmt.Fprintf(&b, "acknowledge (stops these reminders): %s\n", m.AcknowledgeLink)
	}
	if m.AcknowledgeURL != "" {
		fmt.Fprintf(&b, "or POST %s with your bearer token\n", m.AcknowledgeURL)
	}
	return b.String()
}

// Webhook headers: the signature is HMAC-SHA256 over "v1:" + timestamp + ":" + body, hex,
// prefixed "v1=", as Slack signs its requests; a receiver refuses an old timestamp.
const (
	HeaderTimestamp = "X-Waooaw-Request-Timestamp"
	HeaderSignature = "X-Waooaw-Signature"
)

// Sign is the signature header's value for a timestamp and body.
func Sign(key []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("v1:" + timestamp + ":"))
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Webhook posts a Slack-compatible JSON message (text and blocks) to an HTTPS URL, signed
// with a key read from the secret store at every send (so a rotated key needs no restart).
type Webhook struct {
	URL    string
	Key    func(ctx context.Context) ([]byte, error)
	Client *http.Client
	Now    func() time.Time
}

// Payload is the webhook's body: Slack's incoming-webhook shape plus the approval's fields.
func Payload(m Message) map[string]any {
	fields := []map[string]any{
		{"type": "mrkdwn", "text": "*Approval*\n" + m.ApprovalID},
		{"type": "mrkdwn", "text": "*Engagement*\n" + m.EngagementID},
	}
	if m.Deadline != "" {
		fields = append(fields, map[string]any{"type": "mrkdwn", "text": "*Decide before*\n" + m.Deadline})
	}
	blocks := []map[string]any{
		{"type": "header", "text": map[string]any{"type": "plain_text", "text": truncate(m.Title(), 150)}},
		{"type": "section", "fields": fields},
	}
	if m.Rationale != "" {
		blocks = append(blocks, map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": truncate(m.Rationale, 3000)}})
	}
	if m.AcknowledgeLink != "" {
		blocks = append(blocks, map[string]any{"type": "actions", "elements": []map[string]any{
			{"type": "button", "text": map[string]any{"type": "plain_text", "text": "Acknowledge"}, "url": m.AcknowledgeLink}}})
	}
	if m.AcknowledgeURL != "" {
		blocks = append(blocks, map[string]any{"type": "context", "elements": []map[string]any{
			{"type": "mrkdwn", "text": "Acknowledge to stop reminders: `POST " + m.AcknowledgeURL + "`"}}})
	}
	return map[string]any{"text": m.Text(), "blocks": blocks, "approval_id": m.ApprovalID, "step": m.Step}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// Send implements Channel.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	key, err := w.Key(ctx)
	if err != nil {
		return fmt.Errorf("notifier: webhook key: %w", err)
	}
	body, err := json.Marshal(Payload(m))
	if err != nil {
		return fmt.Errorf("notifier: webhook payload: %w", err)
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	ts := strconv.FormatInt(now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("notifier: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(key, ts, body))
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("notifier: webhook %s: %w", redact(w.URL), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout:
		return fmt.Errorf("%w: webhook %s: %d %s", ErrRefused, redact(w.URL), resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return fmt.Errorf("notifier: webhook %s: %d %s", redact(w.URL), resp.StatusCode, strings.TrimSpace(string(msg)))
}

// redact keeps a webhook URL's host and path head: the rest of a chat webhook's path is its
// credential.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(webhook)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// Email sends a plain-text message over SMTP, upgrading to TLS with STARTTLS whenever the
// server offers it, and authenticating (PLAIN, only over TLS or to loopback, as net/smtp
// insists) when a user is set.
type Email struct {
	Addr     string // host:port
	From     string
	To       []string
	User     string
	Password func(ctx context.Context) ([]byte, error) // with User
	// TLS overrides the STARTTLS configuration (tests); default: verify Addr's host.
	TLS *tls.Config
	Now func() time.Time
}

// Send implements Channel.
func (e *Email) Send(ctx context.Context, m Message) error {
	host, _, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return fmt.Errorf("%w: smtp address %q: %v", ErrRefused, e.Addr, err)
	}
	d := net.Dialer{Timeout: 20 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", e.Addr)
	if err != nil {
		return fmt.Errorf("notifier: smtp dial %s: %w", e.Addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(time.Minute))
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("notifier: smtp %s: %w", e.Addr, smtpErr(err))
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := e.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("notifier: smtp starttls %s: %w", e.Addr, err)
		}
	}
	if e.User != "" {
		pw, err := e.Password(ctx)
		if err != nil {
			return fmt.Errorf("notifier: smtp password: %w", err)
		}
		if err := c.Auth(smtp.PlainAuth("", e.User, string(pw), host)); err != nil {
			return fmt.Errorf("notifier: smtp auth %s: %w", e.Addr, smtpErr(err))
		}
	}
	if err := c.Mail(e.From); err != nil {
		return fmt.Errorf("notifier: smtp MAIL FROM: %w", smtpErr(err))
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("notifier: smtp RCPT TO %s: %w", to, smtpErr(err))
		}
	}
	wc, err := c.Data()
	if err != nil {
		return fmt.Errorf("notifier: smtp DATA: %w", smtpErr(err))
	}
	if _, err := wc.Write(e.compose(m)); err != nil {
		return fmt.Errorf("notifier: smtp body: %w", err)
	}
	if err := wc.Close(); err != nil {
		return fmt.Errorf("notifier: smtp end of data: %w", smtpErr(err))
	}
	return c.Quit()
}

func (e *Email) compose(m Message) []byte {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\n", e.From, strings.Join(e.To, ", "),
		m.Title(), now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s.%d@waooaw>\r\nX-Waooaw-Approval: %s\r\n", m.ApprovalID, m.Step, strings.Map(noCRLF, m.ApprovalID))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	b.WriteString(strings.ReplaceAll(m.Text(), "\n", "\r\n"))
	return b.Bytes()
}

// noCRLF keeps a header on one line: a subject is never a way to add headers.
func noCRLF(r rune) rune {
	if r == '\r' || r == '\n' {
		return ' '
	}
	return r
}

// smtpErr marks a permanent (5xx) SMTP reply as refused.
func smtpErr(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code/100 == 5 {
		return fmt.Errorf("%w: %v", ErrRefused, err)
	}
	return err
}
