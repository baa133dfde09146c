package terraform

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// TestAnchorBucketAndSchedule holds the anchors' bucket and the audit check's job to the
// spec: a retention policy of the spec's days, locked by default; only the creators' accounts
// granted on the bucket, with roles that cannot delete or replace; a job per schedule posting
// to its function's path with an identity that may invoke that function alone.
func TestAnchorBucketAndSchedule(t *testing.T) {
	var s struct {
		Buckets []struct {
			Name          string   `yaml:"name"`
			RetentionDays int      `yaml:"retention_days"`
			Creators      []string `yaml:"creators"`
		} `yaml:"buckets"`
		Schedules []struct {
			Name, Cron, Function, Path string
		} `yaml:"schedules"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(repoRoot(t), specFile)), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Buckets) == 0 || len(s.Schedules) == 0 {
		t.Fatal("the spec has no bucket or no schedule: the checks would pass on nothing")
	}
	m := loadModule(t)
	p, err := m.Plan(PlanOptions{Project: "waooaw-test"})
	if err != nil {
		t.Fatal(err)
	}
	locked := false
	for _, b := range m.Blocks("variable") {
		if b.Labels[0] == "lock_bucket_retention" {
			v, diags := b.Body.Attributes["default"].Expr.Value(nil)
			locked = !diags.HasErrors() && v.True()
		}
	}
	if !locked {
		t.Error("var.lock_bucket_retention does not default to true: an owner could lift the retention and delete anchors")
	}
	for _, b := range s.Buckets {
		v, ok := p.Instances["google_storage_bucket.spec"][b.Name]
		if !ok {
			t.Fatalf("no bucket %s", b.Name)
		}
		rp := v.GetAttr("retention_policy")
		if !rp.Type().IsTupleType() || rp.LengthInt() != 1 {
			t.Fatalf("bucket %s: retention_policy %#v, want one block", b.Name, rp)
		}
		rp = rp.Index(cty.NumberIntVal(0))
		period, _ := rp.GetAttr("retention_period").AsBigFloat().Int64()
		if period != int64(b.RetentionDays)*86400 {
			t.Errorf("bucket %s: retention %d s, want %d days", b.Name, period, b.RetentionDays)
		}
	}
	grants := p.Instances["google_storage_bucket_iam_member.creator"]
	for key, g := range grants {
		role, member := attrString(g, "role"), attrString(g, "member")
		if role != "roles/storage.objectCreator" && role != "roles/storage.objectViewer" {
			t.Errorf("grant %s: role %s may delete or replace objects", key, role)
		}
		found := false
		for _, b := range s.Buckets {
			for _, c := range b.Creators {
				found = found || strings.HasPrefix(key, b.Name+" "+c+" ") && strings.Contains(member, c+"@")
			}
		}
		if !found {
			t.Errorf("grant %s to %s: not a creator of the spec", key, member)
		}
	}
	if len(grants) != 2*len(s.Buckets[0].Creators) {
		t.Errorf("%d bucket grants, want create and read for each creator", len(grants))
	}
	for _, sc := range s.Schedules {
		job, ok := p.Instances["google_cloud_scheduler_job.schedule"][sc.Name]
		if !ok {
			t.Fatalf("no job %s", sc.Name)
		}
		if attrString(job, "schedule") != sc.Cron {
			t.Errorf("job %s: schedule %q, want %q", sc.Name, attrString(job, "schedule"), sc.Cron)
		}
		inv := p.Instances["google_cloud_run_service_iam_member.schedule_invoker"][sc.Name]
		if attrString(inv, "service") != sc.Function || attrString(inv, "role") != "roles/run.invoker" ||
			!strings.Contains(attrString(inv, "member"), "sched-"+sc.Name+"@") {
			t.Errorf("job %s: invoker grant %s %s on %s", sc.Name, attrString(inv, "role"), attrString(inv, "member"), attrString(inv, "service"))
		}
	}
}
