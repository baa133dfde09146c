package audit

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"

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
		{"empty map equals nil map", Entry{Context: map[string]string{}, ApprovalChain: []string{}}, `{"action":"","actor_id":"","actor_type":"","approval_chain":[],"context":{},"event_id":"","event_type":"","result":"","seq":0,"target":"","time":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Canonical(tt.e)
			got := string(c)
			if err != nil || got != tt.want {
				t.Errorf("Canonical:\n got %s, %v\nwant %s", got, err, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Canonical is not valid JSON: %s", got)
			}
		})
	}
}

func TestChainHashGolden(t *testing.T) {
	h1, err := ChainHash(GenesisHash, golden1)
	if err != nil || h1 != golden1Hash {
		t.Fatalf("hash 1 = %s, %v; want %s", h1, err, golden1Hash)
	}
	if h2, err := ChainHash(h1, golden2); err != nil || h2 != golden2Hash {
		t.Fatalf("hash 2 = %s, %v; want %s", h2, err, golden2Hash)
	}
}

// mustHash is ChainHash for entries known to be valid.
func mustHash(t testing.TB, prev string, e Entry) string {
	t.Helper()
	h, err := ChainHash(prev, e)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Every hashed field must change the hash; PrevHash and Hash must not (they are the link).
func TestChainHashCoversFields(t *testing.T) {
	base := mustHash(t, GenesisHash, golden1)
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
			if changed := mustHash(t, GenesisHash, e) != base; changed != tt.changes {
				t.Errorf("hash changed = %v, want %v", changed, tt.changes)
			}
		})
	}
	if mustHash(t, golden1Hash, golden1) == base {
		t.Error("prev hash does not change the hash")
	}
}

// TestCanonicalIsRFC8785 recomputes the canonical form as an outside verifier would: the
// entry as JSON (stream fields only) through another RFC 8785 implementation
// (github.com/gowebpki/jcs), on random entries whose strings hold escapes, non-ASCII and
// context keys whose UTF-16 and UTF-8 orders differ.
func TestCanonicalIsRFC8785(t *testing.T) {
	r := rand.New(rand.NewPCG(8785, 2))
	pieces := []string{"a", "Z", " ", "\"", "\\", "/", "<&>", "\b", "\t", "\n", "\f", "\r", "\x00", "\x1f", "\x7f",
		"\u00e9", "\u2028", "\u4e2d", "\ue000", "\uff21", "\uffff", "\U00010000", "\U0001f600"}
	str := func() string {
		var sb strings.Builder
		for range r.IntN(6) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		return sb.String()
	}
	for i := range 5000 {
		e := Entry{EventID: str(), Seq: r.Int64N(1 << 53), Time: str(), EventType: str(), ActorID: str(),
			ActorType: str(), Action: str(), Target: str(), Result: str()}
		if r.IntN(4) > 0 {
			e.Context = map[string]string{}
			for range r.IntN(20) {
				e.Context[str()] = str()
			}
		}
		for range r.IntN(3) {
			e.ApprovalChain = append(e.ApprovalChain, str())
		}
		got, err := Canonical(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		// Stored, the entry has its context and approval chain as {} and [] when empty.
		if e.Context == nil {
			e.Context = map[string]string{}
		}
		if e.ApprovalChain == nil {
			e.ApprovalChain = []string{}
		}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "prev_hash")
		delete(m, "hash")
		if raw, err = json.Marshal(m); err != nil {
			t.Fatal(err)
		}
		ref, err := jcs.Transform(raw)
		if err != nil {
			t.Fatalf("jcs.Transform(%s): %v", raw, err)
		}
		if string(got) != string(ref) {
			t.Fatalf("entry %d:\n got %s\njcs %s", i, got, ref)
		}
	}
}

// An entry with a string that is not UTF-8 has no RFC 8785 form: Canonical, ChainHash and
// the append path refuse it as invalid, naming the event and the field, before anything is
// written.
func TestNonUTF8EntryIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Entry)
		field  string
	}{
		{"action", func(e *Entry) { e.Action = "ap\xffprove" }, "action"},
		{"context key", func(e *Entry) { e.Context = map[string]string{"\xed\xa0\x80": "v"} }, "context"},
		{"context value", func(e *Entry) { e.Context = map[string]string{"k": "\xc3"} }, "context"},
		{"approval chain", func(e *Entry) { e.ApprovalChain = []string{"ok", "\xc0\x80"} }, "approval_chain"},
		{"time", func(e *Entry) { e.Time = "2026\xff" }, "time"},
	}
	appender := NewAppender(nil) // refused before any Firestore call
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := golden1
			tt.mutate(&e)
			want := `event "ev-1": ` + tt.field + ": "
			if c, err := Canonical(e); !errors.Is(err, ErrInvalid) || c != nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Canonical = %q, %v; want ErrInvalid saying %s", c, err, want)
			}
			if h, err := ChainHash(GenesisHash, e); !errors.Is(err, ErrInvalid) || h != "" {
				t.Errorf("ChainHash = %q, %v; want ErrInvalid", h, err)
			}
			if _, err := appender.AppendEntry(context.Background(), "eng-1", e); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not valid UTF-8") {
				t.Errorf("AppendEntry err = %v; want ErrInvalid for UTF-8", err)
			}
		})
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
func chain(t testing.TB, n int) []Entry {
	out := make([]Entry, n)
	prev := GenesisHash
	for i := range out {
		e := golden1
		e.Seq = int64(i + 1)
		e.EventID = seqID(e.Seq)
		e.PrevHash = prev
		e.Hash = mustHash(t, prev, e)
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
			es[2].Hash = mustHash(t, es[2].PrevHash, es[2])
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
			es := chain(t, 5)
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
	c, err := Canonical(e)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c)))
	prev := GenesisHash
	for b.Loop() {
		if prev, err = ChainHash(prev, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	e := golden1
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(e); err != nil {
			b.Fatal(err)
		}
	}
}
