package canonical_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gowebpki/jcs"

	"waooaw.dev/governance/shared/canonical"
)

// The reference is github.com/gowebpki/jcs, an RFC 8785 implementation written apart from
// this one: it parses JSON text and writes it canonically. Each generated value is given to
// Append, and the same value written as ordinary, non-canonical JSON text (random
// whitespace, optional escapes, numbers in other spellings) is given to jcs.Transform.

// want says what a generated value must give.
type want struct {
	badUTF8  bool // a string is not UTF-8: both refuse
	inexact  bool // a number its double does not carry: Append refuses, jcs rounds
	outRange bool // a number beyond a double: both refuse
}

func (w *want) add(o want) {
	w.badUTF8 = w.badUTF8 || o.badUTF8
	w.inexact = w.inexact || o.inexact
	w.outRange = w.outRange || o.outRange
}

func (w want) ok() bool { return !w.badUTF8 && !w.inexact && !w.outRange }

// gen makes random values and their JSON text.
type gen struct{ r *rand.Rand }

// pieces of strings: the escapes RFC 8785 writes short (\b \t \n \f \r), other controls,
// U+007F, U+2028/9, '<' '>' '&' '/', non-ASCII, the ends of the BMP's private and special
// ranges against astral characters (where UTF-16 order differs from code point order),
// and invalid UTF-8: a stray byte, a cut sequence, an encoded surrogate, an overlong form.
var pieces = []string{
	"a", "Z", "0", "_", " ", "\"", "\\", "/", "<", ">", "&", "'",
	"\b", "\t", "\n", "\f", "\r", "\x00", "\x01", "\x0b", "\x0e", "\x1b", "\x1f", "\x7f",
	"\u0080", "\u00e9", "\u00ff", "\u2028", "\u2029", "\u20ac", "\u4e2d", "\ud7ff",
	"\ue000", "\uff21", "\ufeff", "\ufffd", "\uffff",
	"\U00010000", "\U0001f600", "\U0010ffff",
	"\xff", "\xc3", "\xed\xa0\x80", "\xc0\x80", "\xf4\x90\x80\x80",
}

var invalidPieces = 5 // the last five above

func (g gen) string(allowInvalid bool) string {
	n := g.r.IntN(8)
	var sb strings.Builder
	for range n {
		k := len(pieces) - invalidPieces
		if allowInvalid && g.r.IntN(40) == 0 {
			k = len(pieces)
		}
		sb.WriteString(pieces[g.r.IntN(k)])
	}
	return sb.String()
}

// key starts names with characters whose UTF-16 and code point orders differ.
func (g gen) key(allowInvalid bool) string {
	lead := []string{"", "a", "\u00e9", "\ue000", "\uff21", "\uffff", "\U00010000", "\U0001f600"}
	return lead[g.r.IntN(len(lead))] + g.string(allowInvalid)
}

// writeString writes s as JSON text, escaping at random what may be escaped; bytes that
// are not UTF-8 are written as they are, so the reference meets them too.
func (g gen) writeString(sb *strings.Builder, s string) {
	sb.WriteByte('"')
	hex := func(u rune) {
		f := "\\u%04x"
		if g.r.IntN(2) == 0 {
			f = "\\u%04X"
		}
		fmt.Fprintf(sb, f, u)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteByte(s[i])
			i++
			continue
		}
		i += size
		short := map[rune]string{'"': `\"`, '\\': `\\`, '/': `\/`, '\b': `\b`, '\t': `\t`, '\n': `\n`, '\f': `\f`, '\r': `\r`}
		switch {
		case short[r] != "" && (r == '"' || r == '\\' || r < 0x20 || g.r.IntN(2) == 0) && g.r.IntN(3) != 0:
			sb.WriteString(short[r])
		case r < 0x20 || r == '"' || r == '\\' || g.r.IntN(4) == 0:
			if r > 0xffff {
				r -= 0x10000
				hex(0xd800 + r>>10)
				hex(0xdc00 + r&0x3ff)
			} else {
				hex(r)
			}
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
}

func (g gen) space(sb *strings.Builder) {
	sb.WriteString([]string{"", "", " ", "\n  ", "\t", "\r\n"}[g.r.IntN(6)])
}

// numberWant says whether the JSON number text must be refused: a double's range is the
// reference's to judge, exactness is judged in exact arithmetic against the reference's
// form of the double.
func numberWant(text string) want {
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return want{outRange: true}
	}
	es, err := jcs.NumberToJSON(f)
	if err != nil {
		return want{outRange: true}
	}
	a, ok1 := new(big.Rat).SetString(text)
	b, ok2 := new(big.Rat).SetString(es)
	if !ok1 || !ok2 {
		panic("big.Rat cannot read " + text + " or " + es)
	}
	return want{inexact: a.Cmp(b) != 0}
}

