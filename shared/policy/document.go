package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"
)

// Package is where the bundles live: data.waooaw.<bundle>.
const Package = "waooaw"

// DocumentAnswer is a data document as OPA's data API answers it.
type DocumentAnswer struct {
	// Defined is false when the document is undefined; Result is then nil.
	Defined bool
	// Result is the document as JSON values (json.Number for numbers).
	Result any
	// DecisionID names the answer. It is the id of the attestation of the
	// bundle whose documents the answer holds; of several bundles (data,
	// data.waooaw), their attestations' ids joined by commas; of none (for
	// example data.platform), an id nothing attests, as no decision was made.
	DecisionID string
}

// Document answers the document at data.<path> for input (nil: no input,
// which Rego tells apart from null) as `opa run --server` does: the same
// compiler, data and evaluator, for the documents the planned decisions do
// not cover: any rule, a whole package, data.platform, data itself. A
// segment that reads as an integer is a number, as in OPA's data API.
//
// Each bundle whose documents the answer holds has its decision about the
// input attested, with rule set to the path below the bundle ("" for the
// whole bundle document). An error from the evaluation is rego's own,
// unwrapped, so that a caller can answer it as OPA's server does.
func (e *Engine) Document(ctx context.Context, path []string, in *Input, meta Meta) (DocumentAnswer, error) {
	ref := make(ast.Ref, 1, len(path)+1)
	ref[0] = ast.DefaultRootDocument
	for _, seg := range path {
		if i, ok := util.Atoi64(seg); ok {
			ref = append(ref, ast.InternedTerm(i))
		} else {
			ref = append(ref, ast.StringTerm(seg))
		}
	}
	var input ast.Value
	if in != nil {
		t, err := in.astTerm()
		if err != nil {
			return DocumentAnswer{}, fmt.Errorf("policy: data.%s: %w", strings.Join(path, "."), err)
		}
		input = t.Value
	}
	pq, err := e.docs.query(ctx, e, ref)
	if err != nil {
		return DocumentAnswer{}, err
	}
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return DocumentAnswer{}, err
	}
	var a DocumentAnswer
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		a.Defined, a.Result = true, rs[0].Expressions[0].Value
	}
	a.DecisionID, err = e.attestDocument(ctx, path, in, meta)
	return a, err
}

// attestDocument attests the decision of every bundle whose documents the
// answer at data.<path> holds.
func (e *Engine) attestDocument(ctx context.Context, path []string, in *Input, meta Meta) (string, error) {
	var bundles []string
	rule := ""
	switch {
	case len(path) == 0, len(path) == 1 && path[0] == Package:
		bundles = e.bundles()
	case path[0] == Package:
		if _, ok := e.queries[path[1]]; ok {
			bundles, rule = path[1:2], strings.Join(path[2:], "/")
		}
	}
	if len(bundles) == 0 {
		return e.ids.id(), nil
	}
	if in == nil {
		// The decision about no input is the decision about null: the
		// attestation needs an input hash, and the policies read both alike.
		var err error
		if in, err = NewInput(nil); err != nil {
			return "", err
		}
	}
	ids := make([]string, 0, len(bundles))
	for _, b := range bundles {
		d, err := e.attested(ctx, b, rule, in, meta)
		if err != nil {
			return "", err
		}
		ids = append(ids, d.DecisionID)
	}
	return strings.Join(ids, ","), nil
}

// bundles lists the engine's bundles in their fixed order.
func (e *Engine) bundles() []string {
	out := make([]string, len(e.queries))
	for name, q := range e.queries {
		out[q.index] = name
	}
	return out
}

// maxPrepared bounds the prepared document queries kept: paths come from
// callers, and one that asks for ever new paths must not grow memory.
const maxPrepared = 512

// documents holds the store the data API's documents are read from and the
// queries prepared over it, both rebuilt when the data changes (PutData).
type documents struct {
	mu       sync.Mutex
	data     *ast.Term // the data document the store holds
	store    storage.Store
	prepared map[string]*rego.PreparedEvalQuery
}

// query returns the prepared query for data.<ref> over the current data.
func (d *documents) query(ctx context.Context, e *Engine, ref ast.Ref) (*rego.PreparedEvalQuery, error) {
	data := e.data.Load()
	key := ref.String()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.data != data {
		doc, err := ast.JSON(data.Value)
		if err != nil {
			return nil, fmt.Errorf("policy: data document: %w", err)
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("policy: data document is %T, not an object", doc)
		}
		d.data, d.store, d.prepared = data, inmem.NewFromObject(obj), map[string]*rego.PreparedEvalQuery{}
	}
	if pq, ok := d.prepared[key]; ok {
		return pq, nil
	}
	// Parsed from its text, as OPA's server does, so that an error locates
	// the query at 1:1 as its answer does.
	body, err := ast.ParseBody(key)
	if err != nil {
		return nil, fmt.Errorf("policy: query %s: %w", key, err)
	}
	pq, err := rego.New(
		rego.ParsedQuery(body),
		rego.Compiler(e.compiler),
		rego.Store(d.store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	if len(d.prepared) < maxPrepared {
		d.prepared[key] = &pq
	}
	return &pq, nil
}
