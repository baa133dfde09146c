// Package infraspec reads infra/infrastructure.yaml, the single description of what the
// platform deploys, so the local stack, the tests and Terraform agree on one set of names.
package infraspec

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"waooaw.dev/governance/shared/ai"
)

// RelPath is the file's path from the repository root.
const RelPath = "infra/infrastructure.yaml"

// Spec is infrastructure.yaml.
type Spec struct {
	Project         string           `yaml:"project"`
	Region          string           `yaml:"region"`
	Runtime         string           `yaml:"runtime"`
	Topics          []Topic          `yaml:"topics"`
	DeadLetter      DeadLetter       `yaml:"dead_letter"`
	Subscriptions   []Subscription   `yaml:"subscriptions"`
	Functions       []Function       `yaml:"functions"`
	ServiceAccounts []ServiceAccount `yaml:"service_accounts"`
	Secrets         []Secret         `yaml:"secrets"`
	Workflows       []Workflow       `yaml:"workflows"`
	Buckets         []Bucket         `yaml:"buckets"`
	Schedules       []Schedule       `yaml:"schedules"`
	Budget          Budget           `yaml:"budget"`
	AuditLog        AuditLog         `yaml:"audit_log"`
}

// Bucket is a Cloud Storage bucket.
type Bucket struct {
	Name string `yaml:"name"`
	// RetentionDays is the retention policy: no object is deleted or replaced younger.
	RetentionDays int `yaml:"retention_days"`
	// Creators are the service accounts that may create and read objects; nobody else is
	// granted anything on the bucket.
	Creators []string `yaml:"creators"`
}

// Schedule is a Cloud Scheduler job posting to a function's path.
type Schedule struct {
	Name     string `yaml:"name"`
	Cron     string `yaml:"cron"` // UTC
	Function string `yaml:"function"`
	Path     string `yaml:"path"`
}

// Every is how often the schedule runs. The local stack runs schedules on a ticker, so only
// crons of the form "*/N * * * *" (every N minutes) are taken.
func (s Schedule) Every() (time.Duration, error) {
	f := strings.Fields(s.Cron)
	if len(f) == 5 && f[1] == "*" && f[2] == "*" && f[3] == "*" && f[4] == "*" {
		if step, ok := strings.CutPrefix(f[0], "*/"); ok {
			if n, err := strconv.Atoi(step); err == nil && n >= 1 && n <= 59 {
				return time.Duration(n) * time.Minute, nil
			}
		}
	}
	return 0, fmt.Errorf("infraspec: schedule %s: cron %q: only \"*/N * * * *\" is supported", s.Name, s.Cron)
}

// Topic is a Pub/Sub topic with its Avro schema file.
type Topic struct {
	Name        string `yaml:"name"`
	Schema      string `yaml:"schema"`
	OrderingKey string `yaml:"ordering_key"`
	// OrderingShards, when set, makes the key one of that many shards of the field's value.
	OrderingShards int   `yaml:"ordering_shards"`
	AttachSchema   *bool `yaml:"attach_schema"`
}

// SchemaAttached says whether Pub/Sub enforces the schema on the topic (default yes).
func (t Topic) SchemaAttached() bool { return t.AttachSchema == nil || *t.AttachSchema }

// DeadLetter is the policy every subscription gets.
type DeadLetter struct {
	MaxDeliveryAttempts int    `yaml:"max_delivery_attempts"`
	Retention           string `yaml:"retention"`
	MinimumBackoff      string `yaml:"minimum_backoff"`
	MaximumBackoff      string `yaml:"maximum_backoff"`
}

// Subscription pushes a topic to a function.
type Subscription struct {
	Name               string `yaml:"name"`
	Topic              string `yaml:"topic"`
	PushFunction       string `yaml:"push_function"`
	AckDeadlineSeconds int    `yaml:"ack_deadline_seconds"`
	MessageOrdering    bool   `yaml:"message_ordering"`
}

// DeadLetterTopic is the name of the subscription's dead-letter topic.
func (s Subscription) DeadLetterTopic() string { return s.Name + "-dlq" }

