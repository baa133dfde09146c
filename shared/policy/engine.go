// Package policy is the in-process policy enforcement point: it compiles the
// embedded Rego bundles (waooaw.dev/governance/policies) once, prepares each
// query once, and evaluates per request. Every decision, cached or not, gets
// its own decision_id and is attested off the request path through an
// Attester.
package policy

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"waooaw.dev/governance/policies"
	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/policy/planeval"
	"waooaw.dev/governance/shared/rules"
)

// Sentinel errors, for errors.Is.
var (
	ErrUnknownBundle = errors.New("unknown policy bundle")
	ErrUnknownRule   = errors.New("unknown policy rule")
	ErrBadInput      = errors.New("bad policy input")
)

// Rules every bundle exposes: decision (object) and allow (boolean).
const (
	RuleDecision = "decision"
	RuleAllow    = "allow"
)

// Outcomes of a decision.
const (
	Allow                = "allow"
	Deny                 = "deny"
	AllowWithObligations = "allow_with_obligations"
)

// DataRoot is where the platform's data document is mounted: data.platform.
const DataRoot = "platform"

// Meta says who enforces a decision and for which business flow.
type Meta struct {
	// EnforcementPoint names the function that enforces the decision ("gateway", "pdp");
	// the attestation carries it.
	EnforcementPoint string
	CorrelationID    string
}

// Decision is the answer to one request. Obligations and Reasons may be
// shared with the cache: read them, do not modify them.
type Decision struct {
	Allow       bool          `json:"allow"`
	Outcome     string        `json:"decision"` // allow | deny | allow_with_obligations
	Obligations []string      `json:"obligations"`
	Reasons     []string      `json:"reasons"`
	DecisionID  string        `json:"decision_id"`
	Bundle      string        `json:"bundle"`
	Rule        string        `json:"rule"`
	Revision    string        `json:"revision"`
	TTL         time.Duration `json:"ttl"`
	Cached      bool          `json:"cached"`
	InputSHA256 string        `json:"input_sha256"`
}

// Answer is a decision together with the rule's result as OPA's data API
// returns it: the decision object, or the allow boolean.
type Answer struct {
	Decision
	Result any
}

type config struct {
	policyFS fs.FS
	data     map[string]any
	attester *Attester
	cacheMax int
	now      func() time.Time
}

// Option configures New.
type Option func(*config)

// WithData sets top-level keys of data.platform, replacing those from
// data/platform.json and the rules tables: "engagements" ({"<id>":
// {"governor": "<user id>"}}), "roles" ({"<role>": level}), and so on.
func WithData(d map[string]any) Option {
	return func(c *config) { maps.Copy(c.data, d) }
}

// WithPolicies loads *.rego (not *_test.rego) and data/platform.json from
// fsys instead of the embedded bundle.
func WithPolicies(fsys fs.FS) Option { return func(c *config) { c.policyFS = fsys } }

// WithAttester sends every decision's attestation to a. Without it decisions
// are not attested, which only tests and tools should accept.
func WithAttester(a *Attester) Option { return func(c *config) { c.attester = a } }

// WithCacheSize bounds the decision cache (entries); 0 disables it.
// The default is DefaultCacheSize.
func WithCacheSize(n int) Option { return func(c *config) { c.cacheMax = n } }

// withClock replaces time.Now, for TTL tests.
func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// DefaultCacheSize bounds the decision cache unless WithCacheSize says otherwise.
const DefaultCacheSize = 10000

// Engine evaluates planned policy documents. It is safe for concurrent use.
type Engine struct {
	queries  map[string]*bundleQueries // fixed after New
	data     atomic.Pointer[ast.Term]  // {"platform": ...}, replaced whole by PutData
	dataMu   sync.Mutex                // serialises PutData
	revision atomic.Pointer[revisionGen]
	gens     atomic.Uint64
	ttl      atomic.Int64 // data.platform.decision_ttl_seconds, as a time.Duration
	cache    *cache
	attester *Attester
	now      func() time.Time
	ids      *idSource
	compiler *ast.Compiler // fixed after New; shared with the plans
	docs     documents
}