// float gives doubles across the whole range: random bits (subnormals, huge), the ends of
// ECMAScript's plain notation, powers of ten, integers around 2^53.
func (g gen) float() float64 {
	for {
		var f float64
		switch g.r.IntN(6) {
		case 0:
			f = math.Float64frombits(g.r.Uint64())
		case 1:
			f = []float64{0, math.Copysign(0, -1), 5e-324, math.MaxFloat64, 1e21, 1e-6, 9.999999999999997e-7,
				999999999999999900000, 1e23, 333333333.3333333, 1 << 53, 1<<53 + 2, 0.1, 1.5, 4.5, 0.002}[g.r.IntN(16)]
		case 2:
			f = math.Pow10(g.r.IntN(640)-330) * (1 + g.r.Float64())
		case 3:
			f = float64(g.r.Int64N(1<<54) - 1<<53)
		case 4:
			f = g.r.NormFloat64() * 1e3
		default:
			f = float64(g.r.IntN(2000)-1000) / 8
		}
		if !math.IsNaN(f) && !math.IsInf(f, 0) {
			if g.r.IntN(2) == 0 {
				f = -f
			}
			return f
		}
	}
}

// numberText gives JSON number texts a decoder keeps as json.Number: small and large
// integers (past 2^53 some a double carries, some it rounds), decimals with few and many
// digits, exponents, spellings like 4.50 and 1E+30, and numbers beyond a double.
func (g gen) numberText() string {
	switch g.r.IntN(9) {
	case 0:
		return strconv.Itoa(g.r.IntN(2001) - 1000)
	case 1:
		return strconv.FormatInt(1<<53+g.r.Int64N(5)-2, 10)
	case 2:
		return strconv.FormatInt(g.r.Int64(), 10)
	case 3:
		return "1" + strings.Repeat("0", g.r.IntN(30))
	case 4:
		return strconv.FormatFloat(g.float(), 'g', -1, 64)
	case 5:
		return strconv.FormatFloat(g.float(), 'e', 16+g.r.IntN(4), 64)
	case 6:
		return []string{"-0", "0.0", "4.50", "2e-3", "1E+30", "1e21", "1e+21", "1E-7", "0.000000000000000000000000001",
			"333333333.33333329", "9007199254740993", "-9007199254740993", "1152921504606846976", "18446744073709551615",
			"0.10000000000000000001", "1e400", "-1e400", "1e-400", "0e999999999999", "5e-324", "2.4703282292062328e-324"}[g.r.IntN(21)]
	case 7:
		digits := 1 + g.r.IntN(20)
		var sb strings.Builder
		sb.WriteString(strconv.Itoa(1 + g.r.IntN(9)))
		for range digits {
			sb.WriteByte(byte('0' + g.r.IntN(10)))
		}
		s := sb.String()
		p := 1 + g.r.IntN(len(s)-1)
		return s[:p] + "." + s[p:]
	default:
		return fmt.Sprintf("%de%d", g.r.IntN(100), g.r.IntN(60)-30)
	}
}

