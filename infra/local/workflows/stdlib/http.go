package stdlib

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

func init() {
	for _, m := range []string{"get", "delete"} {
		method := strings.ToUpper(m)
		reg("http."+m, 1, func(c Ctx, a []any) (any, error) {
			return doHTTPAuth(c, method, arg(a, 0), arg(a, 1), nil, arg(a, 2), arg(a, 3), arg(a, 4))
		}, "url", "timeout", "headers", "query", "auth", "private_service_name")
	}
	for _, m := range []string{"post", "put", "patch"} {
		method := strings.ToUpper(m)
		reg("http."+m, 1, func(c Ctx, a []any) (any, error) {
			return doHTTPAuth(c, method, arg(a, 0), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5))
		}, "url", "timeout", "body", "headers", "query", "auth", "private_service_name")
	}
	reg("http.request", 2, func(c Ctx, a []any) (any, error) {
		m, err := str("http.request", arg(a, 0))
		if err != nil {
			return nil, err
		}
		return doHTTPAuth(c, strings.ToUpper(m), arg(a, 1), arg(a, 2), arg(a, 3), arg(a, 4), arg(a, 5), arg(a, 6))
	}, "method", "url", "timeout", "body", "headers", "query", "auth", "private_service_name")
	reg("http.default_retry_predicate", 1, func(_ Ctx, a []any) (any, error) {
		return retryable(arg(a, 0), true), nil
	}, "e")
	reg("http.default_retry_predicate_non_idempotent", 1, func(_ Ctx, a []any) (any, error) {
		return retryable(arg(a, 0), false), nil
	}, "e")
}

// doHTTPAuth adds the bearer token the host gives for an auth argument
// ({type: OIDC, audience} or {type: OAuth2, scopes}) to the headers.
func doHTTPAuth(c Ctx, method string, rawURL, timeout, body, headers, query, auth any) (any, error) {
	am, ok := auth.(map[string]any)
	if !ok {
		return doHTTP(c, method, rawURL, timeout, body, headers, query)
	}
	kind, _ := am["type"].(string)
	if kind != "OIDC" && kind != "OAuth2" {
		return nil, lang.Errorf(lang.TagValue, "http: auth type must be OIDC or OAuth2, got %q", kind)
	}
	audience, _ := am["audience"].(string)
	if audience == "" {
		audience, _ = rawURL.(string)
		if i := strings.IndexAny(audience, "?#"); i >= 0 {
			audience = audience[:i]
		}
	}
	tok, err := c.Token(kind, audience)
	if err != nil {
		return nil, lang.Errorf(lang.TagAuth, "http: %s token: %v", kind, err)
	}
	if tok == "" {
		return doHTTP(c, method, rawURL, timeout, body, headers, query)
	}
	h := map[string]any{}
	if hm, ok := headers.(map[string]any); ok {
		for k, v := range hm {
			h[k] = v
		}
	}
	h["Authorization"] = "Bearer " + tok
	return doHTTP(c, method, rawURL, timeout, body, h, query)
}

// retryable is Google's default predicate: 429, 502, 503, 504 and
// connection or timeout errors; the non-idempotent one only 429 and 503.
func retryable(e any, idempotent bool) bool {
	m, ok := e.(map[string]any)
	if !ok {
		return false
	}
	if code, ok := m["code"].(int64); ok {
		switch code {
		case 429, 503:
			return true
		case 502, 504:
			return idempotent
		}
	}
	le := &lang.Error{Value: e}
	return le.HasTag(lang.TagConnection) || le.HasTag(lang.TagConnFailed) || (idempotent && le.HasTag(lang.TagTimeout))
}

func doHTTP(c Ctx, method string, rawURL, timeout, body, headers, query any) (any, error) {
	u, err := str("http."+strings.ToLower(method), rawURL)
	if err != nil {
		return nil, err
	}
	pu, perr := url.Parse(u)
	if perr != nil || pu.Scheme == "" || pu.Host == "" {
		return nil, lang.Errorf(lang.TagValue, "http: invalid url %q", u)
	}
	if qm, ok := query.(map[string]any); ok {
		q := pu.Query()
		for k, v := range qm {
			if l, ok := v.([]any); ok {
				for _, e := range l {
					q.Add(k, scalarString(e))
				}
				continue
			}
			q.Set(k, scalarString(v))
		}
		pu.RawQuery = q.Encode()
	}
	var rd io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
		contentType = "text/plain; charset=utf-8"
	case lang.Bytes:
		rd = bytes.NewReader(b)
		contentType = "application/octet-stream"
	default:
		rd = bytes.NewReader(lang.MarshalValue(b))
		contentType = "application/json"
	}
	d := 300 * time.Second
	if f, ok := timeout.(int64); ok {
		d = time.Duration(f) * time.Second
	} else if f, ok := timeout.(float64); ok {
		d = time.Duration(f * float64(time.Second))
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, rerr := http.NewRequestWithContext(ctx, method, pu.String(), rd)
	if rerr != nil {
		return nil, lang.Errorf(lang.TagValue, "http: %v", rerr)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if hm, ok := headers.(map[string]any); ok {
		for k, v := range hm {
			req.Header.Set(k, scalarString(v))
		}
	}
	resp, derr := c.HTTPClient().Do(req)
	if derr != nil {
		var ne net.Error
		if errors.As(derr, &ne) && ne.Timeout() {
			return nil, lang.Errorf(lang.TagTimeout, "http: request timed out: %v", derr)
		}
		return nil, &lang.Error{Value: map[string]any{
			"message": fmt.Sprintf("http: connection failed: %v", derr),
			"tags":    []any{lang.TagConnFailed, lang.TagConnection},
		}}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<20))
	hdrs := map[string]any{}
	for k, v := range resp.Header {
		hdrs[k] = strings.Join(v, ", ")
	}
	var out any = string(raw)
	if strings.Contains(resp.Header.Get("Content-Type"), "json") && len(raw) > 0 {
		if v, jerr := lang.UnmarshalValue(raw); jerr == nil {
			out = v
		}
	}
	res := map[string]any{"body": out, "code": int64(resp.StatusCode), "headers": hdrs}
	if resp.StatusCode >= 400 {
		res["message"] = fmt.Sprintf("HTTP server responded with error code %d", resp.StatusCode)
		res["tags"] = []any{lang.TagHTTP}
		return nil, &lang.Error{Value: res}
	}
	return res, nil
}

func scalarString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return lang.Repr(v)
}