// New compiles the bundles; each bundle's documents are planned on its first
// decision. A policy that does not compile fails here with file:line.
func New(opts ...Option) (*Engine, error) {
	c := &config{policyFS: policies.FS, data: map[string]any{}, cacheMax: DefaultCacheSize, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	ruleSet, err := rules.Load(tables.FS)
	if err != nil {
		return nil, fmt.Errorf("policy: load rules tables: %w", err)
	}

	modules, sources, err := loadModules(c.policyFS)
	if err != nil {
		return nil, err
	}
	data, err := PlatformData(c.policyFS, ruleSet, c.data)
	if err != nil {
		return nil, err
	}
	// OPA's compiler first: its errors name file:line in the policies.
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	queries := map[string]*bundleQueries{}
	for i, b := range policies.Bundles {
		for _, doc := range bundleDocs {
			if len(compiler.GetRules(docRef(b, doc))) == 0 {
				return nil, fmt.Errorf("policy: bundle %s has no rule %s: %w", b, doc, ErrUnknownRule)
			}
		}
		queries[b] = &bundleQueries{name: b, index: uint64(i), compiler: compiler}
	}
	dataValue, err := ast.InterfaceToValue(map[string]any{DataRoot: data})
	if err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}

	e := &Engine{
		queries:  queries,
		cache:    newCache(c.cacheMax),
		attester: c.attester,
		now:      c.now,
		ids:      newIDSource(randomPrefix()),
		compiler: compiler,
	}
	e.data.Store(ast.NewTerm(dataValue))
	e.setTTL(data["decision_ttl_seconds"])
	rev, err := revision(sources, data)
	if err != nil {
		return nil, err
	}
	e.setRevision(rev)
	return e, nil
}

func loadModules(fsys fs.FS) (map[string]*ast.Module, map[string][]byte, error) {
	names, err := fs.Glob(fsys, "*.rego")
	if err != nil {
		return nil, nil, fmt.Errorf("policy: list policies: %w", err)
	}
	modules, sources := map[string]*ast.Module{}, map[string][]byte{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, nil, fmt.Errorf("policy: read %s: %w", name, err)
		}
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, nil, fmt.Errorf("policy: parse: %w", err)
		}
		modules[name], sources[name] = m, src
	}
	if len(modules) == 0 {
		return nil, nil, fmt.Errorf("policy: no *.rego policies found")
	}
	return modules, sources, nil
}

// PlatformData is data.platform as the engine mounts it: data/platform.json,
// then the rules tables' trial limits and budget thresholds, then overrides.
// The pdp-vs-opa test feeds the same document to `opa run`.
func PlatformData(policyFS fs.FS, s *rules.Set, overrides map[string]any) (map[string]any, error) {
	raw, err := fs.ReadFile(policyFS, policies.DataFile)
	if err != nil {
		return nil, fmt.Errorf("policy: read data: %w", err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, fmt.Errorf("policy: %s: %w", policies.DataFile, err)
	}
	fromRules, err := s.PolicyData()
	if err != nil {
		return nil, fmt.Errorf("policy: data from rules: %w", err)
	}
	maps.Copy(data, fromRules)
	maps.Copy(data, overrides)
	// One JSON round trip normalises numbers (int vs float64) so the store,
	// the revision hash and `opa run` all see the same document.
	norm, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("policy: data is not JSON: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(norm, &out); err != nil {
		return nil, fmt.Errorf("policy: data: %w", err)
	}
	return out, nil
}

// revision is a content hash of the policies and data, so any change to
// either yields a new revision and a fresh cache.
func revision(sources map[string][]byte, data map[string]any) (string, error) {
	h := sha256.New()
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(sources[n]))
		h.Write(sources[n])
	}
	d, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("policy: revision: %w", err)
	}
	h.Write(d)
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

func randomPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// setTTL keeps the decision ttl the fold applies in step with the data the
// Rego decision rule reads.
func (e *Engine) setTTL(v any) {
	if secs, ok := v.(float64); ok {
		e.ttl.Store(int64(secs * float64(time.Second)))
	}
}

// revisionName identifies the policies and data the engine decides with.
func (e *Engine) revisionName() string { return e.revision.Load().name }

// revisionGen pairs a revision with a number unique to this engine, so the
// cache key compares an integer instead of the revision string.
type revisionGen struct {
	name string
	gen  uint64
}

