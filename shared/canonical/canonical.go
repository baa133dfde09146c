// Package canonical writes JSON in the JSON Canonicalization Scheme of RFC 8785 (JCS): no
// whitespace, object members sorted by the UTF-16 code units of their names, strings with
// only the escapes JSON requires, numbers as ECMAScript prints a double. The audit chain
// and the policy input hash are both taken over these bytes, so anyone holding the value,
// and any RFC 8785 implementation, reproduces them.
//
// RFC 8785 takes I-JSON (RFC 7493) only. Values outside it are refused rather than
// altered, so that nothing is hashed that its holder could not hash again:
//
//   - a string that is not valid UTF-8 (ErrInvalidUTF8), as RFC 8785 implementations refuse
//     it; writing U+FFFD in its place would hash a string nobody holds;
//   - NaN, ±Inf, and a number that its double does not carry exactly (ErrNumber): an
//     integer past ±2^53 that the double rounds (9007199254740993), or a json.Number
//     written with more digits than its double's shortest form (0.10000000000000000001).
//     RFC 8785 implementations round such a number to its double, so two values that a
//     policy tells apart would share one canonical form. A number numerically equal to its
//     double's shortest form is accepted in any spelling: 1.0, 1E2, -0 become 1, 100, 0.
package canonical

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"
)

var (
	// ErrInvalidUTF8 marks a string (value or member name) that is not valid UTF-8.
	ErrInvalidUTF8 = errors.New("canonical: string is not valid UTF-8")
	// ErrNumber marks a number RFC 8785 cannot write exactly: NaN, ±Inf, out of a double's
	// range, more precise than a double, or not a JSON number at all.
	ErrNumber = errors.New("canonical: number is not an exact IEEE 754 double")
	// ErrRounded marks (and wraps ErrNumber for) a finite number that a double would round:
	// RFC 8785 implementations write the double, so Rounded gives the value they hash.
	ErrRounded = fmt.Errorf("%w: a double would round it", ErrNumber)
)

// maxDepth bounds nesting, so that a map that holds itself is an error, not a crash.
const maxDepth = 1000

// Append appends the canonical form of v to b. v is a JSON-shaped Go value: nil, bool,
// string, json.Number, the float and integer types, []any, []string, map[string]any and
// map[string]string, nested freely. Any other value (a struct, a typed map or slice) is
// taken as encoding/json marshals it, so struct tags apply and, as encoding/json does,
// invalid UTF-8 in it becomes U+FFFD. On error Append returns nil and an error wrapping
// ErrInvalidUTF8 or ErrNumber, or encoding/json's.
func Append(b []byte, v any) ([]byte, error) {
	return appendValue(b, v, 0)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("canonical: nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return AppendString(b, x)
	case json.Number:
		return appendNumber(b, string(x))
	case float64:
		return AppendFloat(b, x)
	case float32:
		return appendFloat32(b, x)
	case int:
		return AppendInt(b, int64(x))
	case int64:
		return AppendInt(b, x)
	case int32:
		return AppendInt(b, int64(x))
	case int16:
		return AppendInt(b, int64(x))
	case int8:
		return AppendInt(b, int64(x))
	case uint:
		return AppendUint(b, uint64(x))
	case uint64:
		return AppendUint(b, x)
	case uint32:
		return AppendUint(b, uint64(x))
	case uint16:
		return AppendUint(b, uint64(x))
	case uint8:
		return AppendUint(b, uint64(x))
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case []string:
		return AppendStrings(b, x)
	case map[string]any:
		return appendObject(b, x, depth)
	case map[string]string:
		return AppendStringMap(b, x)
	default:
		return appendViaJSON(b, x, depth)
	}
}

// appendViaJSON takes encoding/json's view of a value that is not one of the JSON shapes,
// numbers kept as written.
func appendViaJSON(b []byte, v any, depth int) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical: json.Marshal %T: %w", v, err)
	}
	var generic any
	if err := unmarshalNumber(raw, &generic); err != nil {
		return nil, fmt.Errorf("canonical: decode %T: %w", v, err)
	}
	return appendValue(b, generic, depth)
}