type record struct {
	A string  `json:"a"`
	B float64 `json:"b"`
	C []int   `json:"c,omitempty"`
}

// value returns a random value, its JSON text and what it must give.
func (g gen) value(depth int) (any, string, want) {
	var sb strings.Builder
	k := g.r.IntN(16)
	if depth > 3 && k >= 10 { // no deeper objects or arrays
		k = g.r.IntN(10)
	}
	switch k {
	case 0:
		return nil, "null", want{}
	case 1:
		b := g.r.IntN(2) == 0
		return b, strconv.FormatBool(b), want{}
	case 2, 3:
		s := g.string(true)
		g.writeString(&sb, s)
		return s, sb.String(), want{badUTF8: !utf8.ValidString(s)}
	case 4:
		f := g.float()
		text := strconv.FormatFloat(f, "geE"[g.r.IntN(3)], -1, 64)
		if g.r.IntN(3) == 0 {
			text = strconv.FormatFloat(f, 'e', 16, 64) // 17 digits, not the shortest
		}
		return f, text, want{}
	case 5:
		text := g.numberText()
		return json.Number(text), text, numberWant(text)
	case 6:
		var n any
		switch g.r.IntN(4) {
		case 0:
			n = g.r.IntN(2001) - 1000
		case 1:
			n = g.r.Int64() >> g.r.IntN(64)
		case 2:
			n = g.r.Uint64() >> g.r.IntN(64)
		default:
			n = float32(g.float())
			if math.IsInf(float64(n.(float32)), 0) {
				n = float32(1.5)
			}
			text := strconv.FormatFloat(float64(n.(float32)), 'g', -1, 32)
			return n, text, want{}
		}
		text := fmt.Sprint(n)
		return n, text, numberWant(text)
	case 7:
		ss := make([]string, g.r.IntN(4))
		var w want
		sb.WriteByte('[')
		for i := range ss {
			if i > 0 {
				sb.WriteByte(',')
			}
			ss[i] = g.string(true)
			g.writeString(&sb, ss[i])
			w.badUTF8 = w.badUTF8 || !utf8.ValidString(ss[i])
		}
		sb.WriteByte(']')
		return ss, sb.String(), w
	case 8:
		m := map[string]string{}
		n := g.r.IntN(6)
		if g.r.IntN(6) == 0 {
			n = 17 + g.r.IntN(20) // past the objects sorted on the stack
		}
		for range n {
			m[g.key(true)] = g.string(true)
		}
		var w want
		sb.WriteByte('{')
		i := 0
		for k, v := range m {
			if i > 0 {
				sb.WriteByte(',')
			}
			i++
			g.space(&sb)
			g.writeString(&sb, k)
			sb.WriteByte(':')
			g.space(&sb)
			g.writeString(&sb, v)
			w.badUTF8 = w.badUTF8 || !utf8.ValidString(k) || !utf8.ValidString(v)
		}
		sb.WriteByte('}')
		return m, sb.String(), w
	case 9:
		// A struct goes through encoding/json, which writes invalid UTF-8 as U+FFFD: the
		// reference reads what encoding/json wrote.
		rec := record{A: g.string(true), B: g.float(), C: []int{g.r.IntN(9)}[:g.r.IntN(2)]}
		raw, err := json.Marshal(rec)
		if err != nil {
			panic(err)
		}
		return rec, string(raw), want{}
	case 10, 11, 12:
		m := map[string]any{}
		n := g.r.IntN(6)
		if g.r.IntN(6) == 0 {
			n = 17 + g.r.IntN(20)
		}
		var w want
		sb.WriteByte('{')
		for i := range n {
			key := g.key(true)
			if _, dup := m[key]; dup {
				continue
			}
			v, text, vw := g.value(depth + 1)
			m[key] = v
			if i > 0 && sb.Len() > 1 {
				sb.WriteByte(',')
			}
			g.space(&sb)
			g.writeString(&sb, key)
			g.space(&sb)
			sb.WriteByte(':')
			sb.WriteString(text)
			w.add(vw)
			w.badUTF8 = w.badUTF8 || !utf8.ValidString(key)
		}
		sb.WriteByte('}')
		return m, sb.String(), w
	default:
		a := make([]any, g.r.IntN(5))
		var w want
		sb.WriteByte('[')
		for i := range a {
			if i > 0 {
				sb.WriteByte(',')
			}
			v, text, vw := g.value(depth + 1)
			a[i] = v
			g.space(&sb)
			sb.WriteString(text)
			w.add(vw)
		}
		sb.WriteByte(']')
		return a, sb.String(), w
	}
}