// Function is a deployable Cloud Function.
type Function struct {
	Name           string            `yaml:"name"`
	Source         string            `yaml:"source"`
	EntryPoint     string            `yaml:"entry_point"`
	Trigger        Trigger           `yaml:"trigger"`
	Public         bool              `yaml:"public"` // invocable without Google credentials
	ServiceAccount string            `yaml:"service_account"`
	Memory         string            `yaml:"memory"`
	MaxInstances   int               `yaml:"max_instances"`
	Concurrency    int               `yaml:"concurrency"` // requests per instance (2nd gen)
	Env            map[string]string `yaml:"env"`
	Secrets        []SecretEnv       `yaml:"secrets"`
	// ReadsSecrets are the secrets the function reads by name at run time (not mounted).
	ReadsSecrets []string `yaml:"reads_secrets"`
	// Publishes are the topics the function publishes on; its identity may publish on these
	// and no other.
	Publishes []string `yaml:"publishes"`
}

// Trigger says how a function is invoked.
type Trigger struct {
	Type         string `yaml:"type"` // http | pubsub
	Topic        string `yaml:"topic"`
	Subscription string `yaml:"subscription"`
}

// SecretEnv exposes a secret to a function.
type SecretEnv struct {
	Name   string `yaml:"name"`
	Secret string `yaml:"secret"`
}

// ServiceAccount is a function's identity and its roles.
type ServiceAccount struct {
	Name  string   `yaml:"name"`
	Roles []string `yaml:"roles"`
}

// AuditLog says where the audit log lives and who may touch it.
type AuditLog struct {
	// Database is the Firestore database holding it, apart from (default).
	Database string `yaml:"database"`
	// Writer is the one function whose identity may write it; Readers may only read it.
	Writer  string   `yaml:"writer"`
	Readers []string `yaml:"readers"`
}

// Secret is a Secret Manager secret.
type Secret struct {
	Name string `yaml:"name"`
	// AICredential, on an AI provider key, says whose it is; Name is its ai.SecretName.
	AICredential *AICredential `yaml:"ai_credential"`
}

// AICredential is what an AI key's secret holds: {engagement_id}/{agent_id}/{credential_type}.
type AICredential struct {
	Engagement string `yaml:"engagement"`
	Agent      string `yaml:"agent"`
	Type       string `yaml:"type"`
}

// checkAICredential: an AI key's secret is named by ai.SecretName of whose it is, the name
// the router reads it by; any other name would be a key no call ever finds.
func (s Secret) checkAICredential() error {
	c := s.AICredential
	if c == nil {
		return nil
	}
	if c.Type != ai.CredGroq && c.Type != ai.CredOpenAI {
		return fmt.Errorf("infraspec: secret %s: ai_credential type %q is neither %s nor %s", s.Name, c.Type, ai.CredGroq, ai.CredOpenAI)
	}
	want, err := ai.SecretName(c.Engagement, c.Agent, c.Type)
	if err != nil {
		return fmt.Errorf("infraspec: secret %s: ai_credential: %w", s.Name, err)
	}
	if s.Name != want {
		return fmt.Errorf("infraspec: secret %s: ai_credential %s/%s/%s is named %s", s.Name, c.Engagement, c.Agent, c.Type, want)
	}
	return nil
}

// Workflow is a Cloud Workflows definition.
type Workflow struct {
	Name           string `yaml:"name"`
	Source         string `yaml:"source"` // the YAML file, relative to the repository root
	ServiceAccount string `yaml:"service_account"`
	CallLogLevel   string `yaml:"call_log_level"` // LOG_ERRORS_ONLY, ...
	// FunctionURLs maps a workflow user environment variable to the function whose URL it holds;
	// those functions are the only ones the workflow's service account may invoke.
	FunctionURLs map[string]string `yaml:"function_urls"`
}

// CallLogLevels are the levels Cloud Workflows accepts for call logging.
var CallLogLevels = []string{"LOG_ALL_CALLS", "LOG_ERRORS_ONLY", "LOG_NONE"}

// envName is what a workflow user environment variable may be called: sys.get_env takes any
// string, but a shell-style name is one every deploy tool passes through unchanged.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Budget is the billing budget.
type Budget struct {
	MonthlyCapUSD      float64 `yaml:"monthly_cap_usd"`
	NotificationsTopic string  `yaml:"notifications_topic"`
}

