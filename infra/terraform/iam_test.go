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
		Secrets        []struct {
			Secret string `yaml:"secret"`
		} `yaml:"secrets"`
		ReadsSecrets []string `yaml:"reads_secrets"`
		Publishes    []string `yaml:"publishes"`
	} `yaml:"functions"`
	Secrets []struct {
		Name         string `yaml:"name"`
		AICredential *struct {
			Engagement string `yaml:"engagement"`
			Agent      string `yaml:"agent"`
			Type       string `yaml:"type"`
		} `yaml:"ai_credential"`
	} `yaml:"secrets"`
	AuditLog struct {
		Database string   `yaml:"database"`
		Writer   string   `yaml:"writer"`
		Readers  []string `yaml:"readers"`
	} `yaml:"audit_log"`
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
// (docs/agent-creation.md): the gateway (requests, Governor decisions, acknowledgements of a
// notification cascade), the registry (the first healthy event) and the notifier, which
// starts one notification cascade per approval and cancels it on the decision but sends no
// callback (docs/notifier.md). Workflows has no per-workflow IAM, so its role reaches every
// workflow: no other identity may touch an execution.
var callbackSenders = []string{"gateway", "notifier", "registry"}

// roleGrants says, for every role the module grants, whether it lets its holder invoke a
// function (run.routes.invoke), start and resume workflow executions
// (workflows.executions.create, workflows.callbacks.send) or write Firestore documents
// (datastore.entities.create/update/delete). A role missing here fails the checks until it
// is added with what it grants.
var roleGrants = map[string]struct{ invokesFunctions, invokesWorkflows, writesFirestore bool }{
	"roles/datastore.user":                 {writesFirestore: true},
	"roles/datastore.owner":                {writesFirestore: true},
	"roles/datastore.viewer":               {},
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
	"roles/editor":                         {invokesFunctions: true, invokesWorkflows: true, writesFirestore: true},
	"roles/owner":                          {invokesFunctions: true, invokesWorkflows: true, writesFirestore: true},
}

// projectRoles are the roles a function's or workflow's identity may hold on the project,
// each because no narrower grant exists for what it allows. Anything else (a publisher, a
// secret accessor, an invoker) is granted on the resource it is needed on.
var projectRoles = map[string]string{
	"roles/workflows.invoker": "Workflows has no per-workflow IAM",
	"roles/logging.logWriter": "log writing is granted on the project only",
	// Firestore's roles exist on the project only and are narrowed by a condition on one
	// database (firestoreProblems).
	"roles/datastore.user":   "Firestore, conditioned on one database",
	"roles/datastore.viewer": "Firestore, conditioned on one database",
}

// codePublishes is what each function's code publishes, read from the code: the gateway's
// webhooks (webhook.go: health_events, slo_breach, approvals, each with an audit event), its
// engagement changes (audit_events) and its policy attestations (eventsink); the pdp's
// attestations; genesis's approvals and decisions; every stage function's audit events
// (agentreq.Recorder) and the spend events of their AI reviews (shared/ai); the auditor's alert on an event id reused with other content. The spec's `publishes` must say exactly this, so widening a
// function's publisher rights is a change of this table, reviewed as such.
var codePublishes = map[string][]string{
	"gateway":   {"approvals", "audit_events", "health_events", "policy_attestations", "slo_breach"},
	"auditor":   {"slo_breach"},
	"pdp":       {"policy_attestations"},
	"genesis":   {"approvals", "audit_events", "decisions", "spend_events"},
	"architect": {"audit_events", "spend_events"},
	"guardian":  {"audit_events", "slo_breach", "spend_events"},
	"registry":  {"audit_events", "policy_attestations"},
	// budgetguard: each transition's audit entry, the alert's approval request and the
	// budget suspensions the registry applies.
	"budgetguard": {"approvals", "audit_events", "health_events"},
	// notifier: each send, each failure after its retries and each cancellation, on the
	// engagement's stream.
	"notifier": {"audit_events"},
}

