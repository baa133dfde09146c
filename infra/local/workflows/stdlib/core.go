package stdlib

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

func init() {
	reg("default", 2, func(_ Ctx, a []any) (any, error) {
		if arg(a, 0) == nil {
			return arg(a, 1), nil
		}
		return a[0], nil
	}, "value", "default_value")
	reg("keys", 1, func(_ Ctx, a []any) (any, error) {
		m, ok := arg(a, 0).(map[string]any)
		if !ok {
			return nil, typeErr("keys", "map", arg(a, 0))
		}
		ks := make([]string, 0, len(m))
		for k := range m {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		out := make([]any, len(ks))
		for i, k := range ks {
			out[i] = k
		}
		return out, nil
	}, "map")
	reg("len", 1, func(_ Ctx, a []any) (any, error) { return lang.Len(arg(a, 0)) }, "value")
	reg("get_type", 1, func(_ Ctx, a []any) (any, error) { return lang.TypeName(arg(a, 0)), nil }, "value")
	reg("int", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case int64:
			return v, nil
		case float64:
			if math.IsNaN(v) || math.Abs(v) >= 9.2e18 {
				return nil, lang.Errorf(lang.TagValue, "int: %v out of range", v)
			}
			return int64(v), nil
		case bool:
			if v {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				f, ferr := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if ferr != nil {
					return nil, lang.Errorf(lang.TagValue, "int: cannot convert %q", v)
				}
				return int64(f), nil
			}
			return n, nil
		}
		return nil, typeErr("int", "number, string or boolean", arg(a, 0))
	}, "value")
	reg("double", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case int64:
			return float64(v), nil
		case float64:
			return v, nil
		case string:
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return nil, lang.Errorf(lang.TagValue, "double: cannot convert %q", v)
			}
			return f, nil
		}
		return nil, typeErr("double", "number or string", arg(a, 0))
	}, "value")
	reg("string", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case string:
			return v, nil
		case int64:
			return strconv.FormatInt(v, 10), nil
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(v), nil
		}
		return nil, typeErr("string", "number, string or boolean", arg(a, 0))
	}, "value")
	reg("bool", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case bool:
			return v, nil
		case string:
			switch strings.ToLower(v) {
			case "true", "t":
				return true, nil
			case "false", "f":
				return false, nil
			}
			return nil, lang.Errorf(lang.TagValue, "bool: cannot convert %q", v)
		case int64:
			return v != 0, nil
		}
		return nil, typeErr("bool", "boolean, string or integer", arg(a, 0))
	}, "value")

	// sys
	reg("sys.now", 0, func(c Ctx, _ []any) (any, error) {
		return float64(c.Now().UnixNano()) / 1e9, nil
	})
	reg("sys.get_env", 1, func(c Ctx, a []any) (any, error) {
		name, err := str("sys.get_env", arg(a, 0))
		if err != nil {
			return nil, err
		}
		if v, ok := c.Getenv(name); ok {
			return v, nil
		}
		return arg(a, 1), nil
	}, "name", "default")
	// Google's order is data, severity, text, json, timeout, and exactly one
	// of data, text and json is logged.
	reg("sys.log", 0, func(c Ctx, a []any) (any, error) {
		var v any
		n := 0
		for _, i := range []int{0, 2, 3} {
			if has(a, i) {
				v = a[i]
				n++
			}
		}
		if n != 1 {
			return nil, lang.Errorf(lang.TagType, "sys.log: exactly one of data, text or json must be given, got %d", n)
		}
		if has(a, 3) {
			if _, ok := a[3].(map[string]any); !ok {
				return nil, typeErr("sys.log", "json as a map", a[3])
			}
		}
		sev, _ := arg(a, 1).(string)
		if sev == "" {
			sev = "DEFAULT"
		}
		c.Log(sev, v)
		return nil, nil
	}, "data", "severity", "text", "json", "timeout")
	registry["sys.sleep"] = &Func{Params: []string{"seconds"}, Required: 1, Blocking: true}
	registry["sys.sleep_until"] = &Func{Params: []string{"time"}, Required: 1, Blocking: true}
	registry["events.await_callback"] = &Func{Params: []string{"callback", "timeout"}, Required: 1, Blocking: true}
	registry["googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"] = &Func{
		Params: []string{"workflow_id", "argument", "location", "project_id", "connector_params"}, Required: 1, Blocking: true}
	reg("events.create_callback_endpoint", 0, func(c Ctx, a []any) (any, error) {
		method := "POST"
		if has(a, 0) {
			m, err := str("events.create_callback_endpoint", a[0])
			if err != nil {
				return nil, err
			}
			method = strings.ToUpper(m)
		}
		switch method {
		case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH":
		default:
			return nil, lang.Errorf(lang.TagValue, "events.create_callback_endpoint: unsupported method %q", method)
		}
		u, err := c.NewCallback(method)
		if err != nil {
			return nil, err
		}
		return map[string]any{"url": u}, nil
	}, "http_callback_method")

	// text
	reg("text.to_lower", 1, strFn("text.to_lower", strings.ToLower), "source")
	reg("text.to_upper", 1, strFn("text.to_upper", strings.ToUpper), "source")
	reg("text.url_encode", 1, strFn("text.url_encode", func(s string) string {
		return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	}), "source")
	reg("text.url_encode_plus", 1, strFn("text.url_encode_plus", url.QueryEscape), "source")
	reg("text.url_decode", 1, func(_ Ctx, a []any) (any, error) {
		s, err := str("text.url_decode", arg(a, 0))
		if err != nil {
			return nil, err
		}
		out, uerr := url.QueryUnescape(s)
		if uerr != nil {
			return nil, lang.Errorf(lang.TagValue, "text.url_decode: %v", uerr)
		}
		return out, nil
	}, "source")
	reg("text.find_all", 2, func(_ Ctx, a []any) (any, error) {
		s, err := str("text.find_all", arg(a, 0))
		if err != nil {
			return nil, err
		}
		sub, err := str("text.find_all", arg(a, 1))
		if err != nil {
			return nil, err
		}
		out := []any{}
		if sub == "" {
			return out, nil
		}
		for i := 0; ; {
			j := strings.Index(s[i:], sub)
			if j < 0 {
				break
			}
			idx := utf8.RuneCountInString(s[:i+j])
			out = append(out, map[string]any{"index": int64(idx), "match": sub})
			i += j + len(sub)
		}
		return out, nil
	}, "source", "substr")
	reg("text.find_all_regex", 2, func(_ Ctx, a []any) (any, error) {
		s, re, err := strRe("text.find_all_regex", a)
		if err != nil {
			return nil, err
		}
		out := []any{}
		for _, m := range re.FindAllStringIndex(s, -1) {
			out = append(out, map[string]any{"index": int64(utf8.RuneCountInString(s[:m[0]])), "match": s[m[0]:m[1]]})
		}
		return out, nil
	}, "source", "regexp")
	reg("text.match_regex", 2, func(_ Ctx, a []any) (any, error) {
		s, re, err := strRe("text.match_regex", a)
		if err != nil {
			return nil, err
		}
		return re.MatchString(s), nil
	}, "source", "regexp")
	reg("text.replace_all", 3, func(_ Ctx, a []any) (any, error) {
		var ss [3]string
		for i := range ss {
			s, err := str("text.replace_all", arg(a, i))
			if err != nil {
				return nil, err
			}
			ss[i] = s
		}
		return strings.ReplaceAll(ss[0], ss[1], ss[2]), nil
	}, "source", "substr", "repl")
	reg("text.replace_all_regex", 3, func(_ Ctx, a []any) (any, error) {
		s, re, err := strRe("text.replace_all_regex", a)
		if err != nil {
			return nil, err
		}
		repl, err := str("text.replace_all_regex", arg(a, 2))
		if err != nil {
			return nil, err
		}
		// Google uses \1 for groups; Go uses ${1}.
		repl = regexp.MustCompile(`\\(\d)`).ReplaceAllString(strings.ReplaceAll(repl, "$", "$$"), "$${$1}")
		return re.ReplaceAllString(s, repl), nil
	}, "source", "regexp", "repl")
	reg("text.split", 2, func(_ Ctx, a []any) (any, error) {
		s, err := str("text.split", arg(a, 0))
		if err != nil {
			return nil, err
		}
		sep, err := str("text.split", arg(a, 1))
		if err != nil {
			return nil, err
		}
		parts := strings.Split(s, sep)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	}, "source", "separator")
	reg("text.substring", 3, func(_ Ctx, a []any) (any, error) {
		s, err := str("text.substring", arg(a, 0))
		if err != nil {
			return nil, err
		}
		start, err := integer("text.substring", arg(a, 1))
		if err != nil {
			return nil, err
		}
		end, err := integer("text.substring", arg(a, 2))
		if err != nil {
			return nil, err
		}
		r := []rune(s)
		start = max(0, min(start, int64(len(r))))
		end = max(start, min(end, int64(len(r))))
		return string(r[start:end]), nil
	}, "source", "start", "end")
	reg("text.decode", 1, func(_ Ctx, a []any) (any, error) {
		b, ok := arg(a, 0).(lang.Bytes)
		if !ok {
			return nil, typeErr("text.decode", "bytes", arg(a, 0))
		}
		if !utf8.Valid(b) {
			return nil, lang.Errorf(lang.TagValue, "text.decode: invalid UTF-8")
		}
		return string(b), nil
	}, "data", "charset")
	reg("text.encode", 1, func(_ Ctx, a []any) (any, error) {
		s, err := str("text.encode", arg(a, 0))
		if err != nil {
			return nil, err
		}
		return lang.Bytes(s), nil
	}, "text", "charset")

	// json
	reg("json.decode", 1, func(_ Ctx, a []any) (any, error) {
		var data []byte
		switch v := arg(a, 0).(type) {
		case string:
			data = []byte(v)
		case lang.Bytes:
			data = v
		default:
			return nil, typeErr("json.decode", "string or bytes", v)
		}
		out, err := lang.UnmarshalValue(data)
		if err != nil {
			return nil, lang.Errorf(lang.TagValue, "json.decode: %v", err)
		}
		return out, nil
	}, "data")
	reg("json.encode", 1, func(_ Ctx, a []any) (any, error) {
		return lang.Bytes(encodeJSON(arg(a, 0), arg(a, 1))), nil
	}, "data", "indent")
	reg("json.encode_to_string", 1, func(_ Ctx, a []any) (any, error) {
		return encodeJSON(arg(a, 0), arg(a, 1)), nil
	}, "data", "indent")

	// base64
	reg("base64.encode", 1, func(_ Ctx, a []any) (any, error) {
		var b []byte
		switch v := arg(a, 0).(type) {
		case lang.Bytes:
			b = v
		case string:
			b = []byte(v)
		default:
			return nil, typeErr("base64.encode", "bytes", v)
		}
		if p, ok := arg(a, 1).(bool); ok && !p {
			return base64.RawStdEncoding.EncodeToString(b), nil
		}
		return base64.StdEncoding.EncodeToString(b), nil
	}, "data", "padding")
	reg("base64.decode", 1, func(_ Ctx, a []any) (any, error) {
		s, err := str("base64.decode", arg(a, 0))
		if err != nil {
			return nil, err
		}
		b, derr := base64.StdEncoding.DecodeString(s)
		if derr != nil {
			b, derr = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
		}
		if derr != nil {
			return nil, lang.Errorf(lang.TagValue, "base64.decode: %v", derr)
		}
		return lang.Bytes(b), nil
	}, "data", "padding")

	// math
	reg("math.abs", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case int64:
			if v == math.MinInt64 {
				return nil, lang.Errorf(lang.TagValue, "math.abs: integer overflow")
			}
			if v < 0 {
				return -v, nil
			}
			return v, nil
		case float64:
			return math.Abs(v), nil
		}
		return nil, typeErr("math.abs", "number", arg(a, 0))
	}, "x")
	reg("math.floor", 1, func(_ Ctx, a []any) (any, error) {
		switch v := arg(a, 0).(type) {
		case int64:
			return v, nil
		case float64:
			return int64(math.Floor(v)), nil
		}
		return nil, typeErr("math.floor", "number", arg(a, 0))
	}, "x")
	reg("math.max", 2, minmax("math.max", 1), "x", "y")
	reg("math.min", 2, minmax("math.min", -1), "x", "y")
	reg("math.sqrt", 1, func(_ Ctx, a []any) (any, error) {
		f, err := number("math.sqrt", arg(a, 0))
		if err != nil {
			return nil, err
		}
		if f < 0 {
			return nil, lang.Errorf(lang.TagValue, "math.sqrt: negative argument")
		}
		return math.Sqrt(f), nil
	}, "x")

	// list and map
	reg("list.concat", 2, func(_ Ctx, a []any) (any, error) {
		l, ok := arg(a, 0).([]any)
		if !ok {
			return nil, typeErr("list.concat", "list", arg(a, 0))
		}
		out := make([]any, len(l), len(l)+1)
		copy(out, l)
		return append(out, arg(a, 1)), nil
	}, "objs", "val")
	reg("list.prepend", 2, func(_ Ctx, a []any) (any, error) {
		l, ok := arg(a, 0).([]any)
		if !ok {
			return nil, typeErr("list.prepend", "list", arg(a, 0))
		}
		return append([]any{arg(a, 1)}, l...), nil
	}, "objs", "val")
	reg("map.get", 2, func(_ Ctx, a []any) (any, error) {
		cur := arg(a, 0)
		keys := arg(a, 1)
		path, ok := keys.([]any)
		if !ok {
			path = []any{keys}
		}
		for _, k := range path {
			m, ok := cur.(map[string]any)
			if !ok {
				if cur == nil {
					return nil, nil
				}
				return nil, typeErr("map.get", "map", cur)
			}
			ks, ok := k.(string)
			if !ok {
				return nil, typeErr("map.get", "string key", k)
			}
			cur = m[ks]
		}
		return cur, nil
	}, "map", "keys")
	reg("map.delete", 2, func(_ Ctx, a []any) (any, error) {
		m, ok := arg(a, 0).(map[string]any)
		if !ok {
			return nil, typeErr("map.delete", "map", arg(a, 0))
		}
		k, err := str("map.delete", arg(a, 1))
		if err != nil {
			return nil, err
		}
		out := lang.Copy(m).(map[string]any)
		delete(out, k)
		return out, nil
	}, "map", "key")
	reg("map.merge", 2, func(_ Ctx, a []any) (any, error) {
		return merge("map.merge", arg(a, 0), arg(a, 1), false)
	}, "first", "second")
	reg("map.merge_nested", 2, func(_ Ctx, a []any) (any, error) {
		return merge("map.merge_nested", arg(a, 0), arg(a, 1), true)
	}, "first", "second")

	// time
	reg("time.format", 1, func(_ Ctx, a []any) (any, error) {
		f, err := number("time.format", arg(a, 0))
		if err != nil {
			return nil, err
		}
		loc := time.UTC
		if has(a, 1) {
			name, err := str("time.format", a[1])
			if err != nil {
				return nil, err
			}
			l, lerr := time.LoadLocation(name)
			if lerr != nil {
				return nil, lang.Errorf(lang.TagValue, "time.format: unknown timezone %q", name)
			}
			loc = l
		}
		sec, frac := math.Modf(f)
		t := time.Unix(int64(sec), int64(frac*1e9)).In(loc)
		return t.Format("2006-01-02T15:04:05.000000Z07:00"), nil
	}, "seconds", "timezone")
	reg("time.parse", 1, func(_ Ctx, a []any) (any, error) {
		s, err := str("time.parse", arg(a, 0))
		if err != nil {
			return nil, err
		}
		t, perr := time.Parse(time.RFC3339Nano, s)
		if perr != nil {
			return nil, lang.Errorf(lang.TagValue, "time.parse: %v", perr)
		}
		return float64(t.UnixNano()) / 1e9, nil
	}, "value")

	reg("uuid.generate", 0, func(_ Ctx, _ []any) (any, error) {
		var b [16]byte
		_, _ = rand.Read(b[:])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b[:])
		return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	})

	reg("hash.compute_checksum", 2, func(_ Ctx, a []any) (any, error) {
		data, h, err := hashArgs("hash.compute_checksum", arg(a, 0), arg(a, 1))
		if err != nil {
			return nil, err
		}
		hh := h()
		hh.Write(data)
		return lang.Bytes(hh.Sum(nil)), nil
	}, "data", "algorithm")
	reg("hash.compute_hmac", 3, func(_ Ctx, a []any) (any, error) {
		key, ok := arg(a, 0).(lang.Bytes)
		if !ok {
			if s, isStr := arg(a, 0).(string); isStr {
				key, ok = lang.Bytes(s), true
			}
		}
		if !ok {
			return nil, typeErr("hash.compute_hmac", "bytes key", arg(a, 0))
		}
		data, h, err := hashArgs("hash.compute_hmac", arg(a, 1), arg(a, 2))
		if err != nil {
			return nil, err
		}
		m := hmac.New(h, key)
		m.Write(data)
		return lang.Bytes(m.Sum(nil)), nil
	}, "key", "data", "algorithm")

	reg("retry.always", 1, func(_ Ctx, _ []any) (any, error) { return true, nil }, "e")
	reg("retry.never", 1, func(_ Ctx, _ []any) (any, error) { return false, nil }, "e")
}

