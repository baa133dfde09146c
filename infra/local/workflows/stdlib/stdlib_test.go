package stdlib

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/workflows/lang"
)

type ctx struct{ cbs []string }

func (c *ctx) Now() time.Time                 { return time.Unix(100, 500000000) }
func (c *ctx) Getenv(n string) (string, bool) { return "v-" + n, n == "K" }
func (c *ctx) NewCallback(m string) (string, error) {
	c.cbs = append(c.cbs, m)
	return "http://e/callbacks/1", nil
}
func (c *ctx) Log(string, any)                        {}
func (c *ctx) HTTPClient() *http.Client               { return http.DefaultClient }
func (c *ctx) Token(kind, aud string) (string, error) { return kind + ":" + aud, nil }

func call(t *testing.T, name string, args ...any) (any, error) {
	t.Helper()
	f, ok := Lookup(name)
	if !ok {
		t.Fatalf("no function %s", name)
	}
	return f.Fn(&ctx{}, args)
}

func TestFunctions(t *testing.T) {
	cases := []struct {
		fn   string
		args []any
		want string // Repr, or !Tag
	}{
		{"sys.now", nil, `100.5`},
		{"sys.get_env", []any{"K"}, `"v-K"`},
		{"sys.get_env", []any{"missing", "dflt"}, `"dflt"`},
		{"int", []any{"-12"}, `-12`},
		{"int", []any{"x"}, `!ValueError`},
		{"int", []any{[]any{}}, `!TypeError`},
		{"double", []any{int64(2)}, `2.0`},
		{"string", []any{1.5}, `"1.5"`},
		{"bool", []any{"false"}, `false`},
		{"len", []any{map[string]any{"a": int64(1)}}, `1`},
		{"len", []any{int64(1)}, `!TypeError`},
		{"keys", []any{map[string]any{"b": 1, "a": 2}}, `["a","b"]`},
		{"default", []any{nil, "x"}, `"x"`},
		{"text.find_all_regex", []any{"a1b22", "[0-9]+"}, `[{"index":1,"match":"1"},{"index":3,"match":"22"}]`},
		{"text.replace_all_regex", []any{"ab-cd", "(\\w+)-(\\w+)", "\\2-\\1"}, `"cd-ab"`},
		{"text.url_decode", []any{"a%20b"}, `"a b"`},
		{"json.decode", []any{"[1, 2.0]"}, `[1,2.0]`},
		{"json.decode", []any{"{"}, `!ValueError`},
		{"base64.decode", []any{"!!"}, `!ValueError`},
		{"math.floor", []any{-1.5}, `-2`},
		{"math.max", []any{int64(1), "a"}, `!TypeError`},
		{"map.get", []any{map[string]any{"a": nil}, []any{"a", "b"}}, `null`},
		{"time.format", []any{int64(86400), "UTC"}, `"1970-01-02T00:00:00.000000Z"`},
		{"time.parse", []any{"nope"}, `!ValueError`},
		{"hash.compute_hmac", []any{lang.Bytes("k"), lang.Bytes("d"), "SHA1"}, ``},
		{"events.create_callback_endpoint", []any{"GET"}, `{"url":"http://e/callbacks/1"}`},
		{"events.create_callback_endpoint", []any{"TRACE"}, `!ValueError`},
		{"http.default_retry_predicate", []any{map[string]any{"code": int64(503)}}, `true`},
		{"http.default_retry_predicate", []any{map[string]any{"code": int64(500)}}, `false`},
		{"http.default_retry_predicate_non_idempotent", []any{map[string]any{"code": int64(502)}}, `false`},
		{"http.get", []any{"not a url"}, `!ValueError`},
		{"http.get", []any{"http://127.0.0.1:1/closed"}, `!ConnectionError`},
	}
	for _, c := range cases {
		t.Run(c.fn, func(t *testing.T) {
			v, err := call(t, c.fn, c.args...)
			if strings.HasPrefix(c.want, "!") {
				le, ok := err.(*lang.Error)
				if !ok || !le.HasTag(c.want[1:]) {
					t.Fatalf("want %s, got %v %v", c.want[1:], v, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.want != "" && lang.Repr(v) != c.want {
				t.Fatalf("got %s, want %s", lang.Repr(v), c.want)
			}
		})
	}
}

func TestBlockingFunctionsAreDeclared(t *testing.T) {
	for _, n := range []string{"sys.sleep", "sys.sleep_until", "events.await_callback"} {
		f, ok := Lookup(n)
		if !ok || !f.Blocking || f.Fn != nil {
			t.Fatalf("%s: want a blocking declaration the engine implements, got %+v", n, f)
		}
	}
	if _, _, _, ok := (Signatures{}).Signature("nope.nope"); ok {
		t.Fatal("unknown function resolved")
	}
}

func TestPubSubConnector(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = r.URL.Path + " " + string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"messageIds":["1"]}`))
	}))
	defer srv.Close()
	t.Setenv("PUBSUB_EMULATOR_HOST", strings.TrimPrefix(srv.URL, "http://"))
	v, err := call(t, "googleapis.pubsub.v1.projects.topics.publish", "projects/p/topics/audit_events",
		map[string]any{"messages": []any{map[string]any{"data": "eA=="}}})
	if err != nil {
		t.Fatal(err)
	}
	if lang.Repr(v) != `{"messageIds":["1"]}` || got != `/v1/projects/p/topics/audit_events:publish {"messages":[{"data":"eA=="}]}` {
		t.Fatalf("got %s, request %q", lang.Repr(v), got)
	}
}

func TestHTTPAuthToken(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer srv.Close()
	if _, err := call(t, "http.get", srv.URL+"/f?x=1", nil, nil, nil, map[string]any{"type": "OIDC"}); err != nil {
		t.Fatal(err)
	}
	if got != "Bearer OIDC:"+srv.URL+"/f" {
		t.Fatalf("Authorization %q", got)
	}
	if _, err := call(t, "http.get", srv.URL, nil, nil, nil, map[string]any{"type": "Basic"}); err == nil {
		t.Fatal("unknown auth type accepted")
	}
}

// logCtx records what sys.log writes.
type logCtx struct {
	ctx
	sev string
	v   any
}

func (c *logCtx) Log(sev string, v any) { c.sev, c.v = sev, v }

// TestSysLog follows https://cloud.google.com/workflows/docs/reference/stdlib/sys/log:
// positional order data, severity, text, json; exactly one payload.
func TestSysLog(t *testing.T) {
	m := map[string]any{"request_id": "r1"}
	cases := []struct {
		name    string
		args    []any
		wantSev string
		want    string // Repr of the logged value, or !Tag
	}{
		{"data", []any{"hi"}, "DEFAULT", `"hi"`},
		{"data and severity", []any{"hi", "ERROR"}, "ERROR", `"hi"`},
		{"text", []any{nil, "INFO", "t"}, "INFO", `"t"`},
		{"json", []any{nil, nil, nil, m}, "DEFAULT", `{"request_id":"r1"}`},
		{"json not a map", []any{nil, nil, nil, "x"}, "", `!TypeError`},
		{"two payloads", []any{"a", nil, "b"}, "", `!TypeError`},
		{"no payload", []any{nil, "INFO"}, "", `!TypeError`},
	}
	f, _ := Lookup("sys.log")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &logCtx{}
			_, err := f.Fn(c, tc.args)
			if strings.HasPrefix(tc.want, "!") {
				var le *lang.Error
				if !errors.As(err, &le) || !le.HasTag(tc.want[1:]) {
					t.Fatalf("err = %v, want tag %s", err, tc.want[1:])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.sev != tc.wantSev || lang.Repr(c.v) != tc.want {
				t.Fatalf("logged %s %s, want %s %s", c.sev, lang.Repr(c.v), tc.wantSev, tc.want)
			}
		})
	}
}