// aiAgents is the agent each function's AI reviews run as, read from the code (its Agent or
// Actor constant): the AI keys its identity may read are that agent's alone.
var aiAgents = map[string]string{
	"genesis":   "genesis",
	"architect": "systems_architect",
	"guardian":  "vision_guardian",
}

// aiCredentialTypes are the keys each AI agent has, one per provider.
var aiCredentialTypes = []string{"groq_api_key", "openai_api_key"}

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

// specAccounts is every service account the spec names: functions' and workflows'.
func (m *iamModel) specAccounts() map[string]bool {
	out := map[string]bool{}
	for _, f := range m.spec.Functions {
		out[f.ServiceAccount] = true
	}
	for _, w := range m.spec.Workflows {
		out[w.ServiceAccount] = true
	}
	return out
}

// projectRoleProblems: a function's or workflow's identity holds on the project only the
// roles of projectRoles.
func (m *iamModel) projectRoleProblems() []string {
	var problems []string
	accounts := m.specAccounts()
	for _, g := range m.grants {
		if g.Resource != "project" || !accounts[m.accountOf(g.Member)] {
			continue
		}
		if _, ok := projectRoles[g.Role]; !ok {
			problems = append(problems, fmt.Sprintf("%s holds %s on the project: grant it on the resources it needs", m.accountOf(g.Member), g.Role))
		}
	}
	return problems
}

// sortedSet is the sorted distinct values of in.
func sortedSet(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return slices.Compact(out)
}

// byAccount maps each function's service account to the union of what get reads from its
// functions.
func (m *iamModel) byAccount(get func(i int) []string) map[string][]string {
	out := map[string][]string{}
	for i, f := range m.spec.Functions {
		out[f.ServiceAccount] = sortedSet(append(out[f.ServiceAccount], get(i)...))
	}
	return out
}

// resourceGrants maps each spec account to the resources of kind ("topic", "secret") it holds
// role on, and reports that role held on the project by anyone of the spec.
func (m *iamModel) resourceGrants(kind, role string) (map[string][]string, []string) {
	var problems []string
	accounts := m.specAccounts()
	got := map[string][]string{}
	for _, g := range m.grants {
		sa := m.accountOf(g.Member)
		if g.Role != role || !accounts[sa] {
			continue
		}
		if g.Resource == "project" {
			problems = append(problems, fmt.Sprintf("%s holds %s on the project", sa, role))
			continue
		}
		if name, ok := strings.CutPrefix(g.Resource, kind+":"); ok {
			got[sa] = sortedSet(append(got[sa], name))
		}
	}
	return got, problems
}

// publisherProblems: each identity publishes on exactly the topics its functions publish on,
// the spec says what the code publishes, and nobody publishes project-wide.
func (m *iamModel) publisherProblems() []string {
	got, problems := m.resourceGrants("topic", "roles/pubsub.publisher")
	want := m.byAccount(func(i int) []string { return m.spec.Functions[i].Publishes })
	for sa, topics := range want {
		if !slices.Equal(got[sa], topics) {
			problems = append(problems, fmt.Sprintf("%s may publish on %v, its functions publish on %v", sa, got[sa], topics))
		}
	}
	for sa, topics := range got {
		if _, ok := want[sa]; !ok {
			problems = append(problems, fmt.Sprintf("%s, no function's identity, may publish on %v", sa, topics))
		}
	}
	for _, f := range m.spec.Functions {
		code, ok := codePublishes[f.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("function %s: what its code publishes is not in codePublishes", f.Name))
			continue
		}
		if spec := sortedSet(f.Publishes); !slices.Equal(spec, sortedSet(code)) {
			problems = append(problems, fmt.Sprintf("function %s: the spec publishes on %v, the code on %v", f.Name, spec, code))
		}
	}
	return problems
}