// TestAppendMatchesJCS is the RFC 8785 equality test: on generated values Append writes
// exactly the bytes jcs.Transform makes of their JSON text, and refuses what it documents.
func TestAppendMatchesJCS(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(8785, 1))}
	var compared, refusedUTF8, refusedNumber, rounded int
	for i := range 30000 {
		v, text, w := g.value(0)
		got, err := canonical.Append(nil, v)
		ref, refErr := jcs.Transform([]byte(text))
		switch {
		case w.ok():
			if err != nil || refErr != nil {
				t.Fatalf("value %d %#v\ntext %s\nAppend err %v, jcs err %v", i, v, text, err, refErr)
			}
			if string(got) != string(ref) {
				t.Fatalf("value %d %#v\ntext %s\n got %s\njcs %s", i, v, text, got, ref)
			}
			compared++
		default:
			if got != nil || err == nil ||
				!(w.badUTF8 && errors.Is(err, canonical.ErrInvalidUTF8) || (w.inexact || w.outRange) && errors.Is(err, canonical.ErrNumber)) {
				t.Fatalf("value %d %#v (%+v): Append = %s, %v; want a refusal", i, v, w, got, err)
			}
			// jcs refuses invalid UTF-8 and numbers beyond a double, and rounds the others.
			if refuses := w.badUTF8 || w.outRange; refuses != (refErr != nil) {
				t.Fatalf("value %d text %s (%+v): jcs err %v", i, text, w, refErr)
			}
			if errors.Is(err, canonical.ErrInvalidUTF8) {
				refusedUTF8++
			} else {
				refusedNumber++
			}
			// Where only rounding stood in the way, Rounded gives the value jcs hashed.
			if w.inexact && !w.badUTF8 && !w.outRange {
				if !errors.Is(err, canonical.ErrRounded) {
					t.Fatalf("value %d %#v: %v, want ErrRounded", i, v, err)
				}
				r, changed := canonical.Rounded(v)
				got, err := canonical.Append(nil, r)
				if !changed || err != nil || string(got) != string(ref) {
					t.Fatalf("value %d text %s: Rounded (changed %v) gives %s, %v; jcs %s", i, text, changed, got, err, ref)
				}
				rounded++
			}
		}
	}
	// The generator must reach every case, or the test shows less than it claims.
	if compared < 20000 || refusedUTF8 < 500 || refusedNumber < 500 || rounded < 500 {
		t.Fatalf("compared %d, refused for UTF-8 %d, for numbers %d (rounded like jcs %d): the generator is off", compared, refusedUTF8, refusedNumber, rounded)
	}
	t.Logf("%d equal to jcs, %d refused for UTF-8, %d for numbers (%d of them rounded by Rounded as jcs does)", compared, refusedUTF8, refusedNumber, rounded)
}

