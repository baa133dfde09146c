package canonical

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
)

// exactInt bounds the integers every double carries; past it a check is needed.
const exactInt = 1 << 53

// AppendInt appends n as RFC 8785 writes the double equal to it. An n that no double equals
// is refused with ErrNumber.
func AppendInt(b []byte, n int64) ([]byte, error) {
	if -exactInt <= n && n <= exactInt {
		return strconv.AppendInt(b, n, 10), nil
	}
	start := len(b)
	b = strconv.AppendInt(b, n, 10)
	return checkInt(b, start, float64(n))
}

// AppendUint is AppendInt for unsigned integers.
func AppendUint(b []byte, n uint64) ([]byte, error) {
	if n <= exactInt {
		return strconv.AppendUint(b, n, 10), nil
	}
	start := len(b)
	b = strconv.AppendUint(b, n, 10)
	return checkInt(b, start, float64(n))
}

// checkInt accepts the integer written at b[start:] if ECMAScript writes its double f
// with the same digits (below 1e21, always plain digits).
func checkInt(b []byte, start int, f float64) ([]byte, error) {
	var tmp [32]byte
	if es := strconv.AppendFloat(tmp[:0], f, 'f', -1, 64); string(es) != string(b[start:]) {
		// Strings, not the slices: b and tmp stay off the heap.
		return nil, fmt.Errorf("%w: %s would be rounded to %s", ErrRounded, string(b[start:]), string(es))
	}
	return b, nil
}

// AppendFloat appends f as ECMAScript's Number.prototype.toString writes it, which RFC
// 8785 requires: the shortest digits that read back as f, in plain notation from 1e-6 up to
// below 1e21 and as d.ddde±x outside, -0 as 0. NaN and ±Inf are refused with ErrNumber.
func AppendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: %v", ErrNumber, f)
	}
	return appendES(b, f), nil
}

func appendES(b []byte, f float64) []byte {
	if f == 0 {
		return append(b, '0')
	}
	if abs := math.Abs(f); abs >= 1e-6 && abs < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = strconv.AppendFloat(b, f, 'e', -1, 64)
	// Go writes at least two exponent digits (1e-07) where ECMAScript writes 1e-7.
	if n := len(b); b[n-4] == 'e' && b[n-2] == '0' {
		b[n-2] = b[n-1]
		b = b[:n-1]
	}
	return b
}

// appendFloat32 takes a float32 as encoding/json writes it (its own shortest digits, 0.1
// for float32(0.1)) read back as a double: the value a holder of its JSON sees.
func appendFloat32(b []byte, x float32) ([]byte, error) {
	f := float64(x)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%w: %v", ErrNumber, x)
	}
	var tmp [32]byte
	f, err := strconv.ParseFloat(string(strconv.AppendFloat(tmp[:0], f, 'g', -1, 32)), 64)
	if err != nil {
		return nil, fmt.Errorf("%w: float32 %v: %w", ErrNumber, x, err)
	}
	return appendES(b, f), nil
}

// appendNumber appends the JSON number s (a json.Number) in its canonical form, if its
// double carries it exactly.
func appendNumber(b []byte, s string) ([]byte, error) {
	n, ok := scanNumber(s)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a JSON number", ErrNumber, quoteForError(s))
	}
	if n.alreadyCanonical() {
		if s == "-0" {
			return append(b, '0'), nil
		}
		return append(b, s...), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is out of a double's range", ErrNumber, quoteForError(s))
	}
	start := len(b)
	b = appendES(b, f)
	if !sameDecimal(s, b[start:]) {
		return nil, fmt.Errorf("%w: %s would be rounded to %s", ErrRounded, quoteForError(s), string(b[start:]))
	}
	return b, nil
}

// numberShape is what scanNumber learns of a JSON number's text.
type numberShape struct {
	intDigits, fracDigits int
	fracZeros             int  // zeros leading the fraction, when the integer part is 0
	exponent              bool // an e or E part
	trailingZero          bool // the fraction ends in 0
	zeroInt               bool // the integer part is 0
}

// alreadyCanonical reports whether ECMAScript writes the number's double exactly as the
// text (-0 aside): no exponent, at most 15 significant digits (a double keeps 15 decimal
// digits, so they come back as its shortest form), no trailing zero in the fraction, and
// from 1e-6 up, where plain notation starts.
func (n numberShape) alreadyCanonical() bool {
	if n.exponent || n.trailingZero {
		return false
	}
	if !n.zeroInt {
		return n.intDigits+n.fracDigits <= 15
	}
	return n.fracDigits == 0 || n.fracZeros < 6 && n.fracDigits-n.fracZeros <= 15
}