// Parse decodes and checks a spec; unknown keys are errors so a typo cannot pass silently.
func Parse(b []byte) (*Spec, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("infraspec: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Spec) check() error {
	topics := map[string]bool{}
	for _, t := range s.Topics {
		if topics[t.Name] {
			return fmt.Errorf("infraspec: topic %s declared twice", t.Name)
		}
		topics[t.Name] = true
	}
	fns := map[string]Function{}
	for _, f := range s.Functions {
		fns[f.Name] = f
	}
	for _, sub := range s.Subscriptions {
		if !topics[sub.Topic] {
			return fmt.Errorf("infraspec: subscription %s: unknown topic %s", sub.Name, sub.Topic)
		}
		if _, ok := fns[sub.PushFunction]; sub.PushFunction != "" && !ok {
			return fmt.Errorf("infraspec: subscription %s: unknown function %s", sub.Name, sub.PushFunction)
		}
	}
	for _, f := range s.Functions {
		switch f.Trigger.Type {
		case "http":
		case "pubsub":
			if !topics[f.Trigger.Topic] {
				return fmt.Errorf("infraspec: function %s: unknown topic %s", f.Name, f.Trigger.Topic)
			}
		default:
			return fmt.Errorf("infraspec: function %s: unknown trigger %q", f.Name, f.Trigger.Type)
		}
	}
	secrets := map[string]bool{}
	for _, sec := range s.Secrets {
		secrets[sec.Name] = true
		if err := sec.checkAICredential(); err != nil {
			return err
		}
	}
	for _, f := range s.Functions {
		if err := f.checkAccess(topics, secrets); err != nil {
			return err
		}
	}
	if err := s.AuditLog.check(fns); err != nil {
		return err
	}
	accounts := map[string]bool{}
	for _, sa := range s.ServiceAccounts {
		accounts[sa.Name] = true
	}
	for _, w := range s.Workflows {
		if err := w.check(fns, accounts); err != nil {
			return err
		}
	}
	if err := s.checkBucketsAndSchedules(fns, accounts); err != nil {
		return err
	}
	if s.DeadLetter.MaxDeliveryAttempts < 5 || s.DeadLetter.MaxDeliveryAttempts > 100 {
		return fmt.Errorf("infraspec: dead_letter.max_delivery_attempts %d outside Pub/Sub's 5..100", s.DeadLetter.MaxDeliveryAttempts)
	}
	return nil
}

// checkAccess refuses a grant on a topic or secret the spec does not declare: Terraform would
// fail on it, the local stack would not notice.
func (f Function) checkAccess(topics, secrets map[string]bool) error {
	for _, t := range f.Publishes {
		if !topics[t] {
			return fmt.Errorf("infraspec: function %s publishes on unknown topic %s", f.Name, t)
		}
	}
	for _, sec := range f.ReadsSecrets {
		if !secrets[sec] {
			return fmt.Errorf("infraspec: function %s reads unknown secret %s", f.Name, sec)
		}
	}
	for _, sec := range f.Secrets {
		if !secrets[sec.Secret] {
			return fmt.Errorf("infraspec: function %s mounts unknown secret %s", f.Name, sec.Secret)
		}
	}
	return nil
}

// check refuses an audit log the public function could write, or whose writer and readers
// are not functions of the spec. An absent audit_log (a partial spec in a test) is no error.
func (a AuditLog) check(fns map[string]Function) error {
	if a.Database == "" && a.Writer == "" && len(a.Readers) == 0 {
		return nil
	}
	if a.Database == "" || a.Database == "(default)" {
		return fmt.Errorf("infraspec: audit_log.database %q: the log needs a database of its own", a.Database)
	}
	w, ok := fns[a.Writer]
	if !ok {
		return fmt.Errorf("infraspec: audit_log.writer: unknown function %q", a.Writer)
	}
	if w.Public {
		return fmt.Errorf("infraspec: audit_log.writer %s is public: no public function may write the log", a.Writer)
	}
	for _, r := range a.Readers {
		if _, ok := fns[r]; !ok {
			return fmt.Errorf("infraspec: audit_log.readers: unknown function %q", r)
		}
		if r == a.Writer {
			return fmt.Errorf("infraspec: audit_log.readers: %s is the writer", r)
		}
	}
	return nil
}

// check refuses a workflow Cloud Workflows or the IAM derived from it could not honour. That
// its source file exists is checked by the repository's tests, which know the root.
func (w Workflow) check(fns map[string]Function, accounts map[string]bool) error {
	if w.Name == "" || w.Source == "" {
		return fmt.Errorf("infraspec: workflow %q: name and source are required", w.Name)
	}
	// Without its own identity a workflow runs as the Compute default service account, which
	// may invoke everything: the least-privilege grants below would mean nothing.
	if !accounts[w.ServiceAccount] {
		return fmt.Errorf("infraspec: workflow %s: unknown service account %q", w.Name, w.ServiceAccount)
	}
	if !slices.Contains(CallLogLevels, w.CallLogLevel) {
		return fmt.Errorf("infraspec: workflow %s: call_log_level %q is not one of %v", w.Name, w.CallLogLevel, CallLogLevels)
	}
	for env, fn := range w.FunctionURLs {
		// Cloud Workflows reserves these prefixes and the empty name.
		if !envName.MatchString(env) || strings.HasPrefix(env, "GOOGLE_") || strings.HasPrefix(env, "WORKFLOWS_") {
			return fmt.Errorf("infraspec: workflow %s: environment variable name %q is not allowed", w.Name, env)
		}
		f, ok := fns[fn]
		if !ok {
			return fmt.Errorf("infraspec: workflow %s: %s names unknown function %s", w.Name, env, fn)
		}
		// A workflow calls functions with http.post; only an HTTP function has a URL to call.
		if f.Trigger.Type != "http" {
			return fmt.Errorf("infraspec: workflow %s: %s names function %s, whose trigger is %s, not http", w.Name, env, fn, f.Trigger.Type)
		}
	}
	return nil
}

// Workflow returns the named workflow.
func (s *Spec) Workflow(name string) (Workflow, bool) {
	for _, w := range s.Workflows {
		if w.Name == name {
			return w, true
		}
	}
	return Workflow{}, false
}

// Function returns the named function.
func (s *Spec) Function(name string) (Function, bool) {
	for _, f := range s.Functions {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// Load reads the spec at path.
func Load(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("infraspec: %w", err)
	}
	return Parse(b)
}

// RepoRoot walks up from dir to the folder holding infra/infrastructure.yaml, so tests in any
// package can find the repository's files.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("infraspec: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, RelPath)); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", errors.New("infraspec: no " + RelPath + " above " + dir)
		}
		d = parent
	}
}

