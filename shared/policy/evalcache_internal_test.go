package policy

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestEvalCaches(t *testing.T) {
	c := getCaches()
	defer putCaches(c)
	ref := ast.MustParseRef("data.platform.roles")
	obj := ast.MustParseTerm(`{"admin": 1}`).Value
	c.base.Put(ref, obj)
	if got := c.base.Get(ast.MustParseRef("data.platform.roles.admin")); got == nil || got.Compare(ast.Number("1")) != 0 {
		t.Fatalf("base Get below a cached ref = %v, want 1", got)
	}
	if got := c.base.Get(ast.MustParseRef("data.platform.roles.pirate")); got != nil {
		t.Fatalf("base Get of a missing key = %v", got)
	}
	if got := c.base.Get(ast.MustParseRef("data.platform")); got != nil {
		t.Fatalf("base Get above a cached ref = %v, want a miss", got)
	}

	// Refs are copied: topdown reuses the slices it passes.
	key := ast.MustParseRef("data.waooaw.rbac.role")
	scratch := append(ast.Ref(nil), key...)
	c.virtual.Put(scratch, ast.StringTerm("admin"))
	scratch[3] = ast.StringTerm("action")
	if v, undefined := c.virtual.Get(key); v == nil || undefined || v.Value.Compare(ast.String("admin")) != 0 {
		t.Fatalf("virtual Get = %v, %v", v, undefined)
	}
	undef := ast.MustParseRef("data.waooaw.rbac.level")
	c.virtual.Put(undef, nil)
	if v, undefined := c.virtual.Get(undef); v != nil || !undefined {
		t.Fatalf("an undefined value is cached as undefined: %v, %v", v, undefined)
	}
	// A `with` frame starts empty and is dropped on Pop.
	c.virtual.Push()
	if v, undefined := c.virtual.Get(key); v != nil || undefined {
		t.Fatalf("new frame sees the outer value %v", v)
	}
	c.virtual.Put(key, ast.StringTerm("viewer"))
	c.virtual.Pop()
	if v, _ := c.virtual.Get(key); v == nil || v.Value.Compare(ast.String("admin")) != 0 {
		t.Fatalf("after Pop: %v", v)
	}
	if keys := c.virtual.Keys(); len(keys) != 1 || !keys[0].Equal(key) {
		t.Fatalf("Keys = %v", keys)
	}
}
