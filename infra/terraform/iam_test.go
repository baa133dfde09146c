package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// iamSpec is the part of infrastructure.yaml that says who runs as whom and what is public.
type iamSpec struct {
	Functions []struct {
		Name           string `yaml:"name"`
		Public         bool   `yaml:"public"`
		ServiceAccount string `yaml:"service_account"`
	} `yaml:"functions"`
	Subscriptions []struct {
		Name         string `yaml:"name"`
		Topic        string `yaml:"topic"`
		PushFunction string `yaml:"push_function"`
	} `yaml:"subscriptions"`
	Workflows []struct {
		Name           string            `yaml:"name"`
		ServiceAccount string            `yaml:"service_account"`
		CallLogLevel   string            `yaml:"call_log_level"`
		FunctionURLs   map[string]string `yaml:"function_urls"`
	} `yaml:"workflows"`
}

// callbackSenders are the functions that start workflow executions or deliver their callbacks
// (docs/agent-creation.md): the gateway (requests, Governor decisions) and the registry (the
// first healthy event). No other identity may touch an execution.
var callbackSenders = []string{"gateway", "registry"}

// roleGrants says, for every role the module grants, whether it lets its holder invoke a
// function (run.routes.invoke) or start and resume workflow executions
// (workflows.executions.create, workflows.callbacks.send). A role missing here fails the
// checks until it is added with what it grants.
var roleGrants = map[string]struct{ invokesFunctions, invokesWorkflows bool }{
	"roles/datastore.user":                 {},
	"roles/logging.logWriter":              {},
	"roles/pubsub.publisher":               {},
	"roles/pubsub.subscriber":              {},
	"roles/secretmanager.secretAccessor":   {},
	"roles/iam.serviceAccountTokenCreator": {},
	"roles/run.invoker":                    {invokesFunctions: true},
	"roles/run.developer":                  {invokesFunctions: true},
	"roles/run.admin":                      {invokesFunctions: true},
	"roles/workflows.invoker":              {invokesWorkflows: true},
	"roles/workflows.editor":               {invokesWorkflows: true},
	"roles/workflows.admin":                {invokesWorkflows: true},
	"roles/editor":                         {invokesFunctions: true, invokesWorkflows: true},
	"roles/owner":                          {invokesFunctions: true, invokesWorkflows: true},
}

// publicFunctions are the functions anyone may call: the gateway, the front door, which
// authenticates its callers itself. Every other function answers only IAM identities.
var publicFunctions = []string{"gateway"}

// publicMembers are the members that are anyone.
var publicMembers = []string{"allUsers", "allAuthenticatedUsers"}

// iamModel is the plan's bindings read against the spec.
type iamModel struct {
	spec   iamSpec
	plan   *Plan
	grants []Grant
	// accountOf maps a member to the spec service account it is ("" for the others).
	accountOf func(member string) string
}

// planIAM plans the module over the repository's files, the spec replaced by specYAML when
// it is not nil, and the HCL by hcl's files when given.
func planIAM(t *testing.T, specYAML []byte, hcl map[string][]byte) (*iamModel, error) {
	t.Helper()
	m := loadModule(t)
	if hcl != nil {
		var err error
		if m, err = ParseModule(m.Dir, hcl); err != nil {
			return nil, err
		}
	}
	specPath := filepath.Join(repoRoot(t), specFile)
	opts := PlanOptions{Project: "waooaw-test"}
	if specYAML != nil {
		opts.Files = map[string][]byte{specPath: specYAML}
	} else {
		specYAML = readFile(t, specPath)
	}
	var s iamSpec
	if err := yaml.Unmarshal(specYAML, &s); err != nil {
		return nil, fmt.Errorf("yaml.Unmarshal: %w", err)
	}
	p, err := m.Plan(opts)
	if err != nil {
		return nil, err
	}
	grants, err := p.Grants()
	if err != nil {
		return nil, err
	}
	return &iamModel{spec: s, plan: p, grants: grants, accountOf: func(member string) string {
		id, ok := strings.CutPrefix(member, "serviceAccount:")
		if !ok {
			return ""
		}
		id, ok = strings.CutSuffix(id, "@"+standInProject+".iam.gserviceaccount.com")
		if !ok {
			return ""
		}
		return id
	}}, nil
}

