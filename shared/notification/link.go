package notification

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// LinkKeySecret is the Secret Manager secret holding the acknowledge links' HMAC-SHA256 key
// (32 bytes or more), read by the notifier (which signs) and the gateway (which checks).
const LinkKeySecret = "notification-ack-key"

// LinkPath is the gateway's route an acknowledge link opens: GET shows a page, POST
// acknowledges.
const LinkPath = "/v1/notifications/acknowledge"

// LinksCollection holds one document per link used (by the token's digest): a link
// acknowledges once.
const LinksCollection = "notification_links"

// MinLinkKeyBytes is the shortest key a link is signed with.
const MinLinkKeyBytes = 32

// Errors of a link's token; each wraps ErrLink.
var (
	ErrLink        = errors.New("acknowledge link refused")
	ErrLinkForged  = fmt.Errorf("%w: not signed by the platform", ErrLink)
	ErrLinkExpired = fmt.Errorf("%w: expired", ErrLink)
)

// Link is what an acknowledge link's token says: which approval, which cascade execution,
// and until when it may be used.
type Link struct {
	ApprovalID string    `json:"a"`
	Execution  string    `json:"x"`
	Expires    time.Time `json:"-"`
	Exp        int64     `json:"e"`
}

// SignLink is the token of l: base64url(JSON) "." base64url(HMAC-SHA256 of that text).
func SignLink(key []byte, l Link) (string, error) {
	if len(key) < MinLinkKeyBytes {
		return "", fmt.Errorf("notification: link key of %d bytes, want %d or more", len(key), MinLinkKeyBytes)
	}
	if l.ApprovalID == "" || l.Execution == "" || l.Expires.IsZero() {
		return "", errors.New("notification: a link needs an approval, an execution and an expiry")
	}
	l.Exp = l.Expires.Unix()
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("notification: link: %w", err)
	}
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + base64.RawURLEncoding.EncodeToString(linkMAC(key, payload)), nil
}

func linkMAC(key []byte, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("waooaw-ack-link:v1:" + payload))
	return m.Sum(nil)
}

// VerifyLink checks token's signature under key and its expiry against now.
func VerifyLink(key []byte, token string, now time.Time) (Link, error) {
	var l Link
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return l, ErrLinkForged
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(key) == 0 || !hmac.Equal(got, linkMAC(key, payload)) {
		return l, ErrLinkForged
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return l, ErrLinkForged
	}
	if err := json.Unmarshal(b, &l); err != nil || l.ApprovalID == "" || l.Execution == "" {
		return Link{}, ErrLinkForged
	}
	l.Expires = time.Unix(l.Exp, 0).UTC()
	if !now.Before(l.Expires) {
		return l, ErrLinkExpired
	}
	return l, nil
}

// LinkDigest names a used link's document: the token itself is never stored.
func LinkDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
