// Package schema holds the Avro schema of every topic and checks JSON-encoded events against
// them before they are published, so a bad event is refused at the edge with the field named,
// instead of by Pub/Sub with "Could not parse message".
package schema

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

//go:embed avro/*.avsc
var files embed.FS

// Files is the embedded schema folder (avro/<topic>.avsc), for tooling that attaches the
// definitions to topics.
func Files() fs.FS { return files }

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("schema violation")

// FieldError names the field that broke the schema, as a dotted path ("data.status").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return fmt.Sprintf("field %s: %s", e.Field, e.Problem)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Registry holds the parsed schema of each topic.
type Registry struct {
	schemas map[string]avro.Schema
	sources map[string]string
}

var defaultRegistry = mustLoad()

func mustLoad() *Registry {
	r, err := Load(files, "avro")
	if err != nil {
		panic(err) // the embedded files are part of the build; tests cover them
	}
	return r
}

// Default returns the registry of the embedded schemas.
func Default() *Registry { return defaultRegistry }

// Load parses every <topic>.avsc file in dir of fsys.
func Load(fsys fs.FS, dir string) (*Registry, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("schema: read %s: %w", dir, err)
	}
	r := &Registry{schemas: map[string]avro.Schema{}, sources: map[string]string{}}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".avsc" {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", e.Name(), err)
		}
		s, err := avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("schema: parse %s: %w", e.Name(), err)
		}
		topic := strings.TrimSuffix(e.Name(), ".avsc")
		r.schemas[topic] = s
		r.sources[topic] = string(b)
	}
	return r, nil
}

// Topics lists the topics that have a schema, sorted.
func (r *Registry) Topics() []string {
	out := make([]string, 0, len(r.schemas))
	for t := range r.schemas {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Definition returns the schema text of a topic, as attached to the Pub/Sub topic.
func (r *Registry) Definition(topic string) (string, bool) {
	s, ok := r.sources[topic]
	return s, ok
}

// Normalize checks a JSON document against the topic's schema and returns it in the exact
// Avro JSON encoding Pub/Sub expects: defaults filled in, fields in schema order. Unknown
// fields are refused, because Pub/Sub would drop them silently.
func (r *Registry) Normalize(topic string, doc []byte) ([]byte, error) {
	s, ok := r.schemas[topic]
	if !ok {
		return nil, fmt.Errorf("schema: unknown topic %q", topic)
	}
	return NormalizeTo(s, doc, "")
}

// Record returns the schema of a named field of the topic's record (e.g. "data"), so a
// caller can check a body that becomes that field.
func (r *Registry) Record(topic, field string) (avro.Schema, error) {
	s, ok := r.schemas[topic]
	if !ok {
		return nil, fmt.Errorf("schema: unknown topic %q", topic)
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("schema: topic %q is not a record", topic)
	}
	for _, f := range rec.Fields() {
		if f.Name() == field {
			return f.Type(), nil
		}
	}
	return nil, fmt.Errorf("schema: topic %q has no field %q", topic, field)
}

// NormalizeTo checks doc against s; prefix is prepended to field paths in errors.
func NormalizeTo(s avro.Schema, doc []byte, prefix string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FieldError{Field: prefix, Problem: "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &FieldError{Field: prefix, Problem: "trailing data after JSON value"}
	}
	out, err := normalize(s, v, prefix)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("schema: encode: %w", err)
	}
	return b, nil
}

// orderedRecord marshals its fields in schema order.
type orderedRecord struct {
	names  []string
	values []any
}

func (o orderedRecord) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func normalize(s avro.Schema, v any, at string) (any, error) {
	switch s.Type() {
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be an object, got " + kind(v)}
		}
		known := make(map[string]bool, len(rec.Fields()))
		out := orderedRecord{}
		for _, f := range rec.Fields() {
			known[f.Name()] = true
			fv, present := obj[f.Name()]
			p := join(at, f.Name())
			if !present {
				if !f.HasDefault() {
					return nil, &FieldError{Field: p, Problem: "is required"}
				}
				fv = f.Default()
				if fv == nil && f.Type().Type() != avro.Null && f.Type().Type() != avro.Union {
					return nil, &FieldError{Field: p, Problem: "is required"}
				}
			}
			nv, err := normalize(f.Type(), fv, p)
			if err != nil {
				return nil, err
			}
			if err := checkProps(f, nv, p); err != nil {
				return nil, err
			}
			out.names = append(out.names, f.Name())
			out.values = append(out.values, nv)
		}
		for k := range obj {
			if !known[k] {
				return nil, &FieldError{Field: join(at, k), Problem: "is not a field of " + rec.Name()}
			}
		}
		return out, nil
	case avro.Enum:
		str, ok := v.(string)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be a string, got " + kind(v)}
		}
		syms := s.(*avro.EnumSchema).Symbols()
		for _, sym := range syms {
			if sym == str {
				return str, nil
			}
		}
		return nil, &FieldError{Field: at, Problem: fmt.Sprintf("must be one of %s, got %q", strings.Join(syms, ", "), str)}
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be an array, got " + kind(v)}
		}
		items := s.(*avro.ArraySchema).Items()
		out := make([]any, len(arr))
		for i, it := range arr {
			nv, err := normalize(items, it, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case avro.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be an object, got " + kind(v)}
		}
		vals := s.(*avro.MapSchema).Values()
		out := make(map[string]any, len(obj))
		for k, it := range obj {
			nv, err := normalize(vals, it, join(at, k))
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case avro.Union:
		return normalizeUnion(s.(*avro.UnionSchema), v, at)
	case avro.Null:
		if v != nil {
			return nil, &FieldError{Field: at, Problem: "must be null, got " + kind(v)}
		}
		return nil, nil
	case avro.String:
		if _, ok := v.(string); !ok {
			return nil, &FieldError{Field: at, Problem: "must be a string, got " + kind(v)}
		}
		return v, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, &FieldError{Field: at, Problem: "must be a boolean, got " + kind(v)}
		}
		return v, nil
	case avro.Int, avro.Long:
		n, err := integer(v, s.Type() == avro.Int)
		if err != nil {
			return nil, &FieldError{Field: at, Problem: err.Error()}
		}
		return n, nil
	case avro.Float, avro.Double:
		f, err := float(v)
		if err != nil {
			return nil, &FieldError{Field: at, Problem: err.Error()}
		}
		return f, nil
	default:
		return nil, &FieldError{Field: at, Problem: "unsupported schema type " + string(s.Type())}
	}
}