// mayInvoke lists the functions account may invoke: all of them through a project role that
// invokes, or each one it holds an invoking role on.
func (m *iamModel) mayInvoke(account string) ([]string, []string) {
	var fns, problems []string
	all := func() []string {
		var out []string
		for _, f := range m.spec.Functions {
			out = append(out, f.Name)
		}
		return out
	}
	for _, g := range m.grants {
		if m.accountOf(g.Member) != account {
			continue
		}
		rg, ok := roleGrants[g.Role]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s holds %s, which the check does not know", account, g.Role))
			continue
		}
		if !rg.invokesFunctions {
			continue
		}
		if g.Resource == "project" {
			fns = append(fns, all()...)
		} else if fn, ok := strings.CutPrefix(g.Resource, "function:"); ok {
			fns = append(fns, fn)
		}
	}
	sort.Strings(fns)
	return slices.Compact(fns), problems
}

// workflowInvokerProblems: each workflow's identity may invoke exactly the functions of its
// function_urls.
func (m *iamModel) workflowInvokerProblems() []string {
	var problems []string
	for _, w := range m.spec.Workflows {
		var want []string
		for _, fn := range w.FunctionURLs {
			want = append(want, fn)
		}
		sort.Strings(want)
		want = slices.Compact(want)
		got, ps := m.mayInvoke(w.ServiceAccount)
		problems = append(problems, ps...)
		if !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("workflow %s (%s) may invoke %v, its function_urls name %v", w.Name, w.ServiceAccount, got, want))
		}
	}
	return problems
}

// workflowsInvokerProblems: the identities that may start or resume executions are exactly
// the callback senders' service accounts.
func (m *iamModel) workflowsInvokerProblems() []string {
	var problems, got, want []string
	for _, f := range m.spec.Functions {
		if slices.Contains(callbackSenders, f.Name) {
			want = append(want, f.ServiceAccount)
		}
	}
	for _, g := range m.grants {
		rg, ok := roleGrants[g.Role]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s holds %s on %s, which the check does not know", g.Member, g.Role, g.Resource))
			continue
		}
		if !rg.invokesWorkflows {
			continue
		}
		if sa := m.accountOf(g.Member); sa != "" {
			got = append(got, sa)
		} else {
			got = append(got, g.Member)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if got, want = slices.Compact(got), slices.Compact(want); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("workflows may be invoked by %v, want exactly %v (the service accounts of %v)", got, want, callbackSenders))
	}
	return problems
}

// publicProblems: anyone may invoke a function only when the spec marks it public, and a
// public function is indeed open.
func (m *iamModel) publicProblems() []string {
	var problems []string
	open := map[string]bool{}
	for _, g := range m.grants {
		if !slices.Contains(publicMembers, g.Member) {
			continue
		}
		fn, ok := strings.CutPrefix(g.Resource, "function:")
		if !ok || !roleGrants[g.Role].invokesFunctions {
			problems = append(problems, fmt.Sprintf("%s holds %s on %s", g.Member, g.Role, g.Resource))
			continue
		}
		open[fn] = true
	}
	for _, f := range m.spec.Functions {
		if f.Public != slices.Contains(publicFunctions, f.Name) {
			problems = append(problems, fmt.Sprintf("function %s: public %v in the spec; only %v may be", f.Name, f.Public, publicFunctions))
		}
		if open[f.Name] != f.Public {
			problems = append(problems, fmt.Sprintf("function %s: public in the spec %v, invokable by anyone %v", f.Name, f.Public, open[f.Name]))
		}
	}
	return problems
}

// workflowProblems: each deployed workflow runs as its spec account, logs errors only and is
// given the URL of each function its function_urls name.
func (m *iamModel) workflowProblems() []string {
	var problems []string
	insts := m.plan.Instances["google_workflows_workflow.workflow"]
	if len(insts) != len(m.spec.Workflows) {
		problems = append(problems, fmt.Sprintf("%d workflows planned, the spec has %d", len(insts), len(m.spec.Workflows)))
	}
	fns := m.plan.Instances["google_cloudfunctions2_function.function"]
	for _, w := range m.spec.Workflows {
		v, ok := insts[w.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("workflow %s not planned", w.Name))
			continue
		}
		if got := attrString(v, "call_log_level"); got != "LOG_ERRORS_ONLY" {
			problems = append(problems, fmt.Sprintf("workflow %s: call_log_level %q, want LOG_ERRORS_ONLY", w.Name, got))
		}
		if got, want := attrString(v, "service_account"), ServiceAccountEmail(w.ServiceAccount); got != want {
			problems = append(problems, fmt.Sprintf("workflow %s: runs as %q, want %s", w.Name, got, want))
		}
		env := map[string]string{}
		if e := v.GetAttr("user_env_vars"); e.IsWhollyKnown() && !e.IsNull() && e.CanIterateElements() {
			for k, val := range e.AsValueMap() {
				env[k] = val.AsString()
			}
		}
		want := map[string]string{}
		for name, fn := range w.FunctionURLs {
			want[name] = serviceURI(fns[fn])
		}
		if fmt.Sprint(env) != fmt.Sprint(want) {
			problems = append(problems, fmt.Sprintf("workflow %s: user_env_vars %v, want %v", w.Name, env, want))
		}
	}
	return problems
}

