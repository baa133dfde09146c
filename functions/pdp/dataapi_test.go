package pdp_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"waooaw.dev/governance/policies"
)

// documentPaths lists, from the compiled policies, every package and every
// rule as a data API path, with their parents up to data itself: a new rule
// or bundle is covered without touching the test.
func documentPaths(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]*ast.Module{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.rego") {
			continue
		}
		src, err := fs.ReadFile(policies.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		if modules[n], err = ast.ParseModuleWithOpts(n, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
			t.Fatal(err)
		}
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(modules); c.Failed() {
		t.Fatal(c.Errors)
	}
	seen := map[string]bool{"/v1/data": true, "/v1/data/platform": true}
	// add lists ref's fixed part (up to a variable key) and its parents.
	add := func(ref ast.Ref) {
		fixed := 1
		for fixed < len(ref) && ref[fixed].IsGround() {
			fixed++
		}
		for i := fixed; i > 0; i-- {
			p := "/v1/data"
			for _, term := range ref[1:i] {
				switch v := term.Value.(type) {
				case ast.String:
					p += "/" + string(v)
				default:
					t.Fatalf("rule path %v: %v is not a name", ref, term)
				}
			}
			seen[p] = true
		}
	}
	for _, m := range c.Modules {
		add(m.Package.Path)
		for _, r := range m.Rules {
			add(m.Package.Path.Extend(r.Head.Ref()))
		}
	}
	// Rules inside rules (decision.allow) and names nothing defines.
	for _, b := range policies.Bundles {
		seen["/v1/data/waooaw/"+b+"/decision/allow"] = true
		seen["/v1/data/waooaw/"+b+"/decision/reasons/0"] = true
		seen["/v1/data/waooaw/"+b+"/no_such_rule"] = true
	}
	for _, p := range []string{"/v1/data/waooaw/payroll", "/v1/data/waooaw/payroll/decision", "/v1/data/system/main", "/v1/data/platform/roles", "/v1/data/platform/roles/admin"} {
		seen[p] = true
	}
	return slices.Sorted(func(yield func(string) bool) {
		for p := range seen {
			if !yield(p) {
				return
			}
		}
	})
}

// exchange is one request and what a server answered.
type exchange struct {
	method, path, body string
	header             map[string]string
}

type answer struct {
	status      int
	contentType string
	body        string
}

// decisionIDField is the decision_id member of an answer, which the pdp
// always gives (the id of its attestation) and `opa run` without decision
// logs never does.
var (
	decisionIDField = regexp.MustCompile(`"decision_id": ?"([^"]*)",?\s*`)
	emptyObject     = regexp.MustCompile(`^\{\s*\}\n$`)
)

// noRedirect shows redirects as they are answered, each request on its own
// connection so that an odd method cannot leave one in a state the next
// request trips on.
var noRedirect = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (x exchange) send(t *testing.T, base string) (answer, string) {
	t.Helper()
	req, err := http.NewRequest(x.method, base+x.path, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range x.header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatalf("%s %s %q: %v", x.method, x.path, x.body, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	id := ""
	if m := decisionIDField.FindSubmatch(raw); m != nil {
		id = string(m[1])
	}
	body := decisionIDField.ReplaceAllString(string(raw), "")
	body = emptyObject.ReplaceAllString(body, "{}\n")
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), body}, id
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.String()
}

// TestDataAPIEqualsOPAServer asks the pdp and `opa run --server` the same
// requests, every document path of the compiled policies by GET and POST,
// with and without input, pretty or not, and the error cases, and wants
// the same status, content type and body, decision ids aside.
func TestDataAPIEqualsOPAServer(t *testing.T) {
	opaURL, pdpURL := startOPAProcess(t).url, startPDP(t)
	ps := probes(3 * len(policies.Bundles))
	var inputs []string
	for _, p := range ps {
		var req struct {
			Input json.RawMessage `json:"input"`
		}
		if err := json.Unmarshal(p.body, &req); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(req.Input))
	}
	var xs []exchange
	for i, path := range documentPaths(t) {
		in := inputs[i%len(inputs)]
		xs = append(xs,
			exchange{method: "POST", path: path, body: `{"input": ` + in + `}`},
			exchange{method: "POST", path: path + "?pretty=true", body: `{"input": ` + in + `}`},
			exchange{method: "POST", path: path, body: `{}`},
			exchange{method: "GET", path: path},
			exchange{method: "GET", path: path + "?input=" + url.QueryEscape(in)},
			exchange{method: "GET", path: path + "?pretty&input=" + url.QueryEscape(in)},
		)
	}
	rbac := "/v1/data/waooaw/rbac/decision"
	viewer := `{"subject": {"id": "u1", "role": "viewer"}, "action": "approve"}`
	xs = append(xs,
		exchange{method: "POST", path: rbac, body: `{"input": {`},
		exchange{method: "POST", path: rbac, body: `[1]`},
		exchange{method: "POST", path: rbac, body: `null`},
		exchange{method: "POST", path: rbac, body: ``},
		exchange{method: "POST", path: rbac, body: `{"input": null}`},
		exchange{method: "POST", path: rbac, body: `{"input": ` + viewer + `} {}`},
		exchange{method: "POST", path: rbac, body: `{"input": ` + viewer + `, "extra": 1}`},
		exchange{method: "POST", path: rbac + "?pretty=false", body: `{"input": ` + viewer + `}`},
		exchange{method: "POST", path: rbac + "?pretty=TRUE", body: `{"input": ` + viewer + `}`},
		exchange{method: "POST", path: rbac, body: gzipped(`{"input": ` + viewer + `}`), header: map[string]string{"Content-Encoding": "gzip"}},
		exchange{method: "POST", path: "/v1/data/waooaw/rbac/%22x%22", body: `{"input": {}}`},
		exchange{method: "POST", path: "/v1/data/waooaw/rb%61c/allow", body: `{"input": ` + viewer + `}`},
		exchange{method: "POST", path: "/v1/data/waooaw//rbac/allow", body: `{"input": ` + viewer + `}`},
		exchange{method: "POST", path: "/v1/data/", body: `{"input": {}}`},
		exchange{method: "GET", path: rbac + "?input=" + url.QueryEscape(`{"subject":`)},
		exchange{method: "GET", path: rbac + "?input="},
		exchange{method: "GET", path: rbac + "?input=" + url.QueryEscape(`{} {}`)},
		exchange{method: "GET", path: rbac + "?input=1&input=" + url.QueryEscape(viewer)},
		exchange{method: "POST", path: "/v1/data/waooaw/rbac/?pretty", body: `{"input": {}}`},
		exchange{method: "HEAD", path: rbac},
		exchange{method: "OPTIONS", path: rbac},
		exchange{method: "GET", path: "/health"},
		exchange{method: "POST", path: "/health"},
		exchange{method: "GET", path: "/v1/nothing"},
		exchange{method: "GET", path: "/v1/data/../health"},
	)
	for _, x := range xs {
		want, _ := x.send(t, opaURL)
		got, id := x.send(t, pdpURL)
		if got != want {
			t.Errorf("%s %s %.80q\n pdp: %d %s %.300s\n opa: %d %s %.300s", x.method, x.path, x.body,
				got.status, got.contentType, got.body, want.status, want.contentType, want.body)
			continue
		}
		if got.status == http.StatusOK && strings.HasPrefix(x.path, "/v1/data") && id == "" {
			t.Errorf("%s %s: pdp answered without a decision_id: %s", x.method, x.path, got.body)
		}
	}
	t.Logf("%d exchanges over %d document paths", len(xs), len(documentPaths(t)))
}
