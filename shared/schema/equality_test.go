package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// every is a schema using every type and rule the checker knows, beyond what the topic
// schemas use today: unions, nulls, longs, floats, nested records in arrays and maps. (A
// float field has no default: the reference refused every float default, as hamba/avro
// holds it as a float32.)
const every = `{
  "type": "record", "name": "Every", "namespace": "dev.waooaw.test",
  "fields": [
    {"name": "s", "type": "string", "waooaw.min_length": 3},
    {"name": "t", "type": "string", "waooaw.format": "rfc3339", "default": "2026-01-01T00:00:00Z"},
    {"name": "i", "type": "int", "default": 7},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "fd", "type": "double", "default": 0.5},
    {"name": "d", "type": "double"},
    {"name": "b", "type": "boolean", "default": true},
    {"name": "n", "type": "null", "default": null},
    {"name": "u", "type": ["null", "string", "long", {"type": "record", "name": "Inner", "fields": [
      {"name": "x", "type": "string", "default": "ok"},
      {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["red", "green"]}, "waooaw.min_length": 4}
    ]}], "default": null},
    {"name": "rs", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
      {"name": "k", "type": "string"},
      {"name": "v", "type": {"type": "map", "values": {"type": "array", "items": "long"}}, "default": {}}
    ]}}, "default": []},
    {"name": "m", "type": {"type": "map", "values": "double"}, "default": {"a": 1, "b": 2.5}}
  ]
}`

// badDefaults has defaults that break their own field's rules: left out, such a field fails.
const badDefaults = `{
  "type": "record", "name": "BadDefaults", "namespace": "dev.waooaw.test",
  "fields": [
    {"name": "ok", "type": "string", "default": "x"},
    {"name": "bad", "type": "string", "default": "", "waooaw.min_length": 1},
    {"name": "badlist", "type": {"type": "array", "items": "int"}, "default": [1, 3000000000]},
    {"name": "numstr", "type": "long", "default": 0, "waooaw.min_length": 1}
  ]
}`

// TestNormalizeMatchesReference checks generated documents, valid and not, of every topic
// schema and of a schema using every type, against the decode-check-re-encode
// implementation Normalize replaced: same bytes out, or the same field and problem.
func TestNormalizeMatchesReference(t *testing.T) {
	const perTarget = 3000
	type target struct {
		name   string
		s      avro.Schema
		prefix string
		// The fewest documents that must pass: a long with a min_length never does.
		minValid int
	}
	var targets []target
	for _, topic := range Default().Topics() {
		targets = append(targets, target{name: topic, s: Default().schemas[topic], minValid: perTarget / 10})
		if data, err := Default().Record(topic, "data"); err == nil {
			targets = append(targets, target{name: topic + ".data", s: data, prefix: "data", minValid: perTarget / 10})
		}
	}
	es, err := avro.ParseBytesWithCache([]byte(every), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	targets = append(targets, target{name: "every", s: es, minValid: perTarget / 10})
	bs, err := avro.ParseBytesWithCache([]byte(badDefaults), "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	targets = append(targets, target{name: "bad-defaults", s: bs})

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(tg.name))))
			outcomes := map[string]int{}
			for n := range perTarget {
				g := &gen{r: r}
				v := g.value(tg.s, 0, nil)
				if r.IntN(3) == 0 {
					g.mutate = true
					v = g.corrupt(tg.s, v, 0)
				}
				doc := g.encode(v, 0)
				if r.IntN(10) == 0 {
					doc = g.malform(doc)
				}
				got, gotErr := NormalizeTo(tg.s, doc, tg.prefix)
				if msg := matchesReference(tg.s, doc, tg.prefix, got, gotErr); msg != "" {
					t.Fatalf("document %d %s\n%s", n, doc, msg)
				}
				if gotErr == nil {
					outcomes["valid"]++
				} else {
					outcomes[problemKind(gotErr)]++
				}
			}
			// The generator must reach both sides, or the comparison proves little.
			if outcomes["valid"] < tg.minValid || outcomes["valid"] > perTarget*9/10 {
				t.Fatalf("outcomes %v: too few valid or invalid documents", outcomes)
			}
			t.Logf("outcomes %v", outcomes)
		})
	}
}