// scanNumber checks s against the JSON number grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and reports its shape.
func scanNumber(s string) (n numberShape, ok bool) {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	switch {
	case i < len(s) && s[i] == '0':
		n.zeroInt = true
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return n, false
	}
	n.intDigits = i - start
	if i < len(s) && s[i] == '.' {
		i++
		start = i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		n.fracDigits = i - start
		if n.fracDigits == 0 {
			return n, false
		}
		for n.fracZeros < n.fracDigits && s[start+n.fracZeros] == '0' {
			n.fracZeros++
		}
		n.trailingZero = s[i-1] == '0'
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		n.exponent = true
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return n, false
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return n, i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// decimal is a number's value as sign, significant digits and exponent: 0.digits × 10^exp.
type decimal struct {
	neg    bool
	digits [24]byte
	n      int  // significant digits, trailing zeros dropped
	long   bool // more than len(digits) of them: no double's shortest form
	exp    int
}

// parseDecimal reads a number already checked by scanNumber (or written by appendES).
func parseDecimal[T string | []byte](s T) decimal {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	seen := false // a nonzero digit
	zeros := 0    // zeros after the last nonzero digit, not yet kept
	point := 0    // digits before the decimal point, counted from the first nonzero one
	inFraction := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			inFraction = true
			continue
		}
		if !isDigit(c) {
			break
		}
		if c == '0' {
			if seen {
				zeros++
				if !inFraction {
					point++
				}
			} else if inFraction {
				point-- // a leading zero after the point
			}
			continue
		}
		if seen {
			for ; zeros > 0; zeros-- {
				d.keep('0')
			}
		}
		seen = true
		d.keep(c)
		if !inFraction {
			point++
		}
	}
	if !seen {
		return decimal{} // zero, whatever its sign or exponent
	}
	exp := 0
	if i < len(s) { // 'e' or 'E'
		i++
		neg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			neg = s[i] == '-'
			i++
		}
		for ; i < len(s); i++ {
			if exp < 1e8 { // beyond any double: keep it large without overflow
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	d.exp = point + exp
	return d
}

func (d *decimal) keep(c byte) {
	if d.n == len(d.digits) {
		d.long = true
		return
	}
	d.digits[d.n] = c
	d.n++
}

// sameDecimal reports whether the JSON number s and the ECMAScript form es have one value.
func sameDecimal(s string, es []byte) bool {
	a, b := parseDecimal(s), parseDecimal(es)
	return !a.long && !b.long && a.neg == b.neg && a.exp == b.exp && a.n == b.n && a.digits == b.digits
}

func unmarshalNumber(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	return d.Decode(v)
}

// Rounded returns v with every number a double would round (ErrRounded) replaced by that
// double, as a json.Number in its canonical form, and whether it replaced any: what RFC 8785
// implementations hash for v, since they read numbers as doubles. v's own maps and slices
// are not changed; the parts that hold a replaced number are copies. Values that are not
// JSON shapes are left as they are.
func Rounded(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		if _, err := appendNumber(nil, string(x)); errors.Is(err, ErrRounded) {
			if f, err := strconv.ParseFloat(string(x), 64); err == nil {
				return json.Number(appendES(nil, f)), true
			}
		}
	case int:
		if r, ok := roundedInt(int64(x)); ok {
			return r, true
		}
	case int64:
		if r, ok := roundedInt(x); ok {
			return r, true
		}
	case uint64:
		if _, err := AppendUint(nil, x); errors.Is(err, ErrRounded) {
			return json.Number(appendES(nil, float64(x))), true
		}
	case []any:
		var out []any
		for i, e := range x {
			if r, ok := Rounded(e); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = r
			}
		}
		if out != nil {
			return out, true
		}
	case map[string]any:
		var out map[string]any
		for k, e := range x {
			if r, ok := Rounded(e); ok {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = r
			}
		}
		if out != nil {
			return out, true
		}
	}
	return v, false
}

func roundedInt(n int64) (json.Number, bool) {
	if _, err := AppendInt(nil, n); errors.Is(err, ErrRounded) {
		return json.Number(appendES(nil, float64(n))), true
	}
	return "", false
}