// AppendStrings appends the canonical form of the array of strings ss (a nil ss is []).
func AppendStrings(b []byte, ss []string) ([]byte, error) {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendString(b, s); err != nil {
			return nil, err
		}
	}
	return append(b, ']'), nil
}

// maxSmallObject bounds the objects sorted on the stack by insertion sort.
const maxSmallObject = 16

type member struct {
	key   string
	value any
}

type stringMember struct {
	key, value string
}

func appendObject(b []byte, x map[string]any, depth int) ([]byte, error) {
	// Members collected in one pass and sorted in place: no map lookups, and no heap for
	// the small objects of a request.
	var small [maxSmallObject]member
	ms := small[:0]
	if len(x) > maxSmallObject {
		ms = make([]member, 0, len(x))
	}
	for k, e := range x {
		ms = append(ms, member{k, e})
	}
	if len(ms) > maxSmallObject {
		slices.SortFunc(ms, func(a, b member) int { return compareKeys(a.key, b.key) })
	} else {
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0 && compareKeys(ms[j].key, ms[j-1].key) < 0; j-- {
				ms[j], ms[j-1] = ms[j-1], ms[j]
			}
		}
	}
	b = append(b, '{')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendString(b, ms[i].key); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = appendValue(b, ms[i].value, depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// AppendStringMap appends the canonical form of the object m (a nil m is {}).
func AppendStringMap(b []byte, m map[string]string) ([]byte, error) {
	var small [maxSmallObject]stringMember
	ms := small[:0]
	if len(m) > maxSmallObject {
		ms = make([]stringMember, 0, len(m))
	}
	for k, v := range m {
		ms = append(ms, stringMember{k, v})
	}
	if len(ms) > maxSmallObject {
		slices.SortFunc(ms, func(a, b stringMember) int { return compareKeys(a.key, b.key) })
	} else {
		for i := 1; i < len(ms); i++ {
			for j := i; j > 0 && compareKeys(ms[j].key, ms[j-1].key) < 0; j-- {
				ms[j], ms[j-1] = ms[j-1], ms[j]
			}
		}
	}
	b = append(b, '{')
	for i := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = AppendString(b, ms[i].key); err != nil {
			return nil, err
		}
		b = append(b, ':')
		if b, err = AppendString(b, ms[i].value); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// compareKeys orders member names by their UTF-16 code units, as RFC 8785 sorts them. For
// valid UTF-8 that is byte order, except that a character above U+FFFF (a surrogate pair,
// D800..DBFF first) sorts before one in U+E000..U+FFFF: where the first differing bytes are
// a four-byte lead (F0..F4) and the lead EE or EF, the order turns round.
func compareKeys(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca >= 0xee && cb >= 0xee && (ca >= 0xf0) != (cb >= 0xf0) {
			if ca >= 0xf0 {
				return -1
			}
			return 1
		}
		if ca < cb {
			return -1
		}
		return 1
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes written as they are: ASCII from space up, but quote and backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// AppendString appends s as an RFC 8785 string: quote and backslash escaped, \b \t \n \f
// \r in their short forms, other controls as \u00xx in lowercase hex, and everything else
// (U+007F, U+2028, '<', non-ASCII) as it is. A string that is not valid UTF-8 is refused
// with ErrInvalidUTF8.
func AppendString(b []byte, s string) ([]byte, error) {
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
			case '\b':
				b = append(b, '\\', 'b')
			case '\t':
				b = append(b, '\\', 't')
			case '\n':
				b = append(b, '\\', 'n')
			case '\f':
				b = append(b, '\\', 'f')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, fmt.Errorf("%w: byte %d of %s", ErrInvalidUTF8, i, quoteForError(s))
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}

// quoteForError quotes s for an error message, cut short if long.
func quoteForError(s string) string {
	const limit = 64
	if len(s) > limit {
		return fmt.Sprintf("%q (%d bytes)", s[:limit], len(s))
	}
	return strconv.Quote(s)
}
