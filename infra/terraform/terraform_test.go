package terraform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// specFile and rulesFile are what the HCL must decode, from the repository root.
const (
	specFile  = "infra/infrastructure.yaml"
	rulesFile = "rules/budget_thresholds.yaml"
)

// spec is the part of infrastructure.yaml that names things.
type spec struct {
	Topics []struct {
		Name         string `yaml:"name"`
		Schema       string `yaml:"schema"`
		AttachSchema *bool  `yaml:"attach_schema"`
	} `yaml:"topics"`
	Subscriptions []struct {
		Name string `yaml:"name"`
	} `yaml:"subscriptions"`
	Functions []struct {
		Name string `yaml:"name"`
	} `yaml:"functions"`
	ServiceAccounts []struct {
		Name string `yaml:"name"`
	} `yaml:"service_accounts"`
	Secrets []struct {
		Name string `yaml:"name"`
	} `yaml:"secrets"`
	Workflows []struct {
		Name string `yaml:"name"`
	} `yaml:"workflows"`
	Budget struct {
		MonthlyCapUSD float64 `yaml:"monthly_cap_usd"`
	} `yaml:"budget"`
	AuditLog struct {
		Database string `yaml:"database"`
	} `yaml:"audit_log"`
}

// names lists every resource name the spec gives, derived names (dead-letter topics, hold
// subscriptions, schema ids) included.
func (s spec) names() []string {
	var out []string
	for _, t := range s.Topics {
		out = append(out, t.Name, strings.TrimSuffix(filepath.Base(t.Schema), ".avsc"))
	}
	for _, sub := range s.Subscriptions {
		out = append(out, sub.Name, sub.Name+"-dlq", sub.Name+"-dlq-hold")
	}
	for _, f := range s.Functions {
		out = append(out, f.Name)
	}
	for _, sa := range s.ServiceAccounts {
		out = append(out, sa.Name)
	}
	for _, sec := range s.Secrets {
		out = append(out, sec.Name)
	}
	for _, w := range s.Workflows {
		out = append(out, w.Name)
	}
	if s.AuditLog.Database != "" {
		out = append(out, s.AuditLog.Database)
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatalf("filepath.Abs: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, specFile)); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return root
}

func loadYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("os.ReadFile: %v", err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("yaml.Unmarshal %s: %v", path, err)
	}
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	var s spec
	loadYAML(t, filepath.Join(repoRoot(t), specFile), &s)
	return s
}

func loadModule(t *testing.T) *Module {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatalf("filepath.Abs: %v", err)
	}
	m, err := LoadModule(dir)
	if err != nil {
		t.Fatalf("LoadModule: %v", err)
	}
	return m
}

// TestParses: every .tf file parses without a single diagnostic, and the files the module
// is made of are all there.
func TestParses(t *testing.T) {
	m := loadModule(t)
	for _, name := range []string{"versions.tf", "variables.tf", "locals.tf", "pubsub.tf", "functions.tf", "iam.tf", "workflows.tf", "budget.tf", "outputs.tf"} {
		if _, ok := m.Files[name]; !ok {
			t.Errorf("%s missing from the module (files: %v)", name, sortedKeys(m.Files))
		}
	}
}

