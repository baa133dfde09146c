package audit

import (
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"waooaw.dev/governance/shared/events"
)

// The golden values were produced independently (Python's json.dumps with sorted keys and
// compact separators, which matches RFC 8785 for these inputs, and hashlib.sha256), so a
// change to the canonical form or the chaining shows up here.
var (
	golden1 = Entry{
		EventID: "ev-1", Seq: 1, Time: "2026-11-26T17:00:00Z", EventType: "decision",
		ActorID: "gov-1", ActorType: "human", Action: "approve", Target: "agent/42",
		Context:       map[string]string{"z": "last", "a": "first", "é": "accent"},
		ApprovalChain: []string{"genesis", "governor"}, Result: "approved",
	}
	golden1Canonical = `{"action":"approve","actor_id":"gov-1","actor_type":"human","approval_chain":["genesis","governor"],"context":{"a":"first","z":"last","é":"accent"},"event_id":"ev-1","event_type":"decision","result":"approved","seq":1,"target":"agent/42","time":"2026-11-26T17:00:00Z"}`
	golden1Hash      = "3f4e6b18130fe8fc735506c100851038879a1860703fc1d652e9b34972e9a60c"

	golden2 = Entry{
		EventID: "ev-2", Seq: 2, Time: "2026-11-26T17:00:01.5Z", EventType: "t",
		ActorID: "a\tb\nc\x01\x1f\x7f", ActorType: "agent", Action: "say \"hi\"\\ <&>\u2028",
	}
	golden2Canonical = "{\"action\":\"say \\\"hi\\\"\\\\ <&>\u2028\",\"actor_id\":\"a\\tb\\nc\\u0001\\u001f\x7f\",\"actor_type\":\"agent\",\"approval_chain\":[],\"context\":{},\"event_id\":\"ev-2\",\"event_type\":\"t\",\"result\":\"\",\"seq\":2,\"target\":\"\",\"time\":\"2026-11-26T17:00:01.5Z\"}"
	golden2Hash      = "2be330b2d34d93a764fd4e511e8612579b895f5a923386612b1327e7bed965a6"
)

func TestCanonicalGolden(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"sorted keys and context, arrays", golden1, golden1Canonical},
		{"escapes, empty collections", golden2, golden2Canonical},
		{"empty map equals nil map", Entry{Context: map[string]string{}, ApprovalChain: []string{}}, string(Canonical(Entry{}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Canonical(tt.e))
			if got != tt.want {
				t.Errorf("Canonical:\n got %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Canonical is not valid JSON: %s", got)
			}
		})
	}
}

func TestChainHashGolden(t *testing.T) {
	h1 := ChainHash(GenesisHash, golden1)
	if h1 != golden1Hash {
		t.Fatalf("hash 1 = %s, want %s", h1, golden1Hash)
	}
	if h2 := ChainHash(h1, golden2); h2 != golden2Hash {
		t.Fatalf("hash 2 = %s, want %s", h2, golden2Hash)
	}
}

// Every hashed field must change the hash; PrevHash and Hash must not (they are the link).
func TestChainHashCoversFields(t *testing.T) {
	base := ChainHash(GenesisHash, golden1)
	tests := []struct {
		name    string
		mutate  func(*Entry)
		changes bool
	}{
		{"event_id", func(e *Entry) { e.EventID += "x" }, true},
		{"seq", func(e *Entry) { e.Seq++ }, true},
		{"time", func(e *Entry) { e.Time += "x" }, true},
		{"event_type", func(e *Entry) { e.EventType += "x" }, true},
		{"actor_id", func(e *Entry) { e.ActorID += "x" }, true},
		{"actor_type", func(e *Entry) { e.ActorType = "agent" }, true},
		{"action", func(e *Entry) { e.Action += "x" }, true},
		{"target", func(e *Entry) { e.Target += "x" }, true},
		{"context value", func(e *Entry) { e.Context = map[string]string{"z": "last", "a": "FIRST", "é": "accent"} }, true},
		{"context key", func(e *Entry) { e.Context = map[string]string{"z": "last", "b": "first", "é": "accent"} }, true},
		{"approval_chain order", func(e *Entry) { e.ApprovalChain = []string{"governor", "genesis"} }, true},
		{"result", func(e *Entry) { e.Result += "x" }, true},
		{"prev_hash field", func(e *Entry) { e.PrevHash = "ff" }, false},
		{"hash field", func(e *Entry) { e.Hash = "ff" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := golden1
			tt.mutate(&e)
			if changed := ChainHash(GenesisHash, e) != base; changed != tt.changes {
				t.Errorf("hash changed = %v, want %v", changed, tt.changes)
			}
		})
	}
	if ChainHash(golden1Hash, golden1) == base {
		t.Error("prev hash does not change the hash")
	}
}

