package lang

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// UnmarshalValue decodes JSON into canonical values: a number with a
// fraction or exponent is a double, any other number an integer.
func UnmarshalValue(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("lang: decode json: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("lang: decode json: trailing data")
	}
	return FromJSON(v), nil
}

// FromJSON converts encoding/json output (with UseNumber) to canonical values.
func FromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := x.Int64(); err == nil {
				return i
			}
		}
		f, _ := x.Float64()
		return f
	case float64:
		return x
	case []any:
		for i := range x {
			x[i] = FromJSON(x[i])
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = FromJSON(e)
		}
		return x
	}
	return v
}