// TestParseModuleRejectsDiagnostics: the parse check can fail.
func TestParseModuleRejectsDiagnostics(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		wantErr bool
	}{
		{"valid", "locals {\n  a = 1\n}\n", false},
		{"unclosed block", "locals {\n  a = 1\n", true},
		{"bad expression", "locals {\n  a = = 1\n}\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseModule(t.TempDir(), map[string][]byte{"x.tf": []byte(tt.src)})
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseModule error = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// TestDecodesRealFiles: the yamldecode(file(...)) locals point at the repository's spec and
// budget rules, and every file path that resolves without a plan exists.
func TestDecodesRealFiles(t *testing.T) {
	m := loadModule(t)
	root := repoRoot(t)
	decoded := m.DecodedFiles()
	tests := []struct {
		local string
		want  string
	}{
		{"spec", specFile},
		{"budget_rules", rulesFile},
	}
	for _, tt := range tests {
		t.Run(tt.local, func(t *testing.T) {
			got, ok := decoded[tt.local]
			if !ok {
				t.Fatalf("local.%s is not yamldecode(file(<static path>)); decoded locals: %v", tt.local, decoded)
			}
			if want := filepath.Join(root, tt.want); got != want {
				t.Fatalf("local.%s decodes %s, want %s", tt.local, got, want)
			}
		})
	}
	static := 0
	for name, body := range m.Files {
		for _, c := range FileCalls(body) {
			p, ok := m.StaticPath(c.Path)
			if !ok {
				continue
			}
			static++
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s(%s): %v", name, c.Func, p, err)
			}
		}
	}
	if static < len(tests) {
		t.Errorf("found %d static file paths, want at least %d", static, len(tests))
	}
}

// allowedTypes are the resource and data source types the module may use: each exists in
// the google provider 6.x (hashicorp/google).
var allowedTypes = map[string][]string{
	"resource": {
		"google_billing_budget",
		"google_cloud_run_service_iam_member",
		"google_cloud_scheduler_job",
		"google_cloudfunctions2_function",
		"google_firestore_database",
		"google_firestore_field",
		"google_project_iam_member",
		"google_project_service",
		"google_pubsub_schema",
		"google_pubsub_subscription",
		"google_pubsub_subscription_iam_member",
		"google_pubsub_topic",
		"google_pubsub_topic_iam_member",
		"google_secret_manager_secret",
		"google_secret_manager_secret_iam_member",
		"google_service_account",
		"google_service_account_iam_member",
		"google_storage_bucket",
		"google_storage_bucket_iam_member",
		"google_storage_bucket_object",
		"google_workflows_workflow",
	},
	"data": {"google_project"},
}

// TestResourceTypesAllowed: every resource and data source is of a type on the allow-list.
func TestResourceTypesAllowed(t *testing.T) {
	m := loadModule(t)
	for kind, types := range allowedTypes {
		t.Run(kind, func(t *testing.T) {
			allowed := map[string]bool{}
			for _, typ := range types {
				allowed[typ] = true
			}
			blocks := m.Blocks(kind)
			if len(blocks) == 0 {
				t.Fatalf("no %s blocks", kind)
			}
			for _, b := range blocks {
				if len(b.Labels) != 2 {
					t.Errorf("%s: %s block with labels %v", b.TypeRange, kind, b.Labels)
					continue
				}
				if !allowed[b.Labels[0]] {
					t.Errorf("%s: %s type %s is not on the allow-list", b.TypeRange, kind, b.Labels[0])
				}
			}
		})
	}
}

// specResourceTypes are the types whose instances are named by the spec: each such resource
// iterates over it.
var specResourceTypes = []string{
	"google_pubsub_schema",
	"google_pubsub_topic",
	"google_pubsub_subscription",
	"google_cloudfunctions2_function",
	"google_secret_manager_secret",
	"google_storage_bucket_object",
	"google_workflows_workflow",
}

// TestSpecResourcesUseForEach: every topic, subscription, schema, function, source object,
// secret and workflow resource has a for_each over a local decoded from the spec.
func TestSpecResourcesUseForEach(t *testing.T) {
	m := loadModule(t)
	derived := m.DerivedLocals("spec")
	for _, typ := range specResourceTypes {
		t.Run(typ, func(t *testing.T) {
			blocks := m.Resources(typ)
			if len(blocks) == 0 {
				t.Fatalf("no %s resource", typ)
			}
			for _, b := range blocks {
				if p := m.ForEachProblem(b, derived); p != "" {
					t.Errorf("%s (%s): %s", Address(b), b.TypeRange, p)
				}
			}
		})
	}
}

// TestForEachProblem: the for_each check can fail.
func TestForEachProblem(t *testing.T) {
	const locals = `locals {
  spec   = yamldecode(file("${path.module}/s.yaml"))
  topics = { for t in local.spec.topics : t.name => t }
  other  = toset(["a"])
}
`
	tests := []struct {
		name     string
		resource string
		wantOK   bool
	}{
		{"over a derived local", `resource "google_pubsub_topic" "t" {
  for_each = local.topics
  name     = each.key
}`, true},
		{"over the spec itself", `resource "google_pubsub_topic" "t" {
  for_each = { for t in local.spec.topics : t.name => t }
  name     = each.key
}`, true},
		{"no for_each", `resource "google_pubsub_topic" "t" {
  name = "x"
}`, false},
		{"over an unrelated local", `resource "google_pubsub_topic" "t" {
  for_each = local.other
  name     = each.key
}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseModule(t.TempDir(), map[string][]byte{"main.tf": []byte(locals + tt.resource + "\n")})
			if err != nil {
				t.Fatalf("ParseModule: %v", err)
			}
			blocks := m.Resources("google_pubsub_topic")
			if len(blocks) != 1 {
				t.Fatalf("found %d topic blocks, want 1", len(blocks))
			}
			p := m.ForEachProblem(blocks[0], m.DerivedLocals("spec"))
			if (p == "") != tt.wantOK {
				t.Fatalf("ForEachProblem = %q, want ok %v", p, tt.wantOK)
			}
		})
	}
}

// TestNoSpecNamesInHCL: no topic, subscription, dead-letter, schema, function, service
// account, secret or workflow name of infrastructure.yaml is written in the HCL.
func TestNoSpecNamesInHCL(t *testing.T) {
	s := loadSpec(t)
	names := s.names()
	for _, tt := range []struct {
		what string
		n    int
	}{{"topics", len(s.Topics)}, {"subscriptions", len(s.Subscriptions)}, {"functions", len(s.Functions)}, {"secrets", len(s.Secrets)}, {"service accounts", len(s.ServiceAccounts)}} {
		if tt.n == 0 {
			t.Fatalf("the spec lists no %s: the check would pass on nothing", tt.what)
		}
	}
	for _, h := range FindNames(loadModule(t), names) {
		t.Errorf("%s", h)
	}
}

// TestFindNames: the name scan sees names in every place HCL can write them, and only
// whole tokens.
func TestFindNames(t *testing.T) {
	names := []string{"approvals", "auditor-audit_events", "gateway"}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"string literal", `locals { a = "approvals" }`, []string{"approvals"}},
		{"template part", `locals { a = "projects/${var.p}/topics/approvals" }`, []string{"approvals"}},
		{"heredoc", "locals {\n  a = <<EOT\nsend to gateway\nEOT\n}", []string{"gateway"}},
		{"index key", `locals { a = google_pubsub_topic.topic["approvals"].id }`, []string{"approvals"}},
		{"attribute step", `locals { a = local.functions.gateway.url }`, []string{"gateway"}},
		{"object key", `locals { a = { gateway = 1 } }`, []string{"gateway"}},
		{"block label", `resource "google_pubsub_topic" "approvals" {}`, []string{"approvals"}},
		{"hyphenated name", `locals { a = "auditor-audit_events-dlq" }`, []string{"auditor-audit_events"}},
		{"prefixed name", `locals { a = "fn-gateway" }`, []string{"gateway"}},
		{"longer identifier", `output "gateway_url" { value = 1 }`, nil},
		{"derived from each.key", `locals { a = "${each.key}-dlq" }`, nil},
		{"comment", "# gateway approvals\nlocals { a = 1 }", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseModule(t.TempDir(), map[string][]byte{"main.tf": []byte(tt.src + "\n")})
			if err != nil {
				t.Fatalf("ParseModule: %v", err)
			}
			var got []string
			for _, h := range FindNames(m, names) {
				got = append(got, h.Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("FindNames = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestVariablesAndOutputsDescribed: the variables the deploy needs exist, and every
// variable and output carries a description.
func TestVariablesAndOutputsDescribed(t *testing.T) {
	m := loadModule(t)
	tests := []struct {
		kind string
		want []string
	}{
		{"variable", []string{"project_id", "region", "billing_account"}},
		{"output", []string{"gateway_url", "function_urls"}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			seen := map[string]bool{}
			for _, b := range m.Blocks(tt.kind) {
				name := strings.Join(b.Labels, ".")
				seen[name] = true
				a, ok := b.Body.Attributes["description"]
				if !ok {
					t.Errorf("%s %s has no description", tt.kind, name)
					continue
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || v.Type() != cty.String || strings.TrimSpace(v.AsString()) == "" {
					t.Errorf("%s %s: description is not a non-empty literal string", tt.kind, name)
				}
			}
			for _, w := range tt.want {
				if !seen[w] {
					t.Errorf("%s %s missing", tt.kind, w)
				}
			}
		})
	}
}

// TestFunctionsScaleToZero: every function sets min_instance_count = 0, so nothing runs
// (and nothing is billed) while nobody calls.
func TestFunctionsScaleToZero(t *testing.T) {
	fns := loadModule(t).Resources("google_cloudfunctions2_function")
	if len(fns) == 0 {
		t.Fatal("no google_cloudfunctions2_function resource")
	}
	for _, b := range fns {
		t.Run(Address(b), func(t *testing.T) {
			sc := NestedBlocks(b, "service_config")
			if len(sc) != 1 {
				t.Fatalf("%d service_config blocks, want 1", len(sc))
			}
			a, ok := sc[0].Body.Attributes["min_instance_count"]
			if !ok {
				t.Fatal("service_config has no min_instance_count")
			}
			v, diags := a.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("min_instance_count is not a literal: %v", diags)
			}
			if !v.Type().Equals(cty.Number) || !v.Equals(cty.Zero).True() {
				t.Fatalf("min_instance_count = %#v, want 0", v)
			}
		})
	}
}

// TestProviderPinned: the google provider comes from hashicorp/google, major version 6.
func TestProviderPinned(t *testing.T) {
	tfs := loadModule(t).Blocks("terraform")
	if len(tfs) != 1 {
		t.Fatalf("%d terraform blocks, want 1", len(tfs))
	}
	rp := NestedBlocks(tfs[0], "required_providers")
	if len(rp) != 1 {
		t.Fatalf("%d required_providers blocks, want 1", len(rp))
	}
	a, ok := rp[0].Body.Attributes["google"]
	if !ok {
		t.Fatal("required_providers has no google entry")
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.Type().IsObjectType() {
		t.Fatalf("required_providers.google is not a literal object: %v", diags)
	}
	tests := []struct {
		attr  string
		check func(string) bool
		want  string
	}{
		{"source", func(s string) bool { return s == "hashicorp/google" }, "hashicorp/google"},
		{"version", func(s string) bool { return strings.HasPrefix(s, "~> 6.") }, "~> 6.x"},
	}
	for _, tt := range tests {
		if !v.Type().HasAttribute(tt.attr) {
			t.Errorf("required_providers.google has no %s", tt.attr)
			continue
		}
		if got := v.GetAttr(tt.attr); got.Type() != cty.String || !tt.check(got.AsString()) {
			t.Errorf("required_providers.google.%s = %#v, want %s", tt.attr, got, tt.want)
		}
	}
}

// budgetRules is the part of rules/budget_thresholds.yaml the budget reads.
type budgetRules struct {
	Params map[string]any `yaml:"params"`
}

// TestBudgetThresholdsFromRules: every rules parameter the HCL reads exists in the rules
// table, the three ratios rise within (0, 1], and the table's cap is the spec's cap.
func TestBudgetThresholdsFromRules(t *testing.T) {
	m := loadModule(t)
	var rules budgetRules
	loadYAML(t, filepath.Join(repoRoot(t), rulesFile), &rules)
	s := loadSpec(t)

	read := map[string]bool{}
	for _, body := range m.Files {
		for _, k := range LocalAttrRefs(body, "budget_params") {
			read[k] = true
		}
	}
	ratios := []string{"alert_ratio", "suspend_ratio", "halt_ratio"}
	for _, k := range append(ratios, "platform_cap_usd") {
		if !read[k] {
			t.Errorf("the HCL does not read local.budget_params.%s", k)
		}
	}
	for k := range read {
		if _, ok := rules.Params[k]; !ok {
			t.Errorf("the HCL reads params.%s, which %s does not have", k, rulesFile)
		}
	}
	prev := 0.0
	for _, k := range ratios {
		v, err := number(rules.Params[k])
		if err != nil {
			t.Errorf("params.%s: %v", k, err)
			continue
		}
		if v <= prev || v > 1 {
			t.Errorf("params.%s = %v: want above %v and at most 1", k, v, prev)
		}
		prev = v
	}
	capUSD, err := number(rules.Params["platform_cap_usd"])
	if err != nil {
		t.Fatalf("params.platform_cap_usd: %v", err)
	}
	if capUSD != s.Budget.MonthlyCapUSD {
		t.Errorf("params.platform_cap_usd = %v, spec budget.monthly_cap_usd = %v", capUSD, s.Budget.MonthlyCapUSD)
	}
}

func number(v any) (float64, error) {
	switch n := v.(type) {
	case int:
		return float64(n), nil
	case float64:
		return n, nil
	default:
		return 0, fmt.Errorf("%#v is not a number", v)
	}
}

// TestTerraformFmt runs `terraform fmt -check -recursive` over this folder, and over a
// misformatted sample to show the check bites. A missing terraform binary fails the test.
func TestTerraformFmt(t *testing.T) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("terraform binary: %v (install Terraform >= 1.5 to run this check)", err)
	}
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, "bad.tf"), []byte("locals {\na=1\n  bb = 2\n}\n"), 0o644); err != nil {
		t.Fatalf("os.WriteFile: %v", err)
	}
	tests := []struct {
		name   string
		dir    string
		wantOK bool
	}{
		{"module", ".", true},
		{"misformatted sample", bad, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := terraformFmtCheck(bin, tt.dir)
			if tt.wantOK && err != nil {
				t.Fatalf("terraform fmt -check: %v\n%s", err, out)
			}
			if !tt.wantOK && err == nil {
				t.Fatalf("terraform fmt -check passed a misformatted file:\n%s", out)
			}
		})
	}
}

func terraformFmtCheck(bin, dir string) (string, error) {
	cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return string(out), fmt.Errorf("run terraform: %w", err)
	}
	if err != nil {
		return string(out), fmt.Errorf("terraform fmt -check: %w", err)
	}
	return string(out), nil
}

// TestReferencesDeclared: every local, variable, data source and resource the HCL refers to
// is declared in the module.
func TestReferencesDeclared(t *testing.T) {
	for _, problem := range loadModule(t).UndeclaredRefs() {
		t.Error(problem)
	}
}

// TestUndeclaredRefs: the reference check can fail, and leaves iterators alone.
func TestUndeclaredRefs(t *testing.T) {
	const decl = `variable "v" {}
locals { l = 1 }
data "google_project" "p" {}
resource "google_pubsub_topic" "t" {
  for_each = local.l
  name     = each.key
}
`
	tests := []struct {
		name string
		use  string
		want int
	}{
		{"all declared", `locals { u = [var.v, local.l, data.google_project.p.number, google_pubsub_topic.t["x"].id] }`, 0},
		{"iterators and path", `locals { u = [for k, v in local.l : "${path.module}/${k}"] }`, 0},
		{"missing local", `locals { u = local.nope }`, 1},
		{"missing variable", `locals { u = var.nope }`, 1},
		{"missing data source", `locals { u = data.google_project.nope.number }`, 1},
		{"missing resource", `locals { u = google_pubsub_topic.nope.id }`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseModule(t.TempDir(), map[string][]byte{"main.tf": []byte(decl + tt.use + "\n")})
			if err != nil {
				t.Fatalf("ParseModule: %v", err)
			}
			if got := m.UndeclaredRefs(); len(got) != tt.want {
				t.Fatalf("UndeclaredRefs = %v, want %d problems", got, tt.want)
			}
		})
	}
}

// specListOf maps the locals resources iterate over to the spec list their items come from.
var specListOf = map[string]string{
	"topics":             "topics",
	"subscriptions":      "subscriptions",
	"push_subscriptions": "subscriptions",
	"functions":          "functions",
	"public_functions":   "functions",
	"service_accounts":   "service_accounts",
	"secrets":            "secrets",
	"workflows":          "workflows",
}

// TestSpecAttributesExist: every each.value.<attr> a resource reads outside try() is a key
// of every item of the spec list it iterates over, so a renamed spec field fails here rather
// than at plan time.
func TestSpecAttributesExist(t *testing.T) {
	var raw map[string][]map[string]any
	var doc map[string]any
	loadYAML(t, filepath.Join(repoRoot(t), specFile), &doc)
	raw = map[string][]map[string]any{}
	for key, v := range doc {
		list, ok := v.([]any)
		if !ok {
			continue
		}
		for _, item := range list {
			if m, ok := item.(map[string]any); ok {
				raw[key] = append(raw[key], m)
			}
		}
	}
	checked := 0
	for _, b := range loadModule(t).Resources("") {
		local, ok := ForEachLocal(b)
		if !ok {
			continue
		}
		list, ok := specListOf[local]
		if !ok {
			continue
		}
		required, _ := EachValueAttrs(b)
		for attr := range required {
			checked++
			for i, item := range raw[list] {
				if _, ok := item[attr]; !ok {
					t.Errorf("%s reads each.value.%s, which %s[%d] (%v) lacks", Address(b), attr, list, i, item["name"])
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no each.value attribute checked: the check would pass on nothing")
	}
}

// TestEachValueAttrs: attributes read inside try() are optional, the others required.
func TestEachValueAttrs(t *testing.T) {
	src := `resource "google_pubsub_topic" "t" {
  for_each = local.topics
  name     = each.value.name
  labels   = try(each.value.labels, {})
  kms      = each.value.kms_key
}
`
	m, err := ParseModule(t.TempDir(), map[string][]byte{"main.tf": []byte(src)})
	if err != nil {
		t.Fatalf("ParseModule: %v", err)
	}
	b := m.Resources("google_pubsub_topic")[0]
	if l, ok := ForEachLocal(b); !ok || l != "topics" {
		t.Fatalf("ForEachLocal = %q, %v; want topics", l, ok)
	}
	required, optional := EachValueAttrs(b)
	tests := []struct {
		attr         string
		wantRequired bool
		wantOptional bool
	}{
		{"name", true, false},
		{"kms_key", true, false},
		{"labels", false, true},
	}
	for _, tt := range tests {
		if required[tt.attr] != tt.wantRequired || optional[tt.attr] != tt.wantOptional {
			t.Errorf("%s: required %v optional %v, want %v %v", tt.attr, required[tt.attr], optional[tt.attr], tt.wantRequired, tt.wantOptional)
		}
	}
}