// LoadRepo finds and loads the repository's spec from the current directory.
func LoadRepo() (*Spec, string, error) {
	root, err := RepoRoot(".")
	if err != nil {
		return nil, "", err
	}
	s, err := Load(filepath.Join(root, RelPath))
	return s, root, err
}

// checkBucketsAndSchedules refuses a bucket granted to an unknown account and a schedule the
// local stack could not run or whose target has no URL.
func (s *Spec) checkBucketsAndSchedules(fns map[string]Function, accounts map[string]bool) error {
	buckets := map[string]bool{}
	for _, b := range s.Buckets {
		if b.Name == "" || buckets[b.Name] || b.RetentionDays < 0 {
			return fmt.Errorf("infraspec: bucket %q: a unique name and a retention of 0 days or more are required", b.Name)
		}
		buckets[b.Name] = true
		for _, c := range b.Creators {
			if !accounts[c] {
				return fmt.Errorf("infraspec: bucket %s: unknown service account %q", b.Name, c)
			}
		}
	}
	schedules := map[string]bool{}
	for _, sc := range s.Schedules {
		if sc.Name == "" || schedules[sc.Name] {
			return fmt.Errorf("infraspec: schedule %q: a unique name is required", sc.Name)
		}
		schedules[sc.Name] = true
		if f, ok := fns[sc.Function]; !ok || f.Trigger.Type != "http" {
			return fmt.Errorf("infraspec: schedule %s: %q is not an http function", sc.Name, sc.Function)
		}
		if !strings.HasPrefix(sc.Path, "/") {
			return fmt.Errorf("infraspec: schedule %s: path %q must start with /", sc.Name, sc.Path)
		}
		if _, err := sc.Every(); err != nil {
			return err
		}
	}
	return nil
}
