package service

import (
	"strings"
	"testing"
)

func TestPage(t *testing.T) {
	all := []int{0, 1, 2, 3, 4}
	cases := []struct {
		size      int
		token     string
		want      string
		wantToken string
	}{
		{2, "", "[0 1]", "2"},
		{2, "2", "[2 3]", "4"},
		{2, "4", "[4]", ""},
		{0, "", "[0 1 2 3 4]", ""},
		{10, "9", "[]", ""},
	}
	for _, c := range cases {
		got, next, err := page(all, c.size, c.token, 100)
		if err != nil {
			t.Fatal(err)
		}
		if s := sprint(got); s != c.want || next != c.wantToken {
			t.Fatalf("page(%d, %q) = %s %q, want %s %q", c.size, c.token, s, next, c.want, c.wantToken)
		}
	}
	if _, _, err := page(all, 1, "x", 100); err == nil {
		t.Fatal("bad token accepted")
	}
}

func sprint(v []int) string {
	parts := make([]string, len(v))
	for i, n := range v {
		parts[i] = string(rune('0' + n))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestParseName(t *testing.T) {
	n, ok := parseName("projects/p/locations/l/workflows/w/executions/e")
	if !ok || n.project != "p" || n.location != "l" || n.workflow != "w" || n.execution != "e" {
		t.Fatalf("%+v %v", n, ok)
	}
	for _, bad := range []string{"", "projects/p", "projects/p/locations/l/workflows/w/x/e", "p/p/l/l/w/w"} {
		if _, ok := parseName(bad); ok {
			t.Fatalf("%q parsed", bad)
		}
	}
}

func TestCompileRejectsEmptyAndHuge(t *testing.T) {
	if _, err := Compile(" "); err == nil || AsError(err).Status != "INVALID_ARGUMENT" {
		t.Fatalf("empty source: %v", err)
	}
	if _, err := Compile(strings.Repeat("#", 129*1024)); err == nil || !strings.Contains(err.Error(), "128 KB") {
		t.Fatalf("huge source: %v", err)
	}
}
