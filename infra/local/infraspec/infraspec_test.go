package infraspec

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/schema"
)

// The repository's spec must agree with the topics, schemas and ordering keys in code.
func TestRepoSpecMatchesCode(t *testing.T) {
	s, _, err := LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Topics) != len(events.OrderingKeys) {
		t.Fatalf("spec has %d topics, code %d", len(s.Topics), len(events.OrderingKeys))
	}
	for _, tp := range s.Topics {
		key, ok := events.OrderingKeys[tp.Name]
		if !ok {
			t.Errorf("topic %s unknown to events", tp.Name)
			continue
		}
		if key != tp.OrderingKey {
			t.Errorf("topic %s: ordering key spec %q, code %q", tp.Name, tp.OrderingKey, key)
		}
		if n := events.OrderingShards[tp.Name]; n != tp.OrderingShards {
			t.Errorf("topic %s: ordering shards spec %d, code %d", tp.Name, tp.OrderingShards, n)
		}
		if want := "shared/schema/avro/" + tp.Name + ".avsc"; tp.Schema != want {
			t.Errorf("topic %s: schema %s, want %s", tp.Name, tp.Schema, want)
		}
		if _, ok := schema.Default().Definition(strings.TrimSuffix(path.Base(tp.Schema), ".avsc")); !ok {
			t.Errorf("topic %s: schema not embedded", tp.Name)
		}
	}
	if s.DeadLetter.MaxDeliveryAttempts != 5 {
		t.Errorf("max delivery attempts = %d, want 5", s.DeadLetter.MaxDeliveryAttempts)
	}
}

// wf is a spec with an HTTP and a Pub/Sub function and a workflow identity.
const wf = "dead_letter: {max_delivery_attempts: 5}\ntopics: [{name: a}]\n" +
	"functions: [{name: web, trigger: {type: http}}, {name: sub, trigger: {type: pubsub, topic: a}}]\n" +
	"service_accounts: [{name: wf}]\n"

func wfURLs(urls string) string {
	return wf + "workflows: [{name: w, source: w.yaml, service_account: wf, call_log_level: LOG_ERRORS_ONLY, function_urls: {" + urls + "}}]\n"
}

func TestParseAcceptsAccess(t *testing.T) {
	doc := wf + "secrets: [{name: k}]\naudit_log: {database: audit, writer: sub, readers: [web]}\n"
	doc = strings.Replace(doc, "{name: web, trigger: {type: http}}", "{name: web, trigger: {type: http}, publishes: [a], reads_secrets: [k]}", 1)
	s, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	web, _ := s.Function("web")
	if len(web.Publishes) != 1 || web.Publishes[0] != "a" || len(web.ReadsSecrets) != 1 || web.ReadsSecrets[0] != "k" {
		t.Errorf("web = %+v", web)
	}
	if a := s.AuditLog; a.Database != "audit" || a.Writer != "sub" || len(a.Readers) != 1 || a.Readers[0] != "web" {
		t.Errorf("audit_log = %+v", a)
	}
}

func TestParseAcceptsWorkflow(t *testing.T) {
	s, err := Parse([]byte(wfURLs("WEB_URL: web")))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := s.Workflow("w")
	if !ok || w.FunctionURLs["WEB_URL"] != "web" || w.CallLogLevel != "LOG_ERRORS_ONLY" || w.ServiceAccount != "wf" {
		t.Fatalf("workflow = %+v, %v", w, ok)
	}
}