// aiKeyProblems: an agent's AI keys are readable by its own function's identity and by no
// other, and each AI agent's function may read every key its agent has.
func (m *iamModel) aiKeyProblems() []string {
	got, problems := m.resourceGrants("secret", "roles/secretmanager.secretAccessor")
	accountOf := map[string]string{} // agent -> its function's account
	for _, f := range m.spec.Functions {
		if agent, ok := aiAgents[f.Name]; ok {
			accountOf[agent] = f.ServiceAccount
		}
	}
	has := map[string][]string{} // agent -> its credential types
	for _, sec := range m.spec.Secrets {
		c := sec.AICredential
		if c == nil {
			continue
		}
		has[c.Agent] = append(has[c.Agent], c.Type)
		owner, ok := accountOf[c.Agent]
		if !ok {
			problems = append(problems, fmt.Sprintf("AI key %s belongs to %s, which no function runs as", sec.Name, c.Agent))
		}
		for sa, secrets := range got {
			if slices.Contains(secrets, sec.Name) && sa != owner {
				problems = append(problems, fmt.Sprintf("%s may read AI key %s of agent %s", sa, sec.Name, c.Agent))
			}
		}
		if ok && !slices.Contains(got[owner], sec.Name) {
			problems = append(problems, fmt.Sprintf("%s may not read its agent %s's AI key %s", owner, c.Agent, sec.Name))
		}
	}
	for agent := range accountOf {
		if types := sortedSet(has[agent]); !slices.Equal(types, aiCredentialTypes) {
			problems = append(problems, fmt.Sprintf("agent %s has AI keys %v, want %v", agent, types, aiCredentialTypes))
		}
	}
	return problems
}

// secretProblems: each identity may access exactly the secrets its functions mount or read by
// name, and nobody accesses secrets project-wide.
func (m *iamModel) secretProblems() []string {
	got, problems := m.resourceGrants("secret", "roles/secretmanager.secretAccessor")
	want := m.byAccount(func(i int) []string {
		f := m.spec.Functions[i]
		out := append([]string(nil), f.ReadsSecrets...)
		for _, s := range f.Secrets {
			out = append(out, s.Secret)
		}
		return out
	})
	for sa, secrets := range want {
		if !slices.Equal(got[sa], secrets) {
			problems = append(problems, fmt.Sprintf("%s may access secrets %v, its functions read %v", sa, got[sa], secrets))
		}
	}
	for sa, secrets := range got {
		if _, ok := want[sa]; !ok {
			problems = append(problems, fmt.Sprintf("%s, no function's identity, may access secrets %v", sa, secrets))
		}
	}
	return problems
}

// auditLogWriter is the one function that appends to the audit log (functions/auditor).
const auditLogWriter = "auditor"

// databaseCondition is the database a condition limits a Firestore grant to: ok is false
// for anything but `resource.name == "projects/<project>/databases/<db>"` ("" for none).
func (m *iamModel) databaseCondition(cond string) (string, bool) {
	prefix := `resource.name == "projects/` + m.plan.Project + `/databases/`
	rest, ok := strings.CutPrefix(cond, prefix)
	if !ok {
		return "", false
	}
	db, ok := strings.CutSuffix(rest, `"`)
	return db, ok && db != "" && !strings.ContainsAny(db, `"/ `)
}

