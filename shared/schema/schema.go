// Package schema holds the Avro schema of every topic and checks JSON-encoded events against
// them before they are published, so a bad event is refused at the edge with the field named,
// instead of by Pub/Sub with "Could not parse message".
package schema

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/hamba/avro/v2"
)

//go:embed avro/*.avsc
var files embed.FS

// Files is the embedded schema folder (avro/<topic>.avsc), for tooling that attaches the
// definitions to topics.
func Files() fs.FS { return files }

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("schema violation")

// FieldError names the field that broke the schema, as a dotted path ("data.status").
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return fmt.Sprintf("field %s: %s", e.Field, e.Problem)
}

func (e *FieldError) Unwrap() error { return ErrInvalid }

// Registry holds the parsed schema of each topic.
type Registry struct {
	schemas map[string]avro.Schema
	plans   map[string]*node
	sources map[string]string
}

var defaultRegistry = mustLoad()

func mustLoad() *Registry {
	r, err := Load(files, "avro")
	if err != nil {
		panic(err) // the embedded files are part of the build; tests cover them
	}
	return r
}

// Default returns the registry of the embedded schemas.
func Default() *Registry { return defaultRegistry }

// Load parses every <topic>.avsc file in dir of fsys.
func Load(fsys fs.FS, dir string) (*Registry, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("schema: read %s: %w", dir, err)
	}
	r := &Registry{schemas: map[string]avro.Schema{}, plans: map[string]*node{}, sources: map[string]string{}}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".avsc" {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("schema: read %s: %w", e.Name(), err)
		}
		s, err := avro.ParseBytesWithCache(b, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("schema: parse %s: %w", e.Name(), err)
		}
		topic := strings.TrimSuffix(e.Name(), ".avsc")
		r.schemas[topic] = s
		r.plans[topic] = planFor(s)
		r.sources[topic] = string(b)
	}
	return r, nil
}

// Topics lists the topics that have a schema, sorted.
func (r *Registry) Topics() []string {
	out := make([]string, 0, len(r.schemas))
	for t := range r.schemas {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Definition returns the schema text of a topic, as attached to the Pub/Sub topic.
func (r *Registry) Definition(topic string) (string, bool) {
	s, ok := r.sources[topic]
	return s, ok
}

// Normalize checks a JSON document against the topic's schema and returns it in the exact
// Avro JSON encoding Pub/Sub expects: defaults filled in, fields in schema order. Unknown
// fields are refused, because Pub/Sub would drop them silently.
func (r *Registry) Normalize(topic string, doc []byte) ([]byte, error) {
	n, ok := r.plans[topic]
	if !ok {
		return nil, fmt.Errorf("schema: unknown topic %q", topic)
	}
	return n.normalize(doc, "")
}

// Record returns the schema of a named field of the topic's record (e.g. "data"), so a
// caller can check a body that becomes that field.
func (r *Registry) Record(topic, field string) (avro.Schema, error) {
	s, ok := r.schemas[topic]
	if !ok {
		return nil, fmt.Errorf("schema: unknown topic %q", topic)
	}
	rec, ok := s.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("schema: topic %q is not a record", topic)
	}
	for _, f := range rec.Fields() {
		if f.Name() == field {
			return f.Type(), nil
		}
	}
	return nil, fmt.Errorf("schema: topic %q has no field %q", topic, field)
}

// NormalizeTo checks doc against s; prefix is prepended to field paths in errors.
func NormalizeTo(s avro.Schema, doc []byte, prefix string) ([]byte, error) {
	return planFor(s).normalize(doc, prefix)
}
