package config

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		wantErr     string // "" = no error
		wantMissing []string
	}{
		{
			name: "complete",
			env:  map[string]string{"A": "a", "U": "https://x/jwks", "D": "2s", "N": "3"},
		},
		{
			name:        "missing names every variable",
			env:         map[string]string{"U": "https://x/jwks"},
			wantErr:     "config: missing A, B or C",
			wantMissing: []string{"A", "B or C"},
		},
		{
			name:        "invalid values are named with their variable",
			env:         map[string]string{"A": "a", "B": "b", "U": "ftp://x", "D": "soon", "N": "many"},
			wantErr:     `config: invalid U: scheme "ftp" is not one of http, https, file; D: "soon" is not a non-negative duration; N: "many" is not an integer`,
			wantMissing: nil,
		},
		{
			name:        "blank counts as unset",
			env:         map[string]string{"A": "  ", "C": "c"},
			wantErr:     "config: missing A",
			wantMissing: []string{"A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := FromMap(tt.env)
			e.Required("A")
			if tt.name != "complete" {
				e.OneOf("B", "C")
			}
			e.URL("U", tt.env["U"], "http", "https", "file")
			if d := e.Duration("D", time.Second); tt.wantErr == "" && d != 2*time.Second {
				t.Fatalf("Duration = %v", d)
			}
			if n := e.Int("N", 1); tt.wantErr == "" && n != 3 {
				t.Fatalf("Int = %d", n)
			}
			err := e.Err()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Err = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Err = %v\nwant  %s", err, tt.wantErr)
			}
			if !IsConfigError(fmt.Errorf("wrapped: %w", err)) {
				t.Fatal("IsConfigError false for a wrapped config error")
			}
			if ce := err.(*Error); !slices.Equal(ce.Missing, tt.wantMissing) {
				t.Fatalf("Missing = %v, want %v", ce.Missing, tt.wantMissing)
			}
		})
	}
}

func TestOptionalListOneOf(t *testing.T) {
	e := FromMap(map[string]string{"L": " a, ,b ,", "Y": "y"})
	if got := e.List("L"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("List = %q", got)
	}
	if got := e.List("NONE"); got != nil {
		t.Fatalf("List of unset = %q", got)
	}
	if got := e.Optional("X", "def"); got != "def" {
		t.Fatalf("Optional = %q", got)
	}
	if n, v := e.OneOf("X", "Y"); n != "Y" || v != "y" {
		t.Fatalf("OneOf = %q %q", n, v)
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
}
