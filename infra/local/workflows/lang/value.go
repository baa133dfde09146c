// Package lang holds the Workflows language: values, the expression language
// and the compiler from YAML/JSON source to a program the engine runs.
package lang

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Values are plain Go values: nil, bool, int64, float64, string, Bytes,
// []any and map[string]any. Plain types keep evaluation allocation-light.

// Bytes is the Workflows bytes type (base64.decode, text.encode).
type Bytes []byte

// Error is a Workflows exception: the raised value (a string or a map with
// message and tags) travels unchanged to except blocks and to the execution
// error payload.
type Error struct {
	Value any
}

func (e *Error) Error() string {
	if m, ok := e.Value.(map[string]any); ok {
		if msg, ok := m["message"].(string); ok {
			return msg
		}
	}
	if s, ok := e.Value.(string); ok {
		return s
	}
	return Repr(e.Value)
}

// Tags lists the error's tags ("TypeError", "HttpError", ...).
func (e *Error) Tags() []string {
	m, ok := e.Value.(map[string]any)
	if !ok {
		return nil
	}
	l, _ := m["tags"].([]any)
	out := make([]string, 0, len(l))
	for _, t := range l {
		if s, ok := t.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// HasTag reports whether the error carries tag.
func (e *Error) HasTag(tag string) bool {
	for _, t := range e.Tags() {
		if t == tag {
			return true
		}
	}
	return false
}

// Errorf builds an error map with Google's shape: {"message", "tags"}.
func Errorf(tag, format string, args ...any) *Error {
	return &Error{Value: map[string]any{
		"message": fmt.Sprintf(format, args...),
		"tags":    []any{tag},
	}}
}

// Google's error tags.
const (
	TagType          = "TypeError"
	TagValue         = "ValueError"
	TagKey           = "KeyError"
	TagIndex         = "IndexError"
	TagZeroDivision  = "ZeroDivisionError"
	TagRecursion     = "RecursionError"
	TagResourceLimit = "ResourceLimitError"
	TagTimeout       = "TimeoutError"
	TagHTTP          = "HttpError"
	TagConnection    = "ConnectionError"
	TagConnFailed    = "ConnectionFailedError"
	TagSystem        = "SystemError"
	TagParallelNest  = "ParallelNestingError"
	TagUnhandled     = "UnhandledBranchError"
	TagAuth          = "AuthError"
	TagNotFound      = "NotFound"
	TagOperation     = "OperationError"
	TagCancelled     = "CancelledError"
)

// TypeName is the name get_type returns.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "double"
	case string:
		return "string"
	case Bytes:
		return "bytes"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

// Normalize converts values from decoders (int, float32, []interface{} of
// mixed kinds, map[interface{}]...) to the canonical kinds above.
func Normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return float64(x)
		}
		return int64(x)
	case float32:
		return float64(x)
	case []any:
		for i := range x {
			x[i] = Normalize(x[i])
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = Normalize(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = Normalize(e)
		}
		return m
	}
	return v
}

// Copy deep-copies lists and maps: assignment has value semantics, so a
// later in-place update of one variable never shows through another.
func Copy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Copy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Copy(e)
		}
		return out
	case Bytes:
		return append(Bytes(nil), x...)
	}
	return v
}

// Truthy requires a boolean, as Google does for conditions and and/or.
func Truthy(v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, Errorf(TagType, "expected boolean, got %s", TypeName(v))
	}
	return b, nil
}

// Equal compares values; integers and doubles compare numerically.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	case string:
		y, ok := b.(string)
		return ok && x == y
	case Bytes:
		y, ok := b.(Bytes)
		return ok && string(x) == string(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, e := range x {
			f, ok := y[k]
			if !ok || !Equal(e, f) {
				return false
			}
		}
		return true
	}
	return false
}

// Repr renders a value as JSON text (maps with sorted keys); doubles keep a
// decimal point so that the kind survives a round trip.
func Repr(v any) string {
	var b strings.Builder
	writeJSON(&b, v)
	return b.String()
}

// MarshalValue encodes a value as JSON.
func MarshalValue(v any) []byte {
	var b strings.Builder
	writeJSON(&b, v)
	return []byte(b.String())
}

func writeJSON(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(FormatDouble(x))
	case string:
		writeJSONString(b, x)
	case Bytes:
		writeJSONString(b, string(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			writeJSON(b, x[k])
		}
		b.WriteByte('}')
	default:
		writeJSONString(b, fmt.Sprint(x))
	}
}

// FormatDouble prints a double the way JSON readers keep it a double.
func FormatDouble(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "null"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}

const hexDigits = "0123456789abcdef"

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			b.WriteString(`\u`)
			for _, sh := range []uint{12, 8, 4, 0} {
				b.WriteByte(hexDigits[(r>>sh)&0xf])
			}
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}