func strFn(name string, f func(string) string) Fn {
	return func(_ Ctx, a []any) (any, error) {
		s, err := str(name, arg(a, 0))
		if err != nil {
			return nil, err
		}
		return f(s), nil
	}
}

func strRe(name string, a []any) (string, *regexp.Regexp, error) {
	s, err := str(name, arg(a, 0))
	if err != nil {
		return "", nil, err
	}
	p, err := str(name, arg(a, 1))
	if err != nil {
		return "", nil, err
	}
	re, rerr := regexp.Compile(p)
	if rerr != nil {
		return "", nil, lang.Errorf(lang.TagValue, "%s: bad regexp: %v", name, rerr)
	}
	return s, re, nil
}

func minmax(name string, sign int) Fn {
	return func(_ Ctx, a []any) (any, error) {
		x, y := arg(a, 0), arg(a, 1)
		if _, err := number(name, x); err != nil {
			return nil, err
		}
		if _, err := number(name, y); err != nil {
			return nil, err
		}
		gt, err := lang.Binary(">", x, y)
		if err != nil {
			return nil, err
		}
		if gt.(bool) == (sign > 0) {
			return x, nil
		}
		return y, nil
	}
}

func merge(name string, a, b any, nested bool) (any, error) {
	ma, ok := a.(map[string]any)
	if !ok {
		return nil, typeErr(name, "map", a)
	}
	mb, ok := b.(map[string]any)
	if !ok {
		return nil, typeErr(name, "map", b)
	}
	out := lang.Copy(ma).(map[string]any)
	for k, v := range mb {
		if nested {
			if sub, ok := out[k].(map[string]any); ok {
				if vm, ok := v.(map[string]any); ok {
					m, err := merge(name, sub, vm, true)
					if err != nil {
						return nil, err
					}
					out[k] = m
					continue
				}
			}
		}
		out[k] = lang.Copy(v)
	}
	return out, nil
}