// TestRepoWorkflows: the workflows deployed are the files in workflows/. The local stack
// deploys every workflows/*.yaml while Terraform deploys what the spec declares, so a file
// not declared would run locally and never in the cloud. A declared source is checked when
// present: a workflow is declared before its file lands, and its absence fails Terraform's
// plan (file()) rather than this test.
func TestRepoWorkflows(t *testing.T) {
	s, root, err := LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "workflows", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	for _, w := range s.Workflows {
		declared[w.Source] = true
		b, err := os.ReadFile(filepath.Join(root, w.Source))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Errorf("workflow %s: %s: %v", w.Name, w.Source, err)
		} else if _, ok := doc["main"]; !ok {
			t.Errorf("workflow %s: %s has no main", w.Name, w.Source)
		}
	}
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		if !declared[filepath.ToSlash(rel)] {
			t.Errorf("%s is not declared in %s", rel, RelPath)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	base := "dead_letter: {max_delivery_attempts: 5}\ntopics: [{name: a}]\n"
	tests := []struct{ name, doc, want string }{
		{"unknown key", base + "topicz: []\n", "topicz"},
		{"unknown topic", base + "subscriptions: [{name: s, topic: b}]\n", "unknown topic b"},
		{"unknown function", base + "subscriptions: [{name: s, topic: a, push_function: f}]\n", "unknown function f"},
		{"bad trigger", base + "functions: [{name: f, trigger: {type: cron}}]\n", "unknown trigger"},
		{"attempts", "dead_letter: {max_delivery_attempts: 3}\n", "max_delivery_attempts"},
		{"twice", "dead_letter: {max_delivery_attempts: 5}\ntopics: [{name: a}, {name: a}]\n", "twice"},
		{"workflow without source", wf + "workflows: [{name: w, service_account: wf, call_log_level: LOG_ERRORS_ONLY}]\n", "source"},
		{"workflow without account", wf + "workflows: [{name: w, source: w.yaml, call_log_level: LOG_ERRORS_ONLY}]\n", "unknown service account"},
		{"workflow account unknown", wf + "workflows: [{name: w, source: w.yaml, service_account: nobody, call_log_level: LOG_ERRORS_ONLY}]\n", "unknown service account"},
		{"call log level", wf + "workflows: [{name: w, source: w.yaml, service_account: wf, call_log_level: LOG_EVERYTHING}]\n", "call_log_level"},
		{"call log level unset", wf + "workflows: [{name: w, source: w.yaml, service_account: wf}]\n", "call_log_level"},
		{"url of unknown function", wfURLs("A_URL: nope"), "unknown function nope"},
		{"url of pubsub function", wfURLs("A_URL: sub"), "not http"},
		{"env GOOGLE_", wfURLs("GOOGLE_URL: web"), "not allowed"},
		{"env WORKFLOWS_", wfURLs("WORKFLOWS_URL: web"), "not allowed"},
		{"env with dash", wfURLs("A-URL: web"), "not allowed"},
		{"env empty", wfURLs(`"": web`), "not allowed"},
		{"publishes on an unknown topic", base + "functions: [{name: f, trigger: {type: http}, publishes: [b]}]\n", "publishes on unknown topic b"},
		{"reads an unknown secret", base + "functions: [{name: f, trigger: {type: http}, reads_secrets: [s]}]\n", "reads unknown secret s"},
		{"mounts an unknown secret", base + "functions: [{name: f, trigger: {type: http}, secrets: [{name: S, secret: s}]}]\n", "mounts unknown secret s"},
		{"audit log in (default)", wf + "audit_log: {database: (default), writer: sub}\n", "a database of its own"},
		{"audit log without a database", wf + "audit_log: {writer: sub}\n", "a database of its own"},
		{"audit log writer unknown", wf + "audit_log: {database: audit, writer: nobody}\n", "unknown function"},
		{"audit log writer public", "dead_letter: {max_delivery_attempts: 5}\nfunctions: [{name: gw, public: true, trigger: {type: http}}]\naudit_log: {database: audit, writer: gw}\n", "no public function may write"},
		{"audit log reader unknown", wf + "audit_log: {database: audit, writer: sub, readers: [nobody]}\n", "unknown function"},
		{"audit log writer also a reader", wf + "audit_log: {database: audit, writer: sub, readers: [sub]}\n", "is the writer"},
		{"bucket for an unknown account", wf + "buckets: [{name: b1, retention_days: 1, creators: [nobody]}]\n", "unknown service account"},
		{"bucket twice", wf + "buckets: [{name: b1}, {name: b1}]\n", "unique name"},
		{"schedule of a pushed function", wf + "schedules: [{name: s, cron: '*/10 * * * *', function: sub, path: /x}]\n", "not an http function"},
		{"schedule cron the stack cannot run", wf + "schedules: [{name: s, cron: '0 3 * * *', function: web, path: /x}]\n", "only"},
		{"schedule path", wf + "schedules: [{name: s, cron: '*/10 * * * *', function: web, path: x}]\n", "must start with /"},
		{"ai key named otherwise", base + "secrets: [{name: platform-genesis-groq, ai_credential: {engagement: platform, agent: genesis, type: groq_api_key}}]\n", "is named platform-genesis-groq_5Fapi_5Fkey"},
		{"ai key of another agent", base + "secrets: [{name: platform-genesis-groq_5Fapi_5Fkey, ai_credential: {engagement: platform, agent: vision_guardian, type: groq_api_key}}]\n", "is named platform-vision_5Fguardian-groq_5Fapi_5Fkey"},
		{"ai key of an unknown type", base + "secrets: [{name: platform-genesis-x, ai_credential: {engagement: platform, agent: genesis, type: x}}]\n", "neither groq_api_key nor openai_api_key"},
		{"ai key without an agent", base + "secrets: [{name: platform--groq_5Fapi_5Fkey, ai_credential: {engagement: platform, type: groq_api_key}}]\n", "ai_credential"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
