package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// client calls the gateway's API with a bearer token.
type client struct {
	base  string
	token string
	http  *http.Client
}

// maxAnswer bounds what is read of one answer: the API's pages are far smaller.
const maxAnswer = 32 << 20

// do sends body (JSON, or nothing when nil) and returns a 2xx answer's body and status. An
// answer other than 2xx is an *APIError carrying the API's message; no answer is an
// *unreachableError.
func (c *client) do(ctx context.Context, method, path string, header http.Header, body []byte) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, 0, inputf("%s %s: %w", method, c.base+path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, 0, ctx.Err()
		}
		return nil, 0, &unreachableError{fmt.Errorf("%s %s: %w", method, req.URL.Redacted(), err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, resp.StatusCode, &unreachableError{fmt.Errorf("%s %s: read answer: %w", method, req.URL.Redacted(), err)}
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, apiErrorOf(resp, b)
	}
	return b, resp.StatusCode, nil
}

// apiErrorOf reads the API's {"error": {"code", "message"}}; another body (a proxy's page)
// is shown as it is.
func apiErrorOf(resp *http.Response, b []byte) *APIError {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(b, &e) == nil {
		msg = e.Error.Message
	}
	if msg == "" {
		msg = string(bytes.TrimSpace(b))
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		msg += "; retry after " + ra + " s"
	}
	return &APIError{Status: resp.StatusCode, Message: msg, Body: b}
}

// getJSON GETs path and decodes the answer into out, returning the raw body too.
func (c *client) getJSON(ctx context.Context, path string, out any) ([]byte, error) {
	b, _, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	return b, decodeAnswer(http.MethodGet, path, b, out)
}

// postJSON POSTs in as JSON and decodes the answer into out, returning the raw body and
// status.
func (c *client) postJSON(ctx context.Context, path string, header http.Header, in, out any) ([]byte, int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, 0, fmt.Errorf("encode %s: %w", path, err)
	}
	b, code, err := c.do(ctx, http.MethodPost, path, header, body)
	if err != nil {
		return nil, code, err
	}
	return b, code, decodeAnswer(http.MethodPost, path, b, out)
}

// decodeAnswer decodes a 2xx body; one that is not JSON did not come from the API.
func decodeAnswer(method, path string, b []byte, out any) error {
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &unreachableError{fmt.Errorf("%s %s: the answer is not the API's: %w", method, path, err)}
	}
	return nil
}