// matchesReference compares with the reference's outcome. Where a document breaks the
// schema in several members of one object, the reference names whichever its map iteration
// meets first, so the new outcome must be one of the answers it gives over repeated runs.
func matchesReference(s avro.Schema, doc []byte, prefix string, got []byte, gotErr error) string {
	var msg string
	for range 40 {
		want, wantErr := refNormalizeTo(s, doc, prefix)
		if msg = differ(want, wantErr, got, gotErr); msg == "" {
			return ""
		}
	}
	return msg
}

func problemKind(err error) string {
	var fe *FieldError
	if !errors.As(err, &fe) {
		return "other"
	}
	p := fe.Problem
	if i := strings.IndexAny(p, ",:\""); i > 0 {
		p = p[:i]
	}
	return p
}

// differ says how two outcomes differ, or "" if they do not.
func differ(want []byte, wantErr error, got []byte, gotErr error) string {
	if (wantErr == nil) != (gotErr == nil) {
		return fmt.Sprintf("reference: %s, %v\nnew:       %s, %v", want, wantErr, got, gotErr)
	}
	if wantErr != nil {
		var we, ge *FieldError
		if errors.As(wantErr, &we) != errors.As(gotErr, &ge) || wantErr.Error() != gotErr.Error() ||
			(we != nil && (we.Field != ge.Field || we.Problem != ge.Problem)) || !errors.Is(gotErr, ErrInvalid) {
			return fmt.Sprintf("reference error: %v\nnew error:       %v", wantErr, gotErr)
		}
		return ""
	}
	if !bytes.Equal(want, got) {
		return fmt.Sprintf("reference: %s\nnew:       %s", want, got)
	}
	return ""
}

// gen builds random documents for a schema. Values are Go values, except json.Number and
// rawString, written as they are; objects are written with shuffled, sometimes repeated keys.
type gen struct {
	r      *rand.Rand
	mutate bool // corrupt has made its one change
}

type rawString string // a JSON string token written verbatim, escapes and all

type object struct {
	keys []string
	vals []any
}

func (o *object) set(k string, v any) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

