package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"unicode/utf8"
)

// InputSHA256 is the hex sha256 of the canonical JSON of input: object keys
// sorted bytewise, no whitespace, strings with only the escapes JSON requires,
// numbers in shortest form, exponent only below 1e-6 or from 1e21 (json.Number verbatim). Anyone holding
// the input can recompute it from an attestation. Values other than the JSON
// shapes (structs, typed maps) go through encoding/json first.
func InputSHA256(input any) (string, error) {
	sum, err := inputSum(input)
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func inputSum(input any) ([32]byte, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b, err := appendCanonical((*bp)[:0], input)
	if err != nil {
		return [32]byte{}, err
	}
	*bp = b
	return sha256.Sum256(b), nil
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x), nil
	case json.Number:
		return append(b, x...), nil
	case float64:
		return appendFloat(b, x)
	case float32:
		return appendFloat(b, float64(x))
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendCanonical(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
	case map[string]any:
		if len(x) > maxSmallMap {
			return appendLargeMap(b, x)
		}
		// Keys and values collected in one pass, sorted in place: no map
		// lookups and no heap for the small objects of a request.
		var small [maxSmallMap]member
		ms := small[:0]
		for k, e := range x {
			ms = append(ms, member{k, e})
		}
		sortMembers(ms)
		return appendMembers(b, ms)
	case map[string]string:
		if len(x) > maxSmallMap {
			m := make(map[string]any, len(x))
			for k, s := range x {
				m[k] = s
			}
			return appendLargeMap(b, m)
		}
		var small [maxSmallMap]member
		ms := small[:0]
		for k, e := range x {
			ms = append(ms, member{k, e})
		}
		sortMembers(ms)
		return appendMembers(b, ms)
	default:
		// Structs and other types: take encoding/json's view of them.
		raw, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("policy: input is not JSON: %w", err)
		}
		var generic any
		if err := unmarshalNumber(raw, &generic); err != nil {
			return nil, fmt.Errorf("policy: input is not JSON: %w", err)
		}
		return appendCanonical(b, generic)
	}
}

// maxSmallMap bounds the objects sorted on the stack by insertion sort.
const maxSmallMap = 16

type member struct {
	key   string
	value any
}

// sortMembers orders keys bytewise, as sort.Strings does.
func sortMembers(ms []member) {
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].key < ms[j-1].key; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}

func appendMembers(b []byte, ms []member) ([]byte, error) {
	b = append(b, '{')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, ms[i].key)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, ms[i].value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendLargeMap(b []byte, x map[string]any) ([]byte, error) {
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendCanonical(b, x[k]); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("policy: input holds %v, which JSON cannot carry: %w", f, ErrBadInput)
	}
	// encoding/json's choice: exponent form only for very small or large magnitudes.
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64), nil
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes JSON carries as they are: ASCII from space up,
// except quote and backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString copies runs of bytes that need no escape in one append.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func unmarshalNumber(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
