package stack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"waooaw.dev/governance/infra/local/infraspec"
)

// TestSchedulerRunsJobs: each job posts to its function's path, on its ticker and when the
// control endpoint asks.
func TestSchedulerRunsJobs(t *testing.T) {
	var posts atomic.Int64
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/check" {
			http.Error(w, "wrong call "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		posts.Add(1)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer fn.Close()
	spec := &infraspec.Spec{Schedules: []infraspec.Schedule{
		{Name: "check", Cron: "*/10 * * * *", Function: "guardian", Path: "/v1/check"},
		{Name: "elsewhere", Cron: "*/5 * * * *", Function: "absent", Path: "/x"},
	}}
	var out strings.Builder
	s, err := newScheduler(spec, map[string]string{"guardian": fn.URL}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "schedule elsewhere: function absent does not run") {
		t.Errorf("report %q does not name the skipped schedule", out.String())
	}
	mux := http.NewServeMux()
	s.handle(mux)
	ctl := httptest.NewServer(mux)
	defer ctl.Close()

	tests := []struct {
		name       string
		path       string
		wantStatus int
		wantPosts  int64
	}{
		{"run now", "/v1/schedules/check:run", http.StatusOK, 1},
		{"unknown schedule", "/v1/schedules/nope:run", http.StatusNotFound, 1},
		{"unknown verb", "/v1/schedules/check:pause", http.StatusBadRequest, 1},
		{"run again", "/v1/schedules/check:run", http.StatusOK, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(ctl.URL+tt.path, "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || posts.Load() != tt.wantPosts {
				t.Fatalf("status %d, posts %d; want %d, %d", resp.StatusCode, posts.Load(), tt.wantStatus, tt.wantPosts)
			}
			if tt.wantStatus == http.StatusOK {
				var res RunResult
				if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || res.Status != http.StatusOK || res.Body != `{"ok":true}` {
					t.Fatalf("run result %+v, %v", res, err)
				}
			}
		})
	}

	// The ticker: the job's period shortened, so that it fires while the test waits.
	j := s.jobs["check"]
	j.every = 20 * time.Millisecond
	s.jobs["check"] = j
	s.start(t.Context())
	deadline := time.Now().Add(10 * time.Second)
	for posts.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if posts.Load() < 5 {
		t.Fatalf("%d posts after the ticker ran, want 3 more", posts.Load())
	}
}
