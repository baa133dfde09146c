package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// node is an Avro schema prepared for checking documents: what a check needs is looked up
// once here, not per value.
type node struct {
	typ avro.Type

	// record
	name   string
	fields []field
	index  map[string]int

	// enum
	symbols []string
	quoted  [][]byte // each symbol as a JSON string

	elem *node // array items, map values

	// union
	branches []branch
	nullable bool
}

type field struct {
	name string
	key  []byte // `"name":`
	node *node

	hasDefault  bool
	nilDefault  bool        // a null default of a type that cannot be null: the field is required
	defaultJSON []byte      // the default, normalized
	defaultErr  *FieldError // or why the default does not pass, its Field relative to the field

	minLength int // waooaw.min_length; 0 if none
	rfc3339   bool
}

type branch struct {
	name string
	node *node
}

// plans caches the prepared schemas by schema, for NormalizeTo's callers holding a schema.
var plans sync.Map // avro.Schema -> *node

func planFor(s avro.Schema) *node {
	if n, ok := plans.Load(s); ok {
		return n.(*node)
	}
	n, _ := plans.LoadOrStore(s, prepare(s))
	return n.(*node)
}

func prepare(s avro.Schema) *node {
	n := &node{typ: s.Type()}
	switch n.typ {
	case avro.Record:
		rec, ok := s.(*avro.RecordSchema)
		if !ok {
			break
		}
		n.name = rec.Name()
		n.index = make(map[string]int, len(rec.Fields()))
		for i, f := range rec.Fields() {
			n.index[f.Name()] = i
			n.fields = append(n.fields, prepareField(f))
		}
	case avro.Enum:
		n.symbols = s.(*avro.EnumSchema).Symbols()
		for _, sym := range n.symbols {
			n.quoted = append(n.quoted, AppendString(nil, sym))
		}
	case avro.Array:
		n.elem = prepare(s.(*avro.ArraySchema).Items())
	case avro.Map:
		n.elem = prepare(s.(*avro.MapSchema).Values())
	case avro.Union:
		for _, t := range s.(*avro.UnionSchema).Types() {
			name := string(t.Type())
			if named, ok := t.(avro.NamedSchema); ok {
				name = named.FullName()
			}
			if t.Type() == avro.Null {
				n.nullable = true
			}
			n.branches = append(n.branches, branch{name: name, node: prepare(t)})
		}
	}
	return n
}

func prepareField(f *avro.Field) field {
	pf := field{name: f.Name(), node: prepare(f.Type()), hasDefault: f.HasDefault()}
	pf.key = append(AppendString(nil, pf.name), ':')
	if min, ok := f.Prop("waooaw.min_length").(float64); ok && int(min) > 0 {
		pf.minLength = int(min)
	}
	if format, ok := f.Prop("waooaw.format").(string); ok && format == "rfc3339" {
		pf.rfc3339 = true
	}
	if !pf.hasDefault {
		return pf
	}
	def := f.Default()
	if def == nil && pf.node.typ != avro.Null && pf.node.typ != avro.Union {
		pf.nilDefault = true
		return pf
	}
	// The default is checked like a value of the document, once: a field left out then
	// costs a copy.
	doc, err := json.Marshal(def)
	if err != nil {
		pf.defaultErr = &FieldError{Problem: "unusable default: " + err.Error()}
		return pf
	}
	st := &state{doc: doc}
	if err := st.value(pf.node, 0, len(doc)); err != nil {
		pf.defaultErr = err.(*FieldError)
		return pf
	}
	if err := st.props(&pf, 0, len(doc)); err != nil {
		pf.defaultErr = err.(*FieldError)
		return pf
	}
	pf.defaultJSON = st.out
	return pf
}

// state is one check in progress. Its stacks grow with nesting and are kept for the next
// check, so a check allocates little beyond its result.
type state struct {
	doc    []byte
	out    []byte
	prefix string
	path   []seg    // where the check is, rendered only for an error
	slots  []span   // per record being checked, where each field's value is
	ents   []member // per map or union being checked, its members
}