func (e *Engine) setRevision(name string) {
	e.revision.Store(&revisionGen{name: name, gen: e.gens.Add(1)})
}

// PutData replaces data.platform[key] (for example "engagements" when a
// Governor is assigned) and moves the revision, so no cached decision made
// with the old data is served again. Value must marshal to JSON.
func (e *Engine) PutData(ctx context.Context, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("policy: put data %s: %w", key, err)
	}
	var norm any
	if err := json.Unmarshal(raw, &norm); err != nil {
		return fmt.Errorf("policy: put data %s: %w", key, err)
	}
	v, err := ast.InterfaceToValue(norm)
	if err != nil {
		return fmt.Errorf("policy: put data %s: %w", key, err)
	}
	e.swapData(key, ast.NewTerm(v))
	if key == "decision_ttl_seconds" {
		e.setTTL(norm)
	}
	sum := sha256.Sum256(append([]byte(e.revisionName()+"\x00"+key+"\x00"), raw...))
	rev := "sha256:" + hex.EncodeToString(sum[:])[:16]
	e.setRevision(rev)
	return nil
}

// Decide evaluates data.waooaw.<bundle>.<rule> (rule "decision" or "allow")
// for input and attests the decision. Input must be JSON-shaped (maps,
// slices, strings, numbers, bools) or marshal to JSON; a request that asks
// several bundles passes one *Input (NewInput) so the input is hashed and
// converted once.
func (e *Engine) Decide(ctx context.Context, bundle, rule string, input any, meta Meta) (Decision, error) {
	in, err := asInput(input)
	if err != nil {
		return Decision{}, err
	}
	return e.decide(ctx, bundle, rule, in, meta)
}

// decideInput is Decide for an Input the caller holds; unlike an Input
// passed to Decide, one on the caller's stack stays there.
func (e *Engine) decideInput(ctx context.Context, bundle, rule string, in *Input, meta Meta) (Decision, error) {
	return e.decide(ctx, bundle, rule, in, meta)
}

func asInput(input any) (*Input, error) {
	if in, ok := input.(*Input); ok {
		return in, nil
	}
	return NewInput(input)
}

// Query is Decide returning the rule's raw result as well, for the
// OPA-compatible data API.
func (e *Engine) Query(ctx context.Context, bundle, rule string, input any, meta Meta) (Answer, error) {
	in, err := asInput(input)
	if err != nil {
		return Answer{}, err
	}
	d, err := e.decide(ctx, bundle, rule, in, meta)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Decision: d}
	if rule == RuleAllow {
		a.Result = d.Allow
	} else {
		a.Result = d.object()
	}
	return a, nil
}

func (e *Engine) decide(ctx context.Context, bundle, rule string, in *Input, meta Meta) (Decision, error) {
	if _, ok := e.queries[bundle]; !ok {
		return Decision{}, fmt.Errorf("policy: %q: %w", bundle, ErrUnknownBundle)
	}
	if rule != RuleDecision && rule != RuleAllow {
		return Decision{}, fmt.Errorf("policy: %s/%s: %w", bundle, rule, ErrUnknownRule)
	}
	return e.attested(ctx, bundle, rule, in, meta)
}

// attested is the bundle's decision about in, attested as an answer of
// rule: decision and allow, or any other document of the bundle the data
// API answered (see Document).
func (e *Engine) attested(ctx context.Context, bundle, rule string, in *Input, meta Meta) (Decision, error) {
	pq, ok := e.queries[bundle]
	if !ok {
		return Decision{}, fmt.Errorf("policy: %q: %w", bundle, ErrUnknownBundle)
	}
	sum := in.sum
	rev := e.revision.Load()
	now := e.now()
	// The cache holds the bundle's decision; decision and allow both read it.
	key := cacheKey{gen: rev.gen, bundle: pq.index, sum: sum}
	var d Decision
	hit := false
	if in.exact {
		d, hit = e.cache.get(key, now)
	}
	if hit {
		d.Cached = true
	} else {
		var err error
		d, err = e.eval(ctx, pq, in, now)
		if err != nil {
			return Decision{}, fmt.Errorf("policy: evaluate %s: %w", bundle, err)
		}
		d.Bundle, d.Revision = bundle, rev.name
		d.InputSHA256 = hex.EncodeToString(sum[:])
		if d.TTL > 0 && in.exact {
			e.cache.put(key, d, now.Add(d.TTL))
		}
	}
	d.Rule = rule
	d.DecisionID = e.ids.id()
	if e.attester != nil {
		if err := e.attester.Submit(ctx, d.attestation(meta, now)); err != nil {
			// An unattested decision is not handed out: every decision is recorded.
			return Decision{}, fmt.Errorf("policy: attest %s: %w", d.DecisionID, err)
		}
	}
	return d, nil
}