// TestAppendFloatRFC8785 is the number table of RFC 8785 Appendix B, as IEEE 754 bits.
func TestAppendFloatRFC8785(t *testing.T) {
	tests := []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tt := range tests {
		f := math.Float64frombits(tt.bits)
		got, err := canonical.AppendFloat(nil, f)
		if err != nil || string(got) != tt.want {
			t.Errorf("AppendFloat(%#016x) = %s, %v; want %s", tt.bits, got, err, tt.want)
		}
		if ref, _ := jcs.NumberToJSON(f); ref != tt.want {
			t.Errorf("jcs.NumberToJSON(%#016x) = %s; the table says %s", tt.bits, ref, tt.want)
		}
	}
	for _, bits := range []uint64{0x7fffffffffffffff, 0x7ff0000000000000, 0xfff0000000000000} {
		if got, err := canonical.AppendFloat(nil, math.Float64frombits(bits)); !errors.Is(err, canonical.ErrNumber) || got != nil {
			t.Errorf("AppendFloat(%#016x) = %s, %v; want ErrNumber", bits, got, err)
		}
	}
}

// TestAppendRefuses covers each refusal, with the value named in the message.
func TestAppendRefuses(t *testing.T) {
	tests := []struct {
		name string
		v    any
		is   error
		says string
	}{
		{"stray byte in a value", map[string]any{"a": "x\xffy"}, canonical.ErrInvalidUTF8, `"x\xffy"`},
		{"encoded surrogate in a key", map[string]string{"\xed\xa0\x80": "v"}, canonical.ErrInvalidUTF8, `byte 0`},
		{"cut sequence in an array", []string{"ok", "\xc3"}, canonical.ErrInvalidUTF8, `"\xc3"`},
		{"NaN", []any{math.NaN()}, canonical.ErrNumber, "NaN"},
		{"-Inf float32", float32(math.Inf(-1)), canonical.ErrNumber, "-Inf"},
		{"2^53+1 as json.Number", json.Number("9007199254740993"), canonical.ErrNumber, "9007199254740992"},
		{"2^53+1 as int64", int64(1<<53 + 1), canonical.ErrNumber, "9007199254740992"},
		{"max uint64", uint64(math.MaxUint64), canonical.ErrNumber, "18446744073709552000"},
		{"digits past a double", json.Number("0.10000000000000000001"), canonical.ErrNumber, "0.1"},
		{"beyond a double", json.Number("1e400"), canonical.ErrNumber, "range"},
		{"below a double", json.Number("1e-400"), canonical.ErrNumber, "rounded to 0"},
		{"not a JSON number", json.Number("0x10"), canonical.ErrNumber, "not a JSON number"},
		{"leading zero", json.Number("012"), canonical.ErrNumber, "not a JSON number"},
		{"empty number", json.Number(""), canonical.ErrNumber, "not a JSON number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonical.Append([]byte("prefix"), tt.v)
			if !errors.Is(err, tt.is) || got != nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Append = %q, %v; want nil and %v saying %s", got, err, tt.is, tt.says)
			}
		})
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := canonical.Append(nil, cyclic); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Fatalf("a map holding itself: err = %v", err)
	}
}