func TestLessUTF16(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a", "b", true},
		{"b", "a", false},
		{"a", "ab", true},
		{"ab", "a", false},
		{"a", "a", false},
		{"", "a", true},
		// U+1F600 is the surrogate pair D83D DE00, which sorts before U+FF21 in UTF-16 though
		// after it in code point (and UTF-8 byte) order: RFC 8785 wants UTF-16.
		{"\U0001F600", "\uFF21", true},
		{"\uFF21", "\U0001F600", false},
		{"\U0001F600", "\U0001F601", true},
		{"\u00e9", "\u4e2d", true},
	}
	for _, tt := range tests {
		if got := lessUTF16(tt.a, tt.b); got != tt.want {
			t.Errorf("lessUTF16(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func envelope(t testing.TB, id, data string) events.Envelope {
	t.Helper()
	return events.Envelope{EventID: id, Type: "audit.appended", Source: "test", Time: "2026-11-26T17:00:00Z",
		CorrelationID: id, Actor: "system", Data: json.RawMessage(data)}
}

func TestFromEnvelope(t *testing.T) {
	const good = `{"stream":"eng-1","event_type":"decision","actor_id":"gov-1","actor_type":"human","action":"approve","target":"agent-42","context":{"k":"v"},"approval_chain":["g"],"result":"approved"}`
	tests := []struct {
		name    string
		id      string
		data    string
		stream  string
		invalid bool
	}{
		{"valid", "ev-1", good, "eng-1", false},
		{"optional fields missing", "ev-2", `{"stream":"platform","event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`, "platform", false},
		{"not json", "ev-3", `{"stream":`, "", true},
		{"no stream", "ev-4", `{"event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`, "", true},
		{"slash in stream", "ev-5", `{"stream":"a/b","event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`, "", true},
		{"reserved stream", "ev-6", `{"stream":"__x__","event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`, "", true},
		{"dot stream", "ev-7", `{"stream":"..","event_type":"t","actor_id":"a","actor_type":"system","action":"x"}`, "", true},
		{"no action", "ev-8", `{"stream":"s","event_type":"t","actor_id":"a","actor_type":"system"}`, "", true},
		{"no event id", "", good, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, e, err := FromEnvelope(envelope(t, tt.id, tt.data))
			if tt.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stream != tt.stream || e.EventID != tt.id || e.Time != "2026-11-26T17:00:00Z" {
				t.Errorf("got stream %q id %q time %q", stream, e.EventID, e.Time)
			}
		})
	}
}

// chain builds n correctly linked entries.
func chain(n int) []Entry {
	out := make([]Entry, n)
	prev := GenesisHash
	for i := range out {
		e := golden1
		e.Seq = int64(i + 1)
		e.EventID = seqID(e.Seq)
		e.PrevHash = prev
		e.Hash = ChainHash(prev, e)
		prev = e.Hash
		out[i] = e
	}
	return out
}

func TestChecker(t *testing.T) {
	p := func(n int64) *int64 { return &n }
	tests := []struct {
		name    string
		mutate  func(es []Entry, ids []string, h *head) ([]Entry, []string, *head)
		wantBad *int64
		entries int
	}{
		{"intact", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) { return es, ids, h }, nil, 5},
		{"field altered", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			es[2].Result = "denied"
			return es, ids, h
		}, p(3), 2},
		{"altered and rehashed, next link breaks", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			es[2].Result = "denied"
			es[2].Hash = ChainHash(es[2].PrevHash, es[2])
			return es, ids, h
		}, p(4), 3},
		{"gap", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			return append(es[:1:1], es[2:]...), append(ids[:1:1], ids[2:]...), h
		}, p(2), 1},
		{"seq field altered", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			es[1].Seq = 7
			return es, ids, h
		}, p(2), 1},
		{"last entry missing", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			return es[:4], ids[:4], h
		}, p(5), 4},
		{"head behind entries", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			return es, ids, &head{Seq: 3, Hash: es[2].Hash}
		}, p(4), 3},
		{"head hash altered", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			return es, ids, &head{Seq: 5, Hash: GenesisHash}
		}, p(5), 4},
		{"head missing", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			return es, ids, nil
		}, p(1), 0},
		{"first entry's prev hash altered", func(es []Entry, ids []string, h *head) ([]Entry, []string, *head) {
			es[0].PrevHash = golden1Hash
			return es, ids, h
		}, p(1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := chain(5)
			ids := make([]string, len(es))
			for i, e := range es {
				ids[i] = seqID(e.Seq)
			}
			es, ids, h := tt.mutate(es, ids, &head{Seq: 5, Hash: es[4].Hash})
			var c checker
			c.reset()
			for i, e := range es {
				c.add(ids[i], e)
			}
			rep := c.finish(h)
			if (rep.FirstBadSeq == nil) != (tt.wantBad == nil) || (tt.wantBad != nil && *rep.FirstBadSeq != *tt.wantBad) {
				t.Fatalf("first bad = %v, want %v", deref(rep.FirstBadSeq), deref(tt.wantBad))
			}
			if rep.OK != (tt.wantBad == nil) || rep.Entries != tt.entries {
				t.Errorf("ok = %v entries = %d, want ok %v entries %d", rep.OK, rep.Entries, tt.wantBad == nil, tt.entries)
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Entries are immutable: the package's own code may call Set only on the head and never
// Update or Delete anything. Checked on the source, so a future edit cannot slip past.
func TestNoCodeMutatesEntries(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var sets, checked int
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		checked++
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Update", "Delete", "BulkWriter", "Batch", "RecursiveDelete":
				t.Errorf("%s: call to %s: entries must never be updated or deleted", fset.Position(call.Pos()), sel.Sel.Name)
			case "Set":
				if id, ok := call.Args[0].(*ast.Ident); !ok || id.Name != "streamRef" {
					t.Errorf("%s: Set on %s: only the head (streamRef) may be overwritten", fset.Position(call.Pos()), render(call.Args[0]))
				}
				sets++
			}
			return true
		})
	}
	if checked == 0 || sets != 1 {
		t.Fatalf("checked %d files and found %d Set calls; want the one head write", checked, sets)
	}
}

func render(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "an expression"
}

func BenchmarkChainHash(b *testing.B) {
	e := golden1
	b.ReportAllocs()
	b.SetBytes(int64(len(Canonical(e))))
	prev := GenesisHash
	for b.Loop() {
		prev = ChainHash(prev, e)
	}
}

func BenchmarkCanonical(b *testing.B) {
	e := golden1
	b.ReportAllocs()
	for b.Loop() {
		_ = Canonical(e)
	}
}