// Input is a decision input hashed once, and converted for OPA once, for
// the several decisions of one request. It must not change after Set, and
// serves one goroutine at a time: the decisions of one request.
type Input struct {
	raw any
	sum [32]byte
	// exact is false when the hash rounded a number (see inputSum): the cache is then
	// not used, as its key could not tell this input from its rounded twin.
	exact bool
	// The conversion lives apart, so that an Input served from the cache is
	// one small allocation, or none when the caller keeps it on its stack.
	conv *inputValue
}

type inputValue struct {
	term *ast.Term
	err  error
}

// NewInput hashes input (see InputSHA256); the OPA conversion waits for the
// first cache miss.
func NewInput(input any) (*Input, error) {
	in := new(Input)
	if err := in.set(input); err != nil {
		return nil, err
	}
	return in, nil
}

// set makes in the input given, as NewInput does. An Input the caller keeps
// on its stack costs a decision served from the cache no allocation; set it
// again only once no decision is using it.
func (in *Input) set(input any) error {
	sum, exact, err := inputSum(input)
	if err != nil {
		return fmt.Errorf("policy: hash input: %w: %w", ErrBadInput, err)
	}
	in.raw, in.sum, in.exact, in.conv = input, sum, exact, nil
	return nil
}

// astTerm converts the input on first use.
func (in *Input) astTerm() (*ast.Term, error) {
	if c := in.conv; c != nil {
		return c.term, c.err
	}
	c := &inputValue{}
	v, err := ast.InterfaceToValue(in.raw)
	if err != nil {
		c.err = fmt.Errorf("%w: %w", ErrBadInput, err)
	} else {
		c.term = ast.NewTerm(v)
	}
	in.conv = c
	return c.term, c.err
}

// bundleDocs are the documents of a bundle the engine evaluates: its
// denials; its grants and obligations, which matter only when nothing
// denied; its fallback reason, which matters only when nothing granted
// either.
var bundleDocs = []string{"denials", "grants", "obligations", "fallback"}

func docRef(bundle, doc string) ast.Ref { return ast.MustParseRef("data.waooaw." + bundle + "." + doc) }

// bundleQueries are a bundle's documents, each planned on its own, on the
// bundle's first decision: a function that asks two bundles of seven does
// not plan the other five during its cold start.
type bundleQueries struct {
	name     string
	index    uint64 // in policies.Bundles, for cache keys
	compiler *ast.Compiler

	once                                   sync.Once
	err                                    error
	denials, grants, obligations, fallback *planeval.Program
}

// planned plans the bundle's documents once.
func (q *bundleQueries) planned() error {
	q.once.Do(func() {
		progs := []**planeval.Program{&q.denials, &q.grants, &q.obligations, &q.fallback}
		for i, doc := range bundleDocs {
			body := ast.NewBody(ast.Equality.Expr(resultVar, ast.NewTerm(docRef(q.name, doc))))
			plan, err := planeval.PlanQuery(context.Background(), q.compiler, planName, body)
			if err == nil {
				*progs[i], err = planeval.Compile(plan)
			}
			if err != nil {
				q.err = fmt.Errorf("plan %s/%s: %w", q.name, doc, err)
				return
			}
		}
	})
	return q.err
}

// planName names each document's plan; resultVar binds its value.
const planName = "document"

var resultVar = ast.VarTerm("result")