var (
	strs = []any{"", "a", "abc", "decision", "pdp", "<a href='x'>&amp;</a>", "line\u2028sep\u2029", "héllo wörld",
		"tab\there\nnew\"quote\\back\b\f\r\x01\x1f", "\x7f", "invalid \xff\xfe utf8", "😀 emoji", strings.Repeat("0", 64),
		strings.Repeat("ab", 40), "red", "green", "null", "\u00e9",
		rawString(`"esc\u0041ped\/"`), rawString(`"lone \ud800 surrogate"`), rawString(`"pair \ud83d\ude00"`),
		rawString(`"bad pair \ud83d\u0041"`), rawString(`"\u2028\u003c"`), rawString(`"\ud800"`)}
	times = []any{"2026-11-26T10:00:00Z", "2026-11-26T10:00:00.123456789+02:00", "2026-11-26T10:00:00,5Z",
		"2026-11-26 10:00:00Z", "yesterday", "", "2026-13-01T00:00:00Z", rawString(`"2026-11-26T10:00:00\u005a"`)}
	ints = []string{"0", "-0", "5", "-17", "1.5", "1e3", "2.0", "2147483647", "2147483648", "-2147483649",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "123456789012345678901"}
	floats = []string{"0", "-0", "-0.0", "1.5", "1e400", "-1e400", "1e-400", "1e-7", "0.000001", "1e21", "123456789012345678901234",
		"3.14159265358979323846", "1E+2", "5e-324", "1.7976931348623157e308"}
	keys = []string{"", "a", "b", "é", "<k>", "z\u2028", "\xff", "key with space", "10", "9"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func (g *gen) value(s avro.Schema, depth int, f *avro.Field) any {
	switch s.Type() {
	case avro.Record:
		o := &object{}
		for _, fd := range s.(*avro.RecordSchema).Fields() {
			if fd.HasDefault() && g.r.IntN(4) == 0 {
				continue
			}
			o.set(fd.Name(), g.value(fd.Type(), depth+1, fd))
		}
		return o
	case avro.Enum:
		syms := s.(*avro.EnumSchema).Symbols()
		if g.r.IntN(20) == 0 {
			return "bogus"
		}
		return pick(g.r, syms)
	case avro.Array:
		out := []any{}
		for range g.r.IntN(4) {
			out = append(out, g.value(s.(*avro.ArraySchema).Items(), depth+1, nil))
		}
		return out
	case avro.Map:
		o := &object{}
		for range g.r.IntN(4) {
			o.set(pick(g.r, keys), g.value(s.(*avro.MapSchema).Values(), depth+1, nil))
		}
		return o
	case avro.Union:
		types := s.(*avro.UnionSchema).Types()
		t := pick(g.r, types)
		if t.Type() == avro.Null {
			return nil
		}
		name := string(t.Type())
		if n, ok := t.(avro.NamedSchema); ok {
			name = n.FullName()
		}
		o := &object{}
		o.set(name, g.value(t, depth+1, nil))
		return o
	case avro.Null:
		return nil
	case avro.String:
		if f != nil && f.Prop("waooaw.format") == "rfc3339" {
			if g.r.IntN(8) == 0 {
				return pick(g.r, times)
			}
			return times[g.r.IntN(2)]
		}
		if f == nil {
			return pick(g.r, strs)
		}
		if min, ok := f.Prop("waooaw.min_length").(float64); ok && g.r.IntN(8) != 0 {
			if min > 3 {
				return strings.Repeat(pick(g.r, []string{"0", "é"}), int(min)+g.r.IntN(2)-g.r.IntN(2))
			}
			return pick(g.r, strs[2:])
		}
		return pick(g.r, strs)
	case avro.Boolean:
		return g.r.IntN(2) == 0
	case avro.Int, avro.Long:
		if g.r.IntN(6) == 0 {
			return json.Number(pick(g.r, ints))
		}
		return json.Number(pick(g.r, ints[:4]))
	case avro.Float, avro.Double:
		return json.Number(pick(g.r, floats))
	}
	return nil
}

// corrupt makes one change somewhere in v: a value of the wrong kind, a field left out, or
// a member that is not a field.
func (g *gen) corrupt(s avro.Schema, v any, depth int) any {
	wrong := []any{nil, true, json.Number("7"), "x", []any{}, &object{}}
	if depth > 0 && g.r.IntN(4) == 0 {
		return pick(g.r, wrong)
	}
	switch x := v.(type) {
	case *object:
		if len(x.keys) == 0 || g.r.IntN(4) == 0 {
			if g.r.IntN(2) == 0 && len(x.keys) > 0 {
				i := g.r.IntN(len(x.keys))
				x.keys = append(x.keys[:i:i], x.keys[i+1:]...)
				x.vals = append(x.vals[:i:i], x.vals[i+1:]...)
			} else {
				x.set("extra", json.Number("1"))
			}
			return x
		}
		i := g.r.IntN(len(x.keys))
		x.vals[i] = g.corrupt(nil, x.vals[i], depth+1)
		return x
	case []any:
		if len(x) > 0 {
			i := g.r.IntN(len(x))
			x[i] = g.corrupt(nil, x[i], depth+1)
			return x
		}
	}
	return pick(g.r, wrong)
}

func (g *gen) space() string {
	if g.r.IntN(5) != 0 {
		return ""
	}
	return pick(g.r, []string{" ", "\n\t", "\r\n  "})
}

func (g *gen) encode(v any, depth int) []byte {
	var b bytes.Buffer
	b.WriteString(g.space())
	switch x := v.(type) {
	case *object:
		b.WriteByte('{')
		order := g.r.Perm(len(x.keys))
		if g.r.IntN(2) == 0 { // mostly in schema order, as encoders write them
			for i := range order {
				order[i] = i
			}
		}
		for n, i := range order {
			if n > 0 {
				b.WriteByte(',')
			}
			if g.r.IntN(15) == 0 { // a repeated key: the last one counts
				fmt.Fprintf(&b, "%s%s:%s,", g.space(), g.key(x.keys[i]), `{"junk":[1,"2"]}`)
			}
			fmt.Fprintf(&b, "%s%s%s:", g.space(), g.key(x.keys[i]), g.space())
			b.Write(g.encode(x.vals[i], depth+1))
		}
		b.WriteString(g.space())
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(g.encode(e, depth+1))
		}
		b.WriteString(g.space())
		b.WriteByte(']')
	case rawString:
		b.WriteString(string(x))
	case string:
		b.Write(g.str(x))
	case json.Number:
		b.WriteString(string(x))
	default:
		j, _ := json.Marshal(x)
		b.Write(j)
	}
	b.WriteString(g.space())
	return b.Bytes()
}

// key writes an object key, sometimes with escapes that decode to the same key.
func (g *gen) key(k string) []byte {
	if k != "" && g.r.IntN(10) == 0 {
		return []byte(fmt.Sprintf(`"\u%04x%s"`, k[0], k[1:]))
	}
	return g.str(k)
}

// str writes s raw (invalid UTF-8 left as is) or as encoding/json would.
func (g *gen) str(s string) []byte {
	if g.r.IntN(2) == 0 && !strings.ContainsAny(s, "\"\\") && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
		return []byte(`"` + s + `"`)
	}
	j, _ := json.Marshal(s)
	return j
}

