package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"testing"
	"unicode/utf8"
)

// TestCanonicalMatchesReference checks the encoder against the one that
// fixed the InputSHA256 values (kept below), on many random inputs.
func TestCanonicalMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		v := randomValue(r, 0)
		got, err1 := appendCanonical(nil, v)
		want, err2 := refAppendCanonical(nil, v)
		if (err1 != nil) != (err2 != nil) || !bytes.Equal(got, want) {
			t.Fatalf("input %d %#v:\n got %s (%v)\nwant %s (%v)", i, v, got, err1, want, err2)
		}
	}
}

const alphabet = "aAzZ09_-\"\\\n\r\t\x00\x1f\x7f é€😀\xff\xc3"

func randomString(r *rand.Rand) string {
	n := r.IntN(12)
	b := make([]byte, 0, n)
	for range n {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return string(b)
}

func randomValue(r *rand.Rand, depth int) any {
	k := r.IntN(14)
	if depth > 3 && k >= 10 {
		k = r.IntN(10)
	}
	switch k {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return randomString(r)
	case 3:
		return []float64{0, 1.5, -2, 1e-7, 1e21, 123456789.125, 5e-324, math.MaxFloat64}[r.IntN(8)] * float64(r.IntN(3)-1)
	case 4:
		return r.IntN(2000) - 1000
	case 5:
		return json.Number(strconv.Itoa(r.IntN(100)))
	case 6:
		return r.Int64()
	case 7:
		return []string{randomString(r), randomString(r)}[:r.IntN(3)]
	case 8:
		m := map[string]string{}
		for range r.IntN(20) {
			m[randomString(r)] = randomString(r)
		}
		return m
	case 9:
		return struct {
			A string `json:"a"`
			B []int  `json:"b"`
		}{randomString(r), []int{r.IntN(9)}}
	case 10, 11:
		m := map[string]any{}
		n := r.IntN(6)
		if r.IntN(8) == 0 {
			n = 10 + r.IntN(20) // past the small-object path
		}
		for range n {
			m[randomString(r)] = randomValue(r, depth+1)
		}
		return m
	default:
		a := make([]any, r.IntN(5))
		for i := range a {
			a[i] = randomValue(r, depth+1)
		}
		return a
	}
}

func TestCanonicalRejectsNaN(t *testing.T) {
	if _, err := appendCanonical(nil, map[string]any{"a": math.NaN()}); err == nil {
		t.Fatal("NaN must not encode")
	}
}

// The encoder as it was when the pinned InputSHA256 values were fixed.

func refAppendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return refAppendString(b, x), nil
	case json.Number:
		return append(b, x...), nil
	case float64:
		return refAppendFloat(b, x)
	case float32:
		return refAppendFloat(b, float64(x))
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
			if b, err = refAppendCanonical(b, e); err != nil {
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
			b = refAppendString(b, e)
		}
		return append(b, ']'), nil
	case map[string]any:
		var small [16]string
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = refAppendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = refAppendCanonical(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return refAppendCanonical(b, m)
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
		return refAppendCanonical(b, generic)
	}
}

func refAppendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("policy: input holds %v, which JSON cannot carry: %w", f, ErrBadInput)
	}
	// encoding/json's choice: exponent form only for very small or large magnitudes.
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, f, 'e', -1, 64), nil
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64), nil
}

func refAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				switch c {
				case '\n':
					b = append(b, '\\', 'n')
				case '\r':
					b = append(b, '\\', 'r')
				case '\t':
					b = append(b, '\\', 't')
				default:
					b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
				}
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