// TestAppendAccepts covers the numbers accepted in another spelling, and the types Append
// takes without encoding/json.
func TestAppendAccepts(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"-0 json.Number", json.Number("-0"), "0"},
		{"-0 float", math.Copysign(0, -1), "0"},
		{"trailing zero", json.Number("4.50"), "4.5"},
		{"exponent forms", []any{json.Number("1E+30"), json.Number("2e-3"), json.Number("1e21"), json.Number("1E-7")}, "[1e+30,0.002,1e+21,1e-7]"},
		{"2^53 and 10^18 are doubles", []any{int64(1 << 53), json.Number("1000000000000000000"), uint64(1e18)}, "[9007199254740992,1000000000000000000,1000000000000000000]"},
		{"-2^53", int64(-1 << 53), "-9007199254740992"},
		{"float32 as encoding/json writes it", float32(0.1), "0.1"},
		{"small integer types", []any{int8(-8), int16(16), int32(-32), uint8(8), uint16(16), uint32(32), uint(7)}, "[-8,16,-32,8,16,32,7]"},
		{"nil collections", []any{[]string(nil), map[string]string(nil), map[string]any(nil), []any(nil)}, "[[],{},{},[]]"},
		{"escapes", "\b\t\n\f\r\x00\x1f\x7f\"\\/<>&\u2028é😀", `"\b\t\n\f\r\u0000\u001f` + "\x7f" + `\"\\/<>&` + "\u2028é😀\""},
		// U+1F600 is D83D DE00 in UTF-16: before U+E000 and U+FF21, though after them in UTF-8.
		{"UTF-16 key order", map[string]any{"\uff21": 1, "\U0001f600": 2, "\ue000": 3, "\u00e9": 4, "z": 5, "": 6},
			"{\"\":6,\"z\":5,\"\u00e9\":4,\"\U0001f600\":2,\"\ue000\":3,\"\uff21\":1}"},
		{"struct by its tags", record{A: "a", B: 1e21, C: []int{1}}, `{"a":"a","b":1e+21,"c":[1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonical.Append(nil, tt.v)
			if err != nil || string(got) != tt.want {
				t.Fatalf("Append = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// FuzzAppendMatchesJCS: any JSON text jcs canonicalizes, decoded with json.Number, gives
// the same bytes through Append, or a number refusal. Texts jcs refuses (invalid UTF-8,
// lone surrogates, duplicate names) encoding/json may still decode, replacing or keeping
// the last; Append's answer then must still be JSON.
func FuzzAppendMatchesJCS(f *testing.F) {
	for _, seed := range []string{
		`{"numbers":[333333333.3333333,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\uff21":3,"\r":4,"1":5,"\u0080":6,"\u00f6":7}`,
		`[9007199254740993,1e400,-0,0.1,1e-7,1e21,"\b\f",{"a":{"b":[]}}]`,
		"\"\xff\"", `"\ud800"`, `{"a":1,"a":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if err := unmarshalNumber(data, &v); err != nil {
			return
		}
		got, err := canonical.Append(nil, v)
		ref, refErr := jcs.Transform(data)
		switch {
		case refErr != nil:
			if err == nil && !json.Valid(got) {
				t.Fatalf("Append of %q wrote invalid JSON %q", data, got)
			}
		case err != nil:
			if !errors.Is(err, canonical.ErrNumber) {
				t.Fatalf("Append of %q: %v; jcs gave %q", data, err, ref)
			}
		case string(got) != string(ref):
			t.Fatalf("text %q\n got %q\njcs %q", data, got, ref)
		}
	})
}

// FuzzAppendString: a UTF-8 string is written as jcs writes it; any other is refused.
func FuzzAppendString(f *testing.F) {
	for _, seed := range []string{"", "a\"b\\c", "\b\t\n\f\r\x00\x1f\x7f", "\u2028<>&", "é😀", "\xff", "\xed\xa0\x80"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := canonical.AppendString(nil, s)
		if !utf8.ValidString(s) {
			if !errors.Is(err, canonical.ErrInvalidUTF8) {
				t.Fatalf("AppendString(%q) = %q, %v; want ErrInvalidUTF8", s, got, err)
			}
			return
		}
		quoted, _ := json.Marshal(s)
		ref, refErr := jcs.Transform(quoted)
		if err != nil || refErr != nil || string(got) != string(ref) {
			t.Fatalf("AppendString(%q) = %q, %v; jcs %q, %v", s, got, err, ref, refErr)
		}
	})
}

func unmarshalNumber(data []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(data)))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

func ExampleAppend() {
	b, err := canonical.Append(nil, map[string]any{
		"numbers":  []any{333333333.3333333, 1e30, json.Number("4.50"), 2e-3, 1e-27},
		"string":   "€$\x0f\nA'B\"\\\\\"/",
		"literals": []any{nil, true, false},
	})
	fmt.Println(string(b), err)
	// Output: {"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"} <nil>
}
