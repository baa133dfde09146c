package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// refNormalizeTo is the implementation Normalize replaced, kept as the reference the
// equality test compares with: decode to map[string]any, check, re-encode with encoding/json.
func refNormalizeTo(s avro.Schema, doc []byte, prefix string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &FieldError{Field: prefix, Problem: "malformed JSON: " + err.Error()}
	}
	if dec.More() {
		return nil, &FieldError{Field: prefix, Problem: "trailing data after JSON value"}
	}
	out, err := refNormalize(s, v, prefix)
	if err != nil {
		return nil, err
	}
	b, err := refMarshal(out)
	if err != nil {
		return nil, fmt.Errorf("schema: encode: %w", err)
	}
	return b, nil
}

// refMarshal is json.Marshal as a json.Encoder with SetEscapeHTML(false) writes, the
// escaping the normaliser keeps: <, > and & as they are.
func refMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// refOrderedRecord marshals its fields in schema order.
type refOrderedRecord struct {
	names  []string
	values []any
}

func (o refOrderedRecord) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, n := range o.names {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := refMarshal(n)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := refMarshal(o.values[i])
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func refJoin(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func refNormalize(s avro.Schema, v any, at string) (any, error) {
	switch s.Type() {
	case avro.Record:
		rec := s.(*avro.RecordSchema)
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be an object, got " + refKind(v)}
		}
		known := make(map[string]bool, len(rec.Fields()))
		out := refOrderedRecord{}
		for _, f := range rec.Fields() {
			known[f.Name()] = true
			fv, present := obj[f.Name()]
			p := refJoin(at, f.Name())
			if !present {
				if !f.HasDefault() {
					return nil, &FieldError{Field: p, Problem: "is required"}
				}
				fv = f.Default()
				if fv == nil && f.Type().Type() != avro.Null && f.Type().Type() != avro.Union {
					return nil, &FieldError{Field: p, Problem: "is required"}
				}
			}
			nv, err := refNormalize(f.Type(), fv, p)
			if err != nil {
				return nil, err
			}
			if err := refCheckProps(f, nv, p); err != nil {
				return nil, err
			}
			out.names = append(out.names, f.Name())
			out.values = append(out.values, nv)
		}
		for k := range obj {
			if !known[k] {
				return nil, &FieldError{Field: refJoin(at, k), Problem: "is not a field of " + rec.Name()}
			}
		}
		return out, nil
	case avro.Enum:
		str, ok := v.(string)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be a string, got " + refKind(v)}
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
			return nil, &FieldError{Field: at, Problem: "must be an array, got " + refKind(v)}
		}
		items := s.(*avro.ArraySchema).Items()
		out := make([]any, len(arr))
		for i, it := range arr {
			nv, err := refNormalize(items, it, fmt.Sprintf("%s[%d]", at, i))
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	case avro.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, &FieldError{Field: at, Problem: "must be an object, got " + refKind(v)}
		}
		vals := s.(*avro.MapSchema).Values()
		out := make(map[string]any, len(obj))
		for k, it := range obj {
			nv, err := refNormalize(vals, it, refJoin(at, k))
			if err != nil {
				return nil, err
			}
			out[k] = nv
		}
		return out, nil
	case avro.Union:
		return refNormalizeUnion(s.(*avro.UnionSchema), v, at)
	case avro.Null:
		if v != nil {
			return nil, &FieldError{Field: at, Problem: "must be null, got " + refKind(v)}
		}
		return nil, nil
	case avro.String:
		if _, ok := v.(string); !ok {
			return nil, &FieldError{Field: at, Problem: "must be a string, got " + refKind(v)}
		}
		return v, nil
	case avro.Boolean:
		if _, ok := v.(bool); !ok {
			return nil, &FieldError{Field: at, Problem: "must be a boolean, got " + refKind(v)}
		}
		return v, nil
	case avro.Int, avro.Long:
		n, err := refInteger(v, s.Type() == avro.Int)
		if err != nil {
			return nil, &FieldError{Field: at, Problem: err.Error()}
		}
		return n, nil
	case avro.Float, avro.Double:
		f, err := refFloat(v)
		if err != nil {
			return nil, &FieldError{Field: at, Problem: err.Error()}
		}
		return f, nil
	default:
		return nil, &FieldError{Field: at, Problem: "unsupported schema type " + string(s.Type())}
	}
}

// normalizeUnion accepts Avro's JSON union form ({"string": "x"} or null).
func refNormalizeUnion(u *avro.UnionSchema, v any, at string) (any, error) {
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
				nv, err := refNormalize(t, inner, at)
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
func refCheckProps(f *avro.Field, v any, at string) error {
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

func refInteger(v any, int32Only bool) (int64, error) {
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
		return 0, fmt.Errorf("must be an integer, got %s", refKind(v))
	}
	if int32Only && (n > math.MaxInt32 || n < math.MinInt32) {
		return 0, fmt.Errorf("must fit in 32 bits, got %d", n)
	}
	return n, nil
}

func refFloat(v any) (float64, error) {
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
		return 0, fmt.Errorf("must be a number, got %s", refKind(v))
	}
}

func refKind(v any) string {
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