// firestoreProblems: every Firestore grant holds on one database by condition; only the
// audit log's writer may write its database, never a public function's identity; its readers
// may read it; each of them is told its name.
func (m *iamModel) firestoreProblems() []string {
	var problems []string
	fnAccount := map[string]string{}
	public := map[string]bool{}
	for _, f := range m.spec.Functions {
		fnAccount[f.Name] = f.ServiceAccount
		if f.Public {
			public[f.ServiceAccount] = true
		}
	}
	al := m.spec.AuditLog
	if al.Database == "" {
		return []string{"the spec has no audit_log.database"}
	}
	if al.Writer != auditLogWriter {
		problems = append(problems, fmt.Sprintf("audit_log.writer is %s, want %s: the function that appends the log", al.Writer, auditLogWriter))
	}
	writer := fnAccount[al.Writer]
	writes, reads := map[string]bool{}, map[string]bool{}
	for _, g := range m.grants {
		rg := roleGrants[g.Role]
		firestoreRole := strings.HasPrefix(g.Role, "roles/datastore.")
		if g.Resource != "project" || (!firestoreRole && !rg.writesFirestore) {
			continue
		}
		who := m.accountOf(g.Member)
		if who == "" {
			who = g.Member
		}
		db, ok := m.databaseCondition(g.Condition)
		if firestoreRole && !ok {
			problems = append(problems, fmt.Sprintf("%s holds %s on every database (condition %q)", who, g.Role, g.Condition))
		}
		if ok && db != al.Database {
			continue
		}
		if rg.writesFirestore {
			writes[who] = true
		} else {
			reads[who] = true
		}
	}
	for who := range writes {
		switch {
		case public[who]:
			problems = append(problems, fmt.Sprintf("%s, a public function's identity, may write the audit log's database", who))
		case who != writer:
			problems = append(problems, fmt.Sprintf("%s may write the audit log's database; only %s (%s) may", who, writer, al.Writer))
		}
	}
	if !writes[writer] {
		problems = append(problems, fmt.Sprintf("%s (%s) may not write the audit log's database", writer, al.Writer))
	}
	for _, r := range al.Readers {
		if !reads[fnAccount[r]] && !writes[fnAccount[r]] {
			problems = append(problems, fmt.Sprintf("%s (%s) may not read the audit log's database", fnAccount[r], r))
		}
	}
	fns := m.plan.Instances["google_cloudfunctions2_function.function"]
	for _, fn := range append([]string{al.Writer}, al.Readers...) {
		if got := functionEnv(fns[fn])["WAOOAW_AUDIT_DATABASE"]; got != al.Database {
			problems = append(problems, fmt.Sprintf("function %s: WAOOAW_AUDIT_DATABASE %q, want %q", fn, got, al.Database))
		}
	}
	return problems
}

// ingressProblems: the public function answers anyone, every other one requests from inside
// the project only.
func (m *iamModel) ingressProblems() []string {
	var problems []string
	fns := m.plan.Instances["google_cloudfunctions2_function.function"]
	for _, f := range m.spec.Functions {
		want := "ALLOW_INTERNAL_ONLY"
		if f.Public {
			want = "ALLOW_ALL"
		}
		if got := attrString(serviceConfig(fns[f.Name]), "ingress_settings"); got != want {
			problems = append(problems, fmt.Sprintf("function %s: ingress_settings %q, want %s", f.Name, got, want))
		}
	}
	return problems
}