// pushAccount is the identity Pub/Sub signs pushes with (iam.tf).
const pushAccount = "pubsub-push"

// pushProblems: every push subscription pushes to its function's URL at the topic's path
// with an OIDC token of the push identity for that URL, and the push identity may invoke
// exactly the functions pushed to.
func (m *iamModel) pushProblems() []string {
	var problems, want []string
	subs := m.plan.Instances["google_pubsub_subscription.subscription"]
	fns := m.plan.Instances["google_cloudfunctions2_function.function"]
	for _, s := range m.spec.Subscriptions {
		if s.PushFunction == "" {
			continue
		}
		want = append(want, s.PushFunction)
		uri := serviceURI(fns[s.PushFunction])
		pc := subs[s.Name]
		if !pc.IsKnown() || pc.IsNull() || !pc.Type().HasAttribute("push_config") || pc.GetAttr("push_config").LengthInt() != 1 {
			problems = append(problems, fmt.Sprintf("subscription %s: no push_config", s.Name))
			continue
		}
		push := pc.GetAttr("push_config").Index(cty.NumberIntVal(0))
		if got, w := attrString(push, "push_endpoint"), uri+"/projects/"+m.plan.Project+"/topics/"+s.Topic; got != w {
			problems = append(problems, fmt.Sprintf("subscription %s: pushes to %q, want %s", s.Name, got, w))
		}
		var oidc cty.Value = cty.NullVal(cty.DynamicPseudoType)
		if push.Type().HasAttribute("oidc_token") && push.GetAttr("oidc_token").LengthInt() == 1 {
			oidc = push.GetAttr("oidc_token").Index(cty.NumberIntVal(0))
		}
		if got := attrString(oidc, "service_account_email"); got != ServiceAccountEmail(pushAccount) || attrString(oidc, "audience") != uri {
			problems = append(problems, fmt.Sprintf("subscription %s: OIDC token of %q for %q, want %s for %s", s.Name, got, attrString(oidc, "audience"), ServiceAccountEmail(pushAccount), uri))
		}
	}
	sort.Strings(want)
	got, ps := m.mayInvoke(pushAccount)
	problems = append(problems, ps...)
	if want = slices.Compact(want); !slices.Equal(got, want) {
		problems = append(problems, fmt.Sprintf("the push identity may invoke %v, want %v", got, want))
	}
	return problems
}

// serviceURI is a planned function's URL.
func serviceURI(fn cty.Value) string {
	if !fn.IsKnown() || fn.IsNull() || !fn.Type().IsObjectType() || !fn.Type().HasAttribute("service_config") {
		return ""
	}
	sc := fn.GetAttr("service_config")
	if !sc.Type().IsTupleType() || sc.LengthInt() != 1 {
		return ""
	}
	return attrString(sc.Index(cty.NumberIntVal(0)), "uri")
}

// TestIAM holds the repository's module and spec to the rules: the workflow's identity
// invokes only its stage functions, only the gateway and the registry touch executions,
// private functions stay private, the workflow logs errors only and finds its functions.
func TestIAM(t *testing.T) {
	m, err := planIAM(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.spec.Workflows) == 0 || len(m.grants) == 0 {
		t.Fatal("no workflows or no grants: the checks would pass on nothing")
	}
	checks := []struct {
		name  string
		check func() []string
	}{
		{"workflow invokes only its functions", m.workflowInvokerProblems},
		{"only callback senders invoke workflows", m.workflowsInvokerProblems},
		{"private functions are private", m.publicProblems},
		{"workflow settings", m.workflowProblems},
		{"push subscriptions", m.pushProblems},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.check() {
				t.Error(p)
			}
		})
	}
}

