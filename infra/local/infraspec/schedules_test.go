package infraspec

import (
	"testing"
	"time"
)

func TestRepoSchedulesAndBuckets(t *testing.T) {
	s, _, err := LoadRepo()
	if err != nil {
		t.Fatal(err)
	}
	every := map[string]time.Duration{}
	for _, sc := range s.Schedules {
		d, err := sc.Every()
		if err != nil {
			t.Fatal(err)
		}
		every[sc.Function+" "+sc.Path] = d
	}
	if d := every["guardian /v1/schedules/audit-anchor"]; d != 10*time.Minute {
		t.Errorf("the guardian's audit check runs every %v, want 10m", d)
	}
	g, _ := s.Function("guardian")
	var anchors *Bucket
	for i, b := range s.Buckets {
		if b.Name == g.Env["WAOOAW_ANCHOR_BUCKET"] {
			anchors = &s.Buckets[i]
		}
	}
	if anchors == nil || anchors.RetentionDays < 1 || len(anchors.Creators) != 1 || anchors.Creators[0] != g.ServiceAccount {
		t.Fatalf("anchor bucket %+v: want a retention policy and the guardian's account as its only creator", anchors)
	}
}