func (e *Engine) eval(ctx context.Context, q *bundleQueries, in *Input, now time.Time) (Decision, error) {
	if err := q.planned(); err != nil {
		return Decision{}, err
	}
	input, err := in.astTerm()
	if err != nil {
		return Decision{}, err
	}
	env := planeval.Env{Input: input, Data: e.data.Load(), Time: now}
	ttl := time.Duration(e.ttl.Load())
	// Denials first: a refusal is decided by them alone (see fold).
	v, err := q.denials.Eval(ctx, planName, env)
	if err != nil {
		return Decision{}, err
	}
	if denials := stringSet(v); len(denials) > 0 {
		return fold(nil, denials, nil, "", ttl), nil
	}
	if v, err = q.grants.Eval(ctx, planName, env); err != nil {
		return Decision{}, err
	}
	grants := stringSet(v)
	if v, err = q.obligations.Eval(ctx, planName, env); err != nil {
		return Decision{}, err
	}
	obligations := stringSet(v)
	var fallback string
	if len(grants) == 0 {
		if v, err = q.fallback.Eval(ctx, planName, env); err != nil {
			return Decision{}, err
		}
		if v != nil {
			if s, ok := v.Value.(ast.String); ok {
				fallback = string(s)
			}
		}
	}
	return fold(grants, nil, obligations, fallback, ttl), nil
}

// fold is lib.decide (policies/lib.rego) in Go: allow only when something
// granted and nothing denied; obligations bind only an allowed decision;
// reasons are the grants, else the denials, else the fallback.
func fold(grants, denials, obligations []string, fallback string, ttl time.Duration) Decision {
	d := Decision{Outcome: Deny, Obligations: []string{}, TTL: ttl}
	d.Allow = len(grants) > 0 && len(denials) == 0
	switch {
	case d.Allow:
		d.Reasons = grants
		d.Obligations = obligations
		d.Outcome = Allow
		if len(obligations) > 0 {
			d.Outcome = AllowWithObligations
		}
	case len(denials) > 0:
		d.Reasons = denials
	default:
		d.Reasons = []string{fallback}
	}
	sort.Strings(d.Reasons)
	sort.Strings(d.Obligations)
	return d
}

// object renders the decision as the Rego decision rule does, for the
// OPA-compatible data API.
func (d *Decision) object() map[string]any {
	return map[string]any{
		"allow":       d.Allow,
		"outcome":     d.Outcome,
		"obligations": anyList(d.Obligations),
		"reasons":     anyList(d.Reasons),
		"ttl_seconds": json.Number(strconv.FormatFloat(d.TTL.Seconds(), 'f', -1, 64)),
	}
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// stringSet lists the strings of a set document (other members cannot be
// reasons or obligations).
func stringSet(t *ast.Term) []string {
	if t == nil {
		return []string{}
	}
	set, ok := t.Value.(ast.Set)
	if !ok || set.Len() == 0 {
		return []string{}
	}
	out := make([]string, 0, set.Len())
	set.Foreach(func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			out = append(out, string(s))
		}
	})
	return out
}

// unspecified names the enforcement point of a caller that gave none; the
// attestation schema needs one.
const unspecified = "unspecified"

func (a *Decision) attestation(meta Meta, now time.Time) Attestation {
	if meta.EnforcementPoint == "" {
		meta.EnforcementPoint = unspecified
	}
	return Attestation{
		DecisionID:       a.DecisionID,
		Bundle:           a.Bundle,
		Rule:             a.Rule,
		Revision:         a.Revision,
		Decision:         a.Outcome,
		Obligations:      a.Obligations,
		InputSHA256:      a.InputSHA256,
		EnforcementPoint: meta.EnforcementPoint,
		CorrelationID:    meta.CorrelationID,
		Cached:           a.Cached,
		Time:             now.UTC(),
	}
}

// swapData swaps in a data document with data.platform[key] = value. The
// documents are never modified in place: evaluations under way keep the one
// they started with.
func (e *Engine) swapData(key string, value *ast.Term) {
	e.dataMu.Lock()
	defer e.dataMu.Unlock()
	root := e.data.Load()
	platform := ast.NewObject()
	if cur, ok := root.Value.(ast.Object).Get(ast.StringTerm(DataRoot)).Value.(ast.Object); ok {
		cur.Foreach(func(k, v *ast.Term) { platform.Insert(k, v) })
	}
	platform.Insert(ast.StringTerm(key), value)
	e.data.Store(ast.ObjectTerm(ast.Item(ast.StringTerm(DataRoot), ast.NewTerm(platform))))
}