// TestIAMChecksBite: each check fails on a spec or module that breaks its rule.
func TestIAMChecksBite(t *testing.T) {
	spec := string(readFile(t, filepath.Join(repoRoot(t), specFile)))
	tf := map[string][]byte{}
	for name := range loadModule(t).Files {
		tf[name] = readFile(t, name)
	}
	replace := func(s, old, new string) string {
		t.Helper()
		if !strings.Contains(s, old) {
			t.Fatalf("the variant's anchor %q is not in the file any more", old)
		}
		return strings.Replace(s, old, new, 1)
	}
	withTF := func(file, old, new string) map[string][]byte {
		out := map[string][]byte{}
		for k, v := range tf {
			out[k] = v
		}
		out[file] = []byte(replace(string(tf[file]), old, new))
		return out
	}
	tests := []struct {
		name  string
		spec  string
		tf    map[string][]byte
		check func(*iamModel) []string
		want  string
	}{
		{"workflow account with a project invoker role",
			replace(spec, "- name: wf-agent-creation\n    roles: [roles/logging.logWriter]", "- name: wf-agent-creation\n    roles: [roles/logging.logWriter, roles/run.invoker]"), nil,
			(*iamModel).workflowInvokerProblems, "may invoke [architect auditor gateway genesis guardian pdp registry]"},
		{"workflow account invoker on every function", "",
			withTF("locals.tf", "for fn in distinct(values(try(w.function_urls, {})))", "for fn in keys(local.functions)"),
			(*iamModel).workflowInvokerProblems, "may invoke [architect auditor gateway"},
		{"workflow account with an unknown role",
			replace(spec, "roles: [roles/logging.logWriter]", "roles: [roles/logging.logWriter, roles/iam.serviceAccountUser]"), nil,
			(*iamModel).workflowInvokerProblems, "does not know"},
		{"pdp may start executions",
			replace(spec, "- name: fn-pdp\n    # publishes the attestation of every decision on policy_attestations\n    roles: [roles/pubsub.publisher]",
				"- name: fn-pdp\n    roles: [roles/pubsub.publisher, roles/workflows.invoker]"), nil,
			(*iamModel).workflowsInvokerProblems, "fn-pdp"},
		{"registry may not send callbacks",
			replace(spec, "roles: [roles/datastore.user, roles/pubsub.publisher, roles/workflows.invoker]\n", "roles: [roles/datastore.user, roles/pubsub.publisher]\n"), nil,
			(*iamModel).workflowsInvokerProblems, "want exactly [fn-gateway fn-registry]"},
		{"private function made public",
			replace(spec, "entry_point: PDP\n", "entry_point: PDP\n    public: true\n"), nil,
			(*iamModel).publicProblems, "function pdp: public true in the spec"},
		{"every function open", "",
			withTF("locals.tf", "if try(f.public, false) }", "}"),
			(*iamModel).publicProblems, "function genesis: public in the spec false, invokable by anyone true"},
		{"call log level in the spec",
			replace(spec, "call_log_level: LOG_ERRORS_ONLY", "call_log_level: LOG_ALL_CALLS"), nil,
			(*iamModel).workflowProblems, `call_log_level "LOG_ALL_CALLS"`},
		{"call log level ignored by the module", "",
			withTF("workflows.tf", "call_log_level  = each.value.call_log_level", "call_log_level  = \"LOG_ALL_CALLS\""),
			(*iamModel).workflowProblems, `call_log_level "LOG_ALL_CALLS"`},
		{"function url missing", "",
			withTF("workflows.tf", "env => google_cloudfunctions2_function.function[fn].service_config[0].uri", `env => "https://example.test"`),
			(*iamModel).workflowProblems, "user_env_vars map[ARCHITECT_URL:https://example.test"},
		{"push identity invokes every function", "",
			withTF("locals.tf", "push_targets = toset([for s in local.push_subscriptions : s.push_function])", "push_targets = toset(keys(local.functions))"),
			(*iamModel).pushProblems, "the push identity may invoke [architect auditor gateway"},
		{"push without a token", "",
			withTF("pubsub.tf", "service_account_email = google_service_account.push.email", `service_account_email = "someone@example.test"`),
			(*iamModel).pushProblems, `subscription registry-health_events: OIDC token of "someone@example.test"`},
		{"workflow runs as the default identity", "",
			withTF("workflows.tf", "service_account = google_service_account.function[each.value.service_account].email", "service_account = null"),
			(*iamModel).workflowProblems, `runs as ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var specYAML []byte
			if tt.spec != "" {
				specYAML = []byte(tt.spec)
			}
			m, err := planIAM(t, specYAML, tt.tf)
			if err != nil {
				t.Fatal(err)
			}
			problems := tt.check(m)
			if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
				t.Fatalf("problems %q do not mention %q", problems, tt.want)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("os.ReadFile: %v", err)
	}
	return b
}