// serviceConfig is a planned function's service_config block.
func serviceConfig(fn cty.Value) cty.Value {
	if !fn.IsKnown() || fn.IsNull() || !fn.Type().IsObjectType() || !fn.Type().HasAttribute("service_config") {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	sc := fn.GetAttr("service_config")
	if !sc.Type().IsTupleType() || sc.LengthInt() != 1 {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return sc.Index(cty.NumberIntVal(0))
}

// functionEnv is a planned function's environment variables.
func functionEnv(fn cty.Value) map[string]string {
	out := map[string]string{}
	sc := serviceConfig(fn)
	if sc.IsNull() || !sc.Type().HasAttribute("environment_variables") {
		return out
	}
	e := sc.GetAttr("environment_variables")
	if !e.IsWhollyKnown() || e.IsNull() || !e.CanIterateElements() {
		return out
	}
	for k, v := range e.AsValueMap() {
		if v.Type() == cty.String {
			out[k] = v.AsString()
		}
	}
	return out
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
		{"project roles only where nothing narrower exists", m.projectRoleProblems},
		{"publishers per topic", m.publisherProblems},
		{"secret access per secret", m.secretProblems},
		{"AI keys per agent", m.aiKeyProblems},
		{"firestore per database, the audit log written by its writer alone", m.firestoreProblems},
		{"private functions internal only", m.ingressProblems},
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
			(*iamModel).workflowInvokerProblems, "may invoke [architect auditor budgetguard gateway genesis guardian notifier pdp registry]"},
		{"workflow account invoker on every function", "",
			withTF("locals.tf", "for fn in distinct(values(try(w.function_urls, {})))", "for fn in keys(local.functions)"),
			(*iamModel).workflowInvokerProblems, "may invoke [architect auditor budgetguard gateway"},
		{"workflow account with an unknown role",
			replace(spec, "roles: [roles/logging.logWriter]", "roles: [roles/logging.logWriter, roles/iam.serviceAccountUser]"), nil,
			(*iamModel).workflowInvokerProblems, "does not know"},
		{"pdp may start executions",
			replace(spec, "- name: fn-pdp\n    roles: []", "- name: fn-pdp\n    roles: [roles/workflows.invoker]"), nil,
			(*iamModel).workflowsInvokerProblems, "fn-pdp"},
		{"registry may not send callbacks",
			replace(spec, "- name: fn-registry\n    # workflows.invoker: it delivers the first healthy event to the deploy's callback. Only the\n    # gateway, the registry and the notifier hold it; only the gateway and the registry send\n    # callbacks (the notifier starts and cancels its cascades).\n    roles: [roles/datastore.user, roles/workflows.invoker]\n",
				"- name: fn-registry\n    roles: [roles/datastore.user]\n"), nil,
			(*iamModel).workflowsInvokerProblems, "want exactly [fn-gateway fn-notifier fn-registry]"},
		{"notifier may not start its cascades",
			replace(spec, "- name: fn-notifier\n    roles: [roles/datastore.user, roles/workflows.invoker]\n", "- name: fn-notifier\n    roles: [roles/datastore.user]\n"), nil,
			(*iamModel).workflowsInvokerProblems, "want exactly [fn-gateway fn-notifier fn-registry]"},
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
			(*iamModel).pushProblems, "the push identity may invoke [architect auditor budgetguard gateway"},
		{"push without a token", "",
			withTF("pubsub.tf", "service_account_email = google_service_account.push.email", `service_account_email = "someone@example.test"`),
			(*iamModel).pushProblems, `subscription registry-health_events: OIDC token of "someone@example.test"`},
		{"gateway publishes project-wide again",
			replace(spec, "roles: [roles/datastore.user, roles/workflows.invoker]\n  # The auditor", "roles: [roles/pubsub.publisher, roles/datastore.user, roles/workflows.invoker]\n  # The auditor"), nil,
			(*iamModel).projectRoleProblems, "fn-gateway holds roles/pubsub.publisher on the project"},
		{"gateway publishes project-wide again, as publishers see it",
			replace(spec, "roles: [roles/datastore.user, roles/workflows.invoker]\n  # The auditor", "roles: [roles/pubsub.publisher, roles/datastore.user, roles/workflows.invoker]\n  # The auditor"), nil,
			(*iamModel).publisherProblems, "fn-gateway holds roles/pubsub.publisher on the project"},
		{"gateway reads every secret project-wide",
			replace(spec, "roles: [roles/datastore.user, roles/workflows.invoker]\n  # The auditor", "roles: [roles/secretmanager.secretAccessor, roles/datastore.user, roles/workflows.invoker]\n  # The auditor"), nil,
			(*iamModel).projectRoleProblems, "fn-gateway holds roles/secretmanager.secretAccessor on the project"},
		{"pdp publishes on audit_events in the spec",
			replace(spec, "publishes: [policy_attestations]", "publishes: [policy_attestations, audit_events]"), nil,
			(*iamModel).publisherProblems, "function pdp: the spec publishes on [audit_events policy_attestations], the code on [policy_attestations]"},
		{"every identity publishes on every topic", "",
			withTF("locals.tf", "[for t in try(f.publishes, []) : { account = f.service_account, topic = t }]", "[for t in keys(local.topics) : { account = f.service_account, topic = t }]"),
			(*iamModel).publisherProblems, "fn-pdp may publish on [approvals audit_events budget_alerts"},
		{"every identity reads every secret", "",
			withTF("locals.tf", "for s in distinct(concat([for m in try(f.secrets, []) : m.secret], try(f.reads_secrets, [])))", "for s in keys(local.secrets)"),
			(*iamModel).secretProblems, "fn-auditor may access secrets [audit-anchor-key jwks notification-ack-key notify-email notify-webhook notify-webhook-2 platform-genesis-groq_5Fapi_5Fkey"},
		{"firestore roles on every database", "",
			withTF("iam.tf", "for_each = contains(local.firestore_roles, each.value.role) ? [google_firestore_database.default.name] : []", "for_each = []"),
			(*iamModel).firestoreProblems, "fn-gateway, a public function's identity, may write the audit log's database"},
		{"readers may write the audit log", "",
			withTF("locals.tf", `role = "roles/datastore.viewer"`, `role = "roles/datastore.user"`),
			(*iamModel).firestoreProblems, "fn-guardian may write the audit log's database; only fn-auditor (auditor) may"},
		{"the writer moved to the guardian",
			replace(spec, "writer: auditor\n  readers: [gateway, guardian]", "writer: guardian\n  readers: [gateway, auditor]"), nil,
			(*iamModel).firestoreProblems, "audit_log.writer is guardian, want auditor"},
		{"audit log database not told", "",
			withTF("functions.tf", "try(local.audit_log_env[each.key], {}), ", ""),
			(*iamModel).firestoreProblems, `function auditor: WAOOAW_AUDIT_DATABASE "", want "audit"`},
		{"private functions open to the internet", "",
			withTF("functions.tf", `contains(keys(local.public_functions), each.key) ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"`, `"ALLOW_ALL"`),
			(*iamModel).ingressProblems, `function genesis: ingress_settings "ALLOW_ALL", want ALLOW_INTERNAL_ONLY`},
		{"guardian reads the architect's AI key",
			replace(spec, "reads_secrets: [audit-anchor-key, ", "reads_secrets: [audit-anchor-key, platform-systems_5Farchitect-groq_5Fapi_5Fkey, "), nil,
			(*iamModel).aiKeyProblems, "fn-guardian may read AI key platform-systems_5Farchitect-groq_5Fapi_5Fkey of agent systems_architect"},
		{"every AI key granted to every stage function", "",
			withTF("locals.tf", "for s in distinct(concat([for m in try(f.secrets, []) : m.secret], try(f.reads_secrets, []))) : { account = f.service_account, secret = s }",
				"for s in distinct(concat([for m in try(f.secrets, []) : m.secret], try(f.reads_secrets, []), [for x in local.spec.secrets : x.name if try(x.ai_credential, null) != null])) : { account = f.service_account, secret = s }"),
			(*iamModel).aiKeyProblems, "fn-genesis may read AI key platform-vision_5Fguardian-groq_5Fapi_5Fkey"},
		{"an agent without its fallback key",
			replace(replace(spec, "  - name: platform-genesis-openai_5Fapi_5Fkey\n    ai_credential: {engagement: platform, agent: genesis, type: openai_api_key}\n", ""),
				"reads_secrets: [platform-genesis-groq_5Fapi_5Fkey, platform-genesis-openai_5Fapi_5Fkey]", "reads_secrets: [platform-genesis-groq_5Fapi_5Fkey]"), nil,
			(*iamModel).aiKeyProblems, "agent genesis has AI keys [groq_api_key]"},
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