func encodeJSON(v, indent any) string {
	s := string(lang.MarshalValue(v))
	if indent == nil || indent == false {
		return s
	}
	var pre, ind = "", "  "
	if m, ok := indent.(map[string]any); ok {
		if p, ok := m["prefix"].(string); ok {
			pre = p
		}
		if i, ok := m["indent"].(string); ok {
			ind = i
		}
	}
	out, err := indentJSON([]byte(s), pre, ind)
	if err != nil {
		return s
	}
	return string(out)
}

func indentJSON(b []byte, pre, ind string) ([]byte, error) {
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, pre, ind); err != nil {
		return nil, fmt.Errorf("indent: %w", err)
	}
	return buf.Bytes(), nil
}

func hashArgs(name string, data, alg any) ([]byte, func() hash.Hash, error) {
	var b []byte
	switch d := data.(type) {
	case lang.Bytes:
		b = d
	case string:
		b = []byte(d)
	default:
		return nil, nil, typeErr(name, "bytes", data)
	}
	a, err := str(name, alg)
	if err != nil {
		return nil, nil, err
	}
	switch strings.ToUpper(a) {
	case "MD5":
		return b, md5.New, nil
	case "SHA1":
		return b, sha1.New, nil
	case "SHA256":
		return b, sha256.New, nil
	case "SHA384":
		return b, sha512.New384, nil
	case "SHA512":
		return b, sha512.New, nil
	}
	return nil, nil, lang.Errorf(lang.TagValue, "%s: unsupported algorithm %q", name, a)
}
