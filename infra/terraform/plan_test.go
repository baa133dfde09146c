package terraform

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// TestPlanEvaluates: the stand-in planner works out for_each over maps and sets, reads a
// spec through yamldecode(file()), expands dynamic blocks, resolves references between
// resources, and refuses a grant it cannot read.
func TestPlanEvaluates(t *testing.T) {
	const spec = "accounts: [{name: a, roles: [r1]}, {name: b, roles: []}]\nfns: [x]\n"
	const module = `locals {
  spec     = yamldecode(file("${path.module}/spec.yaml"))
  accounts = { for a in local.spec.accounts : a.name => a }
  fns      = toset(local.spec.fns)
}
resource "google_service_account" "sa" {
  for_each   = local.accounts
  account_id = each.key
}
resource "google_cloudfunctions2_function" "fn" {
  for_each = local.fns
  name     = each.key
}
resource "google_cloud_run_service_iam_member" "inv" {
  for_each = local.fns
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.sa["a"].email}"
}
resource "google_pubsub_subscription" "s" {
  name = "s"
  dynamic "push_config" {
    for_each = [google_cloudfunctions2_function.fn["x"].service_config[0].uri]
    content {
      push_endpoint = "${push_config.value}/p"
    }
  }
}
`
	dir := t.TempDir()
	files := map[string][]byte{filepath.Join(dir, "spec.yaml"): []byte(spec)}
	m, err := ParseModule(dir, map[string][]byte{"main.tf": []byte(module)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Plan(PlanOptions{Project: "p", Files: files})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Instances["google_service_account.sa"]); n != 2 {
		t.Errorf("%d service accounts, want 2", n)
	}
	grants, err := p.Grants()
	if err != nil {
		t.Fatal(err)
	}
	want := Grant{Resource: "function:x", Role: "roles/run.invoker", Member: "serviceAccount:" + ServiceAccountEmail("a")}
	if len(grants) != 1 || grants[0] != want {
		t.Errorf("grants = %+v, want [%+v]", grants, want)
	}
	sub := p.Instances["google_pubsub_subscription.s"][""]
	if got := attrString(sub.GetAttr("push_config").Index(cty.NumberIntVal(0)), "push_endpoint"); got != "https://x.run.test/p" {
		t.Errorf("push_endpoint = %q", got)
	}

	// A member built from something no plan knows cannot be read as a grant.
	unknown := strings.Replace(module, `google_service_account.sa["a"].email`, `google_service_account.nope["a"].email`, 1)
	m, err = ParseModule(dir, map[string][]byte{"main.tf": []byte(unknown)})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = m.Plan(PlanOptions{Project: "p", Files: files}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Grants(); err == nil || !strings.Contains(err.Error(), "not known") {
		t.Errorf("Grants with an unknown member: err = %v", err)
	}
}
