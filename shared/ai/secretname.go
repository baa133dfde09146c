package ai

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Credential types of the AI keys, the last part of their secret name.
const (
	CredGroq   = "groq_api_key"
	CredOpenAI = "openai_api_key"
)

// maxSecretName is Secret Manager's limit on a secret id.
const maxSecretName = 255

// ErrBadSecretName is wrapped when a triple cannot be encoded or a name decoded.
var ErrBadSecretName = errors.New("bad AI secret name")

// SecretName encodes {engagement_id}/{agent_id}/{credential_type} into a Secret Manager
// secret id ([A-Za-z0-9_-], at most 255 characters), reversibly: within each part ASCII
// letters and digits stay as they are and every other byte becomes "_" and its two
// upper-case hex digits ("-" is _2D, "_" is _5F, "/" is _2F); the three parts are joined
// with "-". Since an encoded part never holds "-", ParseSecretName splits the name back
// unambiguously, and two distinct triples never share a name. Example:
// ("eng-1", "genesis", "groq_api_key") → "eng_2D1-genesis-groq_5Fapi_5Fkey".
func SecretName(engagementID, agentID, credType string) (string, error) {
	parts := [3]string{engagementID, agentID, credType}
	var b strings.Builder
	for i, p := range parts {
		if p == "" {
			return "", fmt.Errorf("ai: secret name part %d is empty: %w", i+1, ErrBadSecretName)
		}
		if i > 0 {
			b.WriteByte('-')
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
				b.WriteByte(c)
				continue
			}
			fmt.Fprintf(&b, "_%02X", c)
		}
	}
	if b.Len() > maxSecretName {
		return "", fmt.Errorf("ai: secret name for %s/%s/%s is %d characters, Secret Manager takes %d: %w",
			engagementID, agentID, credType, b.Len(), maxSecretName, ErrBadSecretName)
	}
	return b.String(), nil
}

// ParseSecretName is SecretName's inverse.
func ParseSecretName(name string) (engagementID, agentID, credType string, err error) {
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("ai: secret name %q: want three parts: %w", name, ErrBadSecretName)
	}
	var out [3]string
	for i, p := range parts {
		var b strings.Builder
		for j := 0; j < len(p); j++ {
			c := p[j]
			switch {
			case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
				b.WriteByte(c)
			case c == '_' && j+2 < len(p):
				v, perr := strconv.ParseUint(p[j+1:j+3], 16, 8)
				if perr != nil || p[j+1:j+3] != strings.ToUpper(p[j+1:j+3]) || isAlnum(byte(v)) {
					return "", "", "", fmt.Errorf("ai: secret name %q: bad escape %q: %w", name, p[j:j+3], ErrBadSecretName)
				}
				b.WriteByte(byte(v))
				j += 2
			default:
				return "", "", "", fmt.Errorf("ai: secret name %q: unexpected %q: %w", name, c, ErrBadSecretName)
			}
		}
		if b.Len() == 0 {
			return "", "", "", fmt.Errorf("ai: secret name %q: part %d is empty: %w", name, i+1, ErrBadSecretName)
		}
		out[i] = b.String()
	}
	return out[0], out[1], out[2], nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
