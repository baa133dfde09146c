package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	HeaderClient    = "X-Waooaw-Client"
	HeaderTimestamp = "X-Waooaw-Timestamp"
	HeaderSignature = "X-Waooaw-Signature"
)

// WebhookTolerance is how far a webhook's timestamp may be from the receiver's clock, either
// way. It is also how long a replay record must be kept.
const WebhookTolerance = 5 * time.Minute

var (
	// ErrNoSignature: a webhook header is missing.
	ErrNoSignature = errors.New("auth: webhook signature headers missing")
	// ErrBadSignature: malformed headers, or a signature that does not match.
	ErrBadSignature = errors.New("auth: bad webhook signature")
	// ErrStaleTimestamp: the timestamp is outside the tolerance.
	ErrStaleTimestamp = errors.New("auth: webhook timestamp outside the allowed window")
)

// WebhookMAC is HMAC-SHA256(secret, "<timestamp>.<body>").
func WebhookMAC(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// WebhookSignature is the X-Waooaw-Signature value for a body: "sha256=<hex MAC>".
func WebhookSignature(secret []byte, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(WebhookMAC(secret, timestamp, body))
}

// SignWebhook sets the three webhook headers on h for body sent by client at time at.
func SignWebhook(h http.Header, client string, secret, body []byte, at time.Time) {
	ts := strconv.FormatInt(at.Unix(), 10)
	h.Set(HeaderClient, client)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, WebhookSignature(secret, ts, body))
}

// Webhook holds the parsed signature headers of a request.
type Webhook struct {
	Client    string
	Timestamp time.Time
	rawTS     string
	mac       []byte
}

// ParseWebhook reads the signature headers. Errors wrap ErrNoSignature or ErrBadSignature.
func ParseWebhook(h http.Header) (Webhook, error) {
	client, ts, sig := h.Get(HeaderClient), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	var missing []string
	for _, hv := range [][2]string{{HeaderClient, client}, {HeaderTimestamp, ts}, {HeaderSignature, sig}} {
		if hv[1] == "" {
			missing = append(missing, hv[0])
		}
	}
	if len(missing) > 0 {
		return Webhook{}, fmt.Errorf("%w: %s", ErrNoSignature, strings.Join(missing, ", "))
	}
	if len(ts) > 12 || strings.TrimLeft(ts, "0123456789") != "" {
		return Webhook{}, fmt.Errorf("%w: %s is not unix seconds", ErrBadSignature, HeaderTimestamp)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Webhook{}, fmt.Errorf("%w: %s: %v", ErrBadSignature, HeaderTimestamp, err)
	}
	hexMAC, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return Webhook{}, fmt.Errorf("%w: %s must start with sha256=", ErrBadSignature, HeaderSignature)
	}
	mac, err := hex.DecodeString(hexMAC)
	if err != nil || len(mac) != sha256.Size {
		return Webhook{}, fmt.Errorf("%w: %s is not a hex SHA-256 MAC", ErrBadSignature, HeaderSignature)
	}
	return Webhook{Client: client, Timestamp: time.Unix(secs, 0), rawTS: ts, mac: mac}, nil
}

// CheckTime refuses a timestamp more than tolerance away from now. It needs no secret, so a
// receiver checks it before looking one up.
func (w Webhook) CheckTime(now time.Time, tolerance time.Duration) error {
	d := now.Sub(w.Timestamp)
	if d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s off", ErrStaleTimestamp, HeaderTimestamp, d.Round(time.Second))
	}
	return nil
}

// Verify checks the MAC over the raw body in constant time.
func (w Webhook) Verify(secret, body []byte) error {
	if !hmac.Equal(w.mac, WebhookMAC(secret, w.rawTS, body)) {
		return ErrBadSignature
	}
	return nil
}

// ReplayKey identifies one signed request: hex sha256 of client, timestamp and MAC. The MAC
// is taken as bytes, so re-casing the hex signature does not make a new key.
func (w Webhook) ReplayKey() string {
	h := sha256.New()
	h.Write([]byte(w.Client))
	h.Write([]byte{0})
	h.Write([]byte(w.rawTS))
	h.Write([]byte{0})
	h.Write(w.mac)
	return hex.EncodeToString(h.Sum(nil))
}
