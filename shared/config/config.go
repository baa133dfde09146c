// Package config reads a function's settings from its environment and reports every missing
// or malformed variable at once, by name, so a misconfigured deploy fails with one clear line.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error lists what was wrong with the environment.
type Error struct {
	Missing []string // required variables that are unset or empty
	Invalid []string // "NAME: problem"
}

func (e *Error) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing "+strings.Join(e.Missing, ", "))
	}
	if len(e.Invalid) > 0 {
		parts = append(parts, "invalid "+strings.Join(e.Invalid, "; "))
	}
	return "config: " + strings.Join(parts, "; ")
}

// Env reads variables through a lookup function and collects problems; call Err at the end.
type Env struct {
	lookup  func(string) (string, bool)
	missing []string
	invalid []string
}

// FromOS reads the process environment.
func FromOS() *Env { return New(os.LookupEnv) }

// FromMap reads a fixed set of variables, for tests and tools.
func FromMap(m map[string]string) *Env {
	return New(func(k string) (string, bool) { v, ok := m[k]; return v, ok })
}

// New reads variables through lookup (os.LookupEnv's shape).
func New(lookup func(string) (string, bool)) *Env { return &Env{lookup: lookup} }

func (e *Env) get(name string) string {
	v, _ := e.lookup(name)
	return strings.TrimSpace(v)
}

// Invalid notes a problem with a variable's value that the caller found itself.
func (e *Env) Invalid(name, problem string) {
	e.invalid = append(e.invalid, name+": "+problem)
}

// Required returns the variable's value, noting it as missing when empty.
func (e *Env) Required(name string) string {
	v := e.get(name)
	if v == "" {
		e.missing = append(e.missing, name)
	}
	return v
}

// Optional returns the variable's value, or def when empty.
func (e *Env) Optional(name, def string) string {
	if v := e.get(name); v != "" {
		return v
	}
	return def
}

// OneOf returns the first non-empty of names (and which one it was); when all are empty it
// notes the first as missing with the alternatives named.
func (e *Env) OneOf(names ...string) (name, value string) {
	for _, n := range names {
		if v := e.get(n); v != "" {
			return n, v
		}
	}
	e.missing = append(e.missing, strings.Join(names, " or "))
	return "", ""
}

// URL parses a variable's value (if set) as an absolute URL whose scheme is one of schemes.
func (e *Env) URL(name, value string, schemes ...string) *url.URL {
	if value == "" {
		return nil
	}
	u, err := url.Parse(value)
	if err != nil {
		e.Invalid(name, err.Error())
		return nil
	}
	if !slices.Contains(schemes, u.Scheme) {
		e.Invalid(name, fmt.Sprintf("scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", ")))
		return nil
	}
	return u
}

// List splits an optional comma-separated variable, dropping empty items.
func (e *Env) List(name string) []string {
	var out []string
	for _, s := range strings.Split(e.get(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Duration parses an optional Go duration ("30s"), def when unset.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	v := e.get(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		e.Invalid(name, fmt.Sprintf("%q is not a non-negative duration", v))
		return def
	}
	return d
}

// Int parses an optional integer, def when unset.
func (e *Env) Int(name string, def int) int {
	v := e.get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		e.Invalid(name, fmt.Sprintf("%q is not an integer", v))
		return def
	}
	return n
}

// Err returns an *Error naming every problem seen so far, or nil.
func (e *Env) Err() error {
	if len(e.missing) == 0 && len(e.invalid) == 0 {
		return nil
	}
	return &Error{Missing: slices.Clone(e.missing), Invalid: slices.Clone(e.invalid)}
}

// IsConfigError reports whether err comes from Err.
func IsConfigError(err error) bool {
	var ce *Error
	return errors.As(err, &ce)
}