// malform breaks doc: cut short, followed by something, or a byte changed.
func (g *gen) malform(doc []byte) []byte {
	switch g.r.IntN(4) {
	case 0:
		return doc[:g.r.IntN(len(doc))]
	case 1:
		return append(doc, pick(g.r, []string{"x", "}", "]", " {}", "  ", "\n]]", "1", ","})...)
	case 2:
		return append([]byte(pick(g.r, []string{"", " ", "[", "\"", "nul"})), doc...)
	default:
		out := bytes.Clone(doc)
		out[g.r.IntN(len(out))] = pick(g.r, []byte("{}[]\",:\\ x0\x00\xff"))
		return out
	}
}

// TestNormalizeMalformedMatchesReference covers the syntax errors encoding/json names.
func TestNormalizeMalformedMatchesReference(t *testing.T) {
	s := Default().schemas["health_events"]
	deep := strings.Repeat("[", 10001) + strings.Repeat("]", 10001)
	docs := []string{"", " ", "{", "}", `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `{"a":01}`, `{"a":-}`, `{"a":1.}`,
		`{"a":1e}`, `{"a":tru}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", `{"a":"\u12"}`, `{} x`, `{}}`, `{} ]`, `{}{}`,
		`"str"`, `nul`, `1 2`, `-`, `{"event_id":1}`, deep, `{"x":` + deep + `}`, `{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`}
	for _, d := range docs {
		got, gotErr := NormalizeTo(s, []byte(d), "p")
		if msg := matchesReference(s, []byte(d), "p", got, gotErr); msg != "" {
			t.Errorf("%.40q:\n%s", d, msg)
		}
	}
}

// TestAppendStringMatchesEncodingJSON checks the escaper byte for byte against encoding/json
// without HTML escaping.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	var all []string
	for c := range 0x80 {
		all = append(all, string(rune(c)))
	}
	all = append(all, "\u2028", "\u2029", "\u2027", "\xff", "a\xc3", "\xed\xa0\x80", "é😀", "\ufffd", "<>&", "")
	for _, s := range all {
		want, _ := refMarshal(s)
		if got := AppendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		if got := AppendString(nil, []byte(s)); !bytes.Equal(got, want) {
			t.Errorf("%q as bytes: got %s, want %s", s, got, want)
		}
	}
}