type seg struct {
	name  string
	key   []byte // a map key, when name is not set
	index int    // an array index, if >= 0
}

type span struct{ start, end int }

type member struct {
	key        []byte // decoded
	start, end int
}

var states = sync.Pool{New: func() any { return &state{} }}

// normalize checks doc against n and returns its normalized encoding.
func (n *node) normalize(doc []byte, prefix string) ([]byte, error) {
	start, end, ok := topValue(doc)
	if !ok {
		// encoding/json names the syntax error; like its Decoder, a value followed by a
		// closing bracket is taken alone.
		dec := json.NewDecoder(bytes.NewReader(doc))
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &FieldError{Field: prefix, Problem: "malformed JSON: " + err.Error()}
		}
		if dec.More() {
			return nil, &FieldError{Field: prefix, Problem: "trailing data after JSON value"}
		}
		doc = raw
		if start, end, ok = topValue(doc); !ok {
			return nil, &FieldError{Field: prefix, Problem: "malformed JSON"}
		}
	}
	st := states.Get().(*state)
	st.doc, st.prefix = doc, prefix
	err := st.value(n, start, end)
	var out []byte
	if err == nil {
		out = bytes.Clone(st.out)
	}
	st.doc, st.out, st.path, st.slots, st.ents = nil, st.out[:0], st.path[:0], st.slots[:0], st.ents[:0]
	if cap(st.out) <= 64<<10 { // one huge document must not stay pinned
		states.Put(st)
	}
	return out, err
}

// topValue finds the one JSON value doc holds.
func topValue(doc []byte) (start, end int, ok bool) {
	start = skipSpace(doc, 0)
	end = skipValue(doc, start, 0)
	return start, end, end >= 0 && skipSpace(doc, end) == len(doc)
}

// fail reports problem at the current path.
func (st *state) fail(problem string) error {
	return &FieldError{Field: st.at(), Problem: problem}
}