// normalizeUnion accepts Avro's JSON union form ({"string": "x"} or null).
func normalizeUnion(u *avro.UnionSchema, v any, at string) (any, error) {
	if v == nil {
		for _, t := range u.Types() {
			if t.Type() == avro.Null {
				return nil, nil
			}
		}
		return nil, &FieldError{Field: at, Problem: "must not be null"}
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return nil, &FieldError{Field: at, Problem: "a union value must be null or {\"<type>\": value}"}
	}
	for name, inner := range obj {
		for _, t := range u.Types() {
			tn := string(t.Type())
			if n, ok := t.(avro.NamedSchema); ok {
				tn = n.FullName()
			}
			if tn == name {
				nv, err := normalize(t, inner, at)
				if err != nil {
					return nil, err
				}
				return map[string]any{name: nv}, nil
			}
		}
		return nil, &FieldError{Field: at, Problem: fmt.Sprintf("union has no branch %q", name)}
	}
	return nil, nil
}

// checkProps enforces the waooaw.* field properties, which Avro itself ignores.
func checkProps(f *avro.Field, v any, at string) error {
	str, _ := v.(string)
	if min, ok := f.Prop("waooaw.min_length").(float64); ok && len(str) < int(min) {
		if int(min) == 1 {
			return &FieldError{Field: at, Problem: "must not be empty"}
		}
		return &FieldError{Field: at, Problem: fmt.Sprintf("must be at least %d characters", int(min))}
	}
	if format, ok := f.Prop("waooaw.format").(string); ok && format == "rfc3339" {
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			return &FieldError{Field: at, Problem: fmt.Sprintf("must be an RFC 3339 time, got %q", str)}
		}
	}
	return nil
}

func integer(v any, int32Only bool) (int64, error) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, fmt.Errorf("must be an integer, got %s", x)
		}
		n = i
	case float64: // defaults arrive as float64
		if x != math.Trunc(x) {
			return 0, fmt.Errorf("must be an integer, got %v", x)
		}
		n = int64(x)
	case int:
		n = int64(x)
	case int64:
		n = x
	default:
		return 0, fmt.Errorf("must be an integer, got %s", kind(v))
	}
	if int32Only && (n > math.MaxInt32 || n < math.MinInt32) {
		return 0, fmt.Errorf("must fit in 32 bits, got %d", n)
	}
	return n, nil
}

func float(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return 0, fmt.Errorf("must be a number, got %s", x)
		}
		return f, nil
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	default:
		return 0, fmt.Errorf("must be a number, got %s", kind(v))
	}
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64, int, int64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}