func (st *state) at() string {
	p := st.prefix
	for _, s := range st.path {
		switch {
		case s.index >= 0:
			p = p + "[" + strconv.Itoa(s.index) + "]"
		case s.key != nil:
			p = join(p, string(s.key))
		default:
			p = join(p, s.name)
		}
	}
	return p
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func kind(c byte) string {
	switch c {
	case 'n':
		return "null"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '[':
		return "an array"
	case '{':
		return "an object"
	default:
		return "a number"
	}
}

// value checks the valid JSON value doc[start:end] against n and appends it normalized.
func (st *state) value(n *node, start, end int) error {
	doc := st.doc
	c := doc[start]
	switch n.typ {
	case avro.Record:
		if c != '{' {
			return st.fail("must be an object, got " + kind(c))
		}
		return st.record(n, start)
	case avro.Enum:
		if c != '"' {
			return st.fail("must be a string, got " + kind(c))
		}
		s := unquote(doc[start+1 : end-1])
		for i, sym := range n.symbols {
			if sym == string(s) {
				st.out = append(st.out, n.quoted[i]...)
				return nil
			}
		}
		return st.fail(fmt.Sprintf("must be one of %s, got %q", strings.Join(n.symbols, ", "), s))
	case avro.Array:
		if c != '[' {
			return st.fail("must be an array, got " + kind(c))
		}
		st.out = append(st.out, '[')
		i := skipSpace(doc, start+1)
		for k := 0; doc[i] != ']'; k++ {
			e := skipValue(doc, i, 0)
			if k > 0 {
				st.out = append(st.out, ',')
			}
			st.path = append(st.path, seg{index: k})
			if err := st.value(n.elem, i, e); err != nil {
				return err
			}
			st.path = st.path[:len(st.path)-1]
			if i = skipSpace(doc, e); doc[i] == ',' {
				i = skipSpace(doc, i+1)
			}
		}
		st.out = append(st.out, ']')
		return nil
	case avro.Map:
		if c != '{' {
			return st.fail("must be an object, got " + kind(c))
		}
		base, top := st.members(start)
		st.out = append(st.out, '{')
		for i := base; i < top; i++ {
			m := st.ents[i]
			if i > base {
				st.out = append(st.out, ',')
			}
			st.out = append(AppendString(st.out, m.key), ':')
			st.path = append(st.path, seg{key: m.key, index: -1})
			if err := st.value(n.elem, m.start, m.end); err != nil {
				return err
			}
			st.path = st.path[:len(st.path)-1]
		}
		st.ents = st.ents[:base]
		st.out = append(st.out, '}')
		return nil
	case avro.Union:
		return st.union(n, start, end)
	case avro.Null:
		if c != 'n' {
			return st.fail("must be null, got " + kind(c))
		}
		st.out = append(st.out, "null"...)
		return nil
	case avro.String:
		if c != '"' {
			return st.fail("must be a string, got " + kind(c))
		}
		if s := doc[start+1 : end-1]; plain(s) {
			st.out = AppendString(st.out, s)
		} else {
			st.out = AppendString(st.out, unquote(s))
		}
		return nil
	case avro.Boolean:
		if c != 't' && c != 'f' {
			return st.fail("must be a boolean, got " + kind(c))
		}
		st.out = append(st.out, doc[start:end]...)
		return nil
	case avro.Int, avro.Long:
		if c != '-' && !isDigit(c) {
			return st.fail("must be an integer, got " + kind(c))
		}
		lit := doc[start:end]
		v, ok := parseInt(lit)
		if !ok {
			return st.fail("must be an integer, got " + string(lit))
		}
		if n.typ == avro.Int && (v > math.MaxInt32 || v < math.MinInt32) {
			return st.fail(fmt.Sprintf("must fit in 32 bits, got %d", v))
		}
		st.out = strconv.AppendInt(st.out, v, 10)
		return nil
	case avro.Float, avro.Double:
		if c != '-' && !isDigit(c) {
			return st.fail("must be a number, got " + kind(c))
		}
		f, err := strconv.ParseFloat(string(doc[start:end]), 64)
		if err != nil {
			return st.fail("must be a number, got " + string(doc[start:end]))
		}
		st.out = appendFloat(st.out, f)
		return nil
	default:
		return st.fail("unsupported schema type " + string(n.typ))
	}
}

// record checks the object at doc[start]: each field in schema order, a missing one from
// its default, then any member that is not a field.
func (st *state) record(n *node, start int) error {
	doc := st.doc
	base := len(st.slots)
	for range n.fields {
		st.slots = append(st.slots, span{-1, -1})
	}
	var unknown []byte
	i := skipSpace(doc, start+1)
	for k := 0; doc[i] != '}'; k++ {
		ke := skipString(doc, i)
		key := unquote(doc[i+1 : ke-1])
		vs := skipSpace(doc, skipSpace(doc, ke)+1)
		ve := skipValue(doc, vs, 0)
		// Members usually come in schema order; a repeated member counts once, the last.
		f, ok := -1, false
		if k < len(n.fields) && n.fields[k].name == string(key) {
			f, ok = k, true
		} else {
			f, ok = n.index[string(key)]
		}
		switch {
		case ok:
			st.slots[base+f] = span{vs, ve}
		case unknown == nil:
			unknown = key
		}
		if i = skipSpace(doc, ve); doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	st.out = append(st.out, '{')
	for k := range n.fields {
		f := &n.fields[k]
		if k > 0 {
			st.out = append(st.out, ',')
		}
		st.out = append(st.out, f.key...)
		st.path = append(st.path, seg{name: f.name, index: -1})
		if v := st.slots[base+k]; v.start >= 0 {
			if err := st.value(f.node, v.start, v.end); err != nil {
				return err
			}
			if err := st.props(f, v.start, v.end); err != nil {
				return err
			}
		} else {
			switch {
			case !f.hasDefault || f.nilDefault:
				return st.fail("is required")
			case f.defaultErr != nil:
				return st.defaultFailed(f.defaultErr)
			}
			st.out = append(st.out, f.defaultJSON...)
		}
		st.path = st.path[:len(st.path)-1]
	}
	st.slots = st.slots[:base]
	if unknown != nil {
		return &FieldError{Field: join(st.at(), string(unknown)), Problem: "is not a field of " + n.name}
	}
	st.out = append(st.out, '}')
	return nil
}

func (st *state) defaultFailed(e *FieldError) error {
	at := st.at()
	switch {
	case e.Field == "":
	case strings.HasPrefix(e.Field, "["):
		at += e.Field
	default:
		at = join(at, e.Field)
	}
	return &FieldError{Field: at, Problem: e.Problem}
}

// props enforces the waooaw.* field properties, which Avro itself ignores, on the checked
// value doc[start:end]; a value that is not a string counts as "".
func (st *state) props(f *field, start, end int) error {
	if f.minLength == 0 && !f.rfc3339 {
		return nil
	}
	var s []byte
	if t := f.node.typ; (t == avro.String || t == avro.Enum) && st.doc[start] == '"' {
		s = unquote(st.doc[start+1 : end-1])
	}
	if len(s) < f.minLength {
		if f.minLength == 1 {
			return st.fail("must not be empty")
		}
		return st.fail(fmt.Sprintf("must be at least %d characters", f.minLength))
	}
	if f.rfc3339 {
		if _, err := time.Parse(time.RFC3339Nano, string(s)); err != nil {
			return st.fail(fmt.Sprintf("must be an RFC 3339 time, got %q", s))
		}
	}
	return nil
}

// members gathers the members of the object at doc[start] on st.ents[base:top], sorted by
// key, a repeated key once with its last value (as decoding into a map keeps it).
func (st *state) members(start int) (base, top int) {
	doc := st.doc
	base = len(st.ents)
	i := skipSpace(doc, start+1)
	for doc[i] != '}' {
		ke := skipString(doc, i)
		vs := skipSpace(doc, skipSpace(doc, ke)+1)
		ve := skipValue(doc, vs, 0)
		st.ents = append(st.ents, member{key: unquote(doc[i+1 : ke-1]), start: vs, end: ve})
		if i = skipSpace(doc, ve); doc[i] == ',' {
			i = skipSpace(doc, i+1)
		}
	}
	ms := st.ents[base:]
	slices.SortStableFunc(ms, func(a, b member) int { return bytes.Compare(a.key, b.key) })
	w := 0
	for r := range ms {
		if r+1 < len(ms) && bytes.Equal(ms[r].key, ms[r+1].key) {
			continue
		}
		ms[w] = ms[r]
		w++
	}
	st.ents = st.ents[:base+w]
	return base, base + w
}

// union accepts Avro's JSON union form: null, or {"<branch>": value}.
func (st *state) union(n *node, start, end int) error {
	c := st.doc[start]
	if c == 'n' {
		if !n.nullable {
			return st.fail("must not be null")
		}
		st.out = append(st.out, "null"...)
		return nil
	}
	const form = "a union value must be null or {\"<type>\": value}"
	if c != '{' {
		return st.fail(form)
	}
	base, top := st.members(start)
	if top-base != 1 {
		return st.fail(form)
	}
	m := st.ents[base]
	st.ents = st.ents[:base]
	for _, b := range n.branches {
		if b.name == string(m.key) {
			st.out = append(AppendString(append(st.out, '{'), m.key), ':')
			if err := st.value(b.node, m.start, m.end); err != nil {
				return err
			}
			st.out = append(st.out, '}')
			return nil
		}
	}
	return st.fail(fmt.Sprintf("union has no branch %q", m.key))
}

// parseInt reads a JSON number literal as strconv.ParseInt(lit, 10, 64) would: a fraction
// or exponent, or a value beyond int64, is not an integer.
func parseInt(lit []byte) (int64, bool) {
	neg := lit[0] == '-'
	digits := lit
	if neg {
		digits = lit[1:]
	}
	var u uint64
	for _, c := range digits {
		if !isDigit(c) || u > (1<<63)/10 {
			return 0, false
		}
		if u = u*10 + uint64(c-'0'); u > 1<<63 {
			return 0, false
		}
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	case neg && u <= 1<<63:
		return -int64(u), true // -1<<63 wraps to itself
	}
	return 0, false
}

// appendFloat formats f as encoding/json does.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
