package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// finalStatuses are the statuses a request never leaves (docs/agent-creation.md).
var finalStatuses = []string{"deployed", "rejected", "denied", "vetoed", "failed"}

// stage, compensation and request are GET /v1/agent-requests/{id}.
type stage struct {
	Stage   int      `json:"stage"`
	Name    string   `json:"name"`
	Outcome string   `json:"outcome"`
	Reasons []string `json:"reasons"`
	At      string   `json:"at"`
}

type compensation struct {
	Stage int    `json:"stage"`
	At    string `json:"at"`
}

type request struct {
	RequestID     string         `json:"request_id"`
	EngagementID  string         `json:"engagement_id"`
	AgentID       string         `json:"agent_id"`
	Status        string         `json:"status"`
	Round         int            `json:"round"`
	Reason        string         `json:"reason"`
	Stages        []stage        `json:"stages"`
	Approval      *approval      `json:"approval"`
	Compensations []compensation `json:"compensations"`
}

func newRequests(a *app) *cobra.Command {
	return group("requests", "Agent requests: submit one, follow it", newRequestsCreate(a), newRequestsGet(a))
}

func newRequestsCreate(a *app) *cobra.Command {
	var file, key string
	c := &cobra.Command{
		Use:   "create -f request.yaml",
		Short: "Submit an agent request from a YAML or JSON file",
		Long: `create submits the file's {spec, way_of_working} as a new agent request (manager or above).

The Idempotency-Key is derived from the request's content (the SHA-256 of its JSON with keys
sorted), so submitting the same file twice, or the same request written as YAML or JSON,
starts one execution; --idempotency-key names another.`,
		Example: "  waooaw requests create -f request.yaml\n  waooaw requests create -f - < request.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := readRequestFile(a.stdin, file)
			if err != nil {
				return err
			}
			if key == "" {
				sum := sha256.Sum256(body)
				key = "sha256-" + hex.EncodeToString(sum[:])
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var out struct {
				RequestID string `json:"request_id"`
				Execution string `json:"execution"`
				Status    string `json:"status"`
			}
			b, _, err := c.do(cmd.Context(), http.MethodPost, "/v1/agent-requests", http.Header{"Idempotency-Key": {key}}, body)
			if err != nil {
				return err
			}
			if err := decodeAnswer(http.MethodPost, "/v1/agent-requests", b, &out); err != nil {
				return err
			}
			if a.json() {
				return writeJSON(a.stdout, b)
			}
			return fields(a.stdout, "request", out.RequestID, "status", out.Status, "execution", out.Execution, "idempotency key", key)
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "the request: YAML or JSON with spec and way_of_working, - for standard input")
	c.Flags().StringVar(&key, "idempotency-key", "", "the Idempotency-Key (default: derived from the request's content)")
	markRequired(c, "file")
	return c
}

// readRequestFile reads a request in YAML or JSON (JSON is YAML) and returns it as JSON with
// its keys sorted, the body sent and what the default key is derived from.
func readRequestFile(in io.Reader, path string) ([]byte, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(io.LimitReader(in, 1<<20))
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, inputf("request file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, inputf("request file %s: %w", path, err)
	}
	if _, ok := doc["spec"].(map[string]any); !ok {
		return nil, inputf("request file %s: needs a spec mapping (and way_of_working), as POST /v1/agent-requests takes", path)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		// yaml gives map[any]any only under a key that is not a string, which JSON cannot say.
		return nil, inputf("request file %s: %w", path, err)
	}
	return body, nil
}

func newRequestsGet(a *app) *cobra.Command {
	var watch bool
	var interval time.Duration
	var until []string
	c := &cobra.Command{
		Use:   "get ID [--watch]",
		Short: "Show an agent request; --watch follows it to a final status",
		Long: `get shows a request: its status, every stage with outcome and reasons, its approval and
the undo steps of a veto.

--watch polls until the request reaches a final status (deployed, rejected, denied, vetoed
once its undo steps are done, failed) or one named by --until, printing each new stage, approval, undo step and status as
it appears; with -o json it prints the request as one JSON line each time it changes. The exit
code is 0 whatever the final status: read it from the output.`,
		Example: "  waooaw requests get req-123 --watch\n  waooaw requests get req-123 --watch --until awaiting_approval,veto_window -o json",
		Args:    exactArgs("ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !watch && len(until) > 0 {
				return usagef("--until goes with --watch")
			}
			if interval <= 0 {
				return usagef("--interval must be positive")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			path := "/v1/agent-requests/" + url.PathEscape(args[0])
			if !watch {
				var r request
				raw, err := c.getJSON(cmd.Context(), path, &r)
				if err != nil {
					return err
				}
				if a.json() {
					return writeJSON(a.stdout, raw)
				}
				return printRequest(a.stdout, &r)
			}
			return a.watch(cmd.Context(), c, path, interval, append(slices.Clone(finalStatuses), until...))
		},
	}
	c.Flags().BoolVarP(&watch, "watch", "w", false, "follow the request until a final status")
	c.Flags().DurationVar(&interval, "interval", 2*time.Second, "with --watch: how often to ask")
	c.Flags().StringSliceVar(&until, "until", nil, "with --watch: also stop at these statuses (e.g. awaiting_approval,veto_window)")
	return c
}

// watchPatience is how long a watch rides out a gateway it cannot reach or that answers 5xx.
const watchPatience = 30 * time.Second

// undoPatience is how long a watch waits, once a request is vetoed, for its undo steps: the
// status turns vetoed when the veto closes the window, before the saga undoes 7, 5, 4 and
// then 3, its last step. An undo that never comes (a stage failing for good) ends the wait.
const undoPatience = 2 * time.Minute

// lastUndoStage is the stage the veto saga undoes last.
const lastUndoStage = 3

// undone says whether a vetoed request's saga has run to its last step.
func undone(r *request) bool {
	n := len(r.Compensations)
	return n > 0 && r.Compensations[n-1].Stage == lastUndoStage
}

// watch polls a request and prints what changed, until one of stop is its status.
func (a *app) watch(ctx context.Context, c *client, path string, interval time.Duration, stop []string) error {
	var prev request
	var prevRaw []byte
	var failingSince, vetoedSince time.Time
	first := true
	for {
		var r request
		raw, err := c.getJSON(ctx, path, &r)
		switch {
		case err != nil && ExitCode(err) == ExitUnavailable && ctx.Err() == nil:
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) > watchPatience {
				return fmt.Errorf("for %s: %w", watchPatience, err)
			}
		case err != nil:
			return err
		default:
			failingSince = time.Time{}
			if a.json() {
				if !bytes.Equal(raw, prevRaw) {
					if err := writeJSONLine(a.stdout, raw); err != nil {
						return err
					}
				}
			} else if err := printChanges(a.stdout, &prev, &r, first); err != nil {
				return err
			}
			first, prev, prevRaw = false, r, raw
			if r.Status == "vetoed" && !undone(&r) && slices.Contains(stop, r.Status) {
				if vetoedSince.IsZero() {
					vetoedSince = time.Now()
				}
				if time.Since(vetoedSince) < undoPatience {
					break // the undo steps are still to come
				}
				if !a.json() {
					fmt.Fprintf(a.stdout, "undo not finished after %s: see the audit log\n", undoPatience)
				}
				return nil
			}
			if slices.Contains(stop, r.Status) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// printChanges prints what cur has that prev had not: its first sight whole, then new stages,
// a new approval, new undo steps and a new status, one line each.
func printChanges(w io.Writer, prev, cur *request, first bool) error {
	var lines []string
	if first {
		lines = append(lines, fmt.Sprintf("request %s  engagement %s", cur.RequestID, cur.EngagementID))
	}
	for _, s := range cur.Stages[min(len(prev.Stages), len(cur.Stages)):] {
		lines = append(lines, "  "+stageLine(s))
	}
	if cur.Approval != nil && (prev.Approval == nil || prev.Approval.ApprovalID != cur.Approval.ApprovalID) {
		ap := cur.Approval
		lines = append(lines, fmt.Sprintf("  approval %s  %s %s  deadline %s%s", ap.ApprovalID, ap.Kind, ap.Type, ap.Deadline, seedNote(ap.SeedID)))
	}
	for _, cp := range cur.Compensations[min(len(prev.Compensations), len(cur.Compensations)):] {
		lines = append(lines, fmt.Sprintf("  undo stage %d  %s", cp.Stage, cp.At))
	}
	if cur.AgentID != "" && cur.AgentID != prev.AgentID {
		lines = append(lines, "  agent "+cur.AgentID)
	}
	if first || cur.Status != prev.Status {
		l := "status " + cur.Status
		if cur.Reason != "" {
			l += ": " + cur.Reason
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n")+"\n")
	return err
}

func stageLine(s stage) string {
	l := fmt.Sprintf("stage %d %-20s %-18s %s", s.Stage, s.Name, s.Outcome, s.At)
	if len(s.Reasons) > 0 {
		l += "  " + strings.Join(s.Reasons, "; ")
	}
	return l
}

func seedNote(seed string) string {
	if seed == "" {
		return ""
	}
	return "  seed " + seed
}

// printRequest prints a request as a readable page.
func printRequest(w io.Writer, r *request) error {
	if err := fields(w, "request", r.RequestID, "engagement", r.EngagementID, "agent", r.AgentID,
		"status", r.Status, "reason", r.Reason, "round", strconv.Itoa(r.Round)); err != nil {
		return err
	}
	if len(r.Stages) > 0 {
		rows := make([][]string, 0, len(r.Stages))
		for _, s := range r.Stages {
			rows = append(rows, []string{strconv.Itoa(s.Stage), s.Name, s.Outcome, s.At, orDash(strings.Join(s.Reasons, "; "))})
		}
		fmt.Fprintln(w)
		if err := table(w, []string{"STAGE", "NAME", "OUTCOME", "AT", "REASONS"}, rows); err != nil {
			return err
		}
	}
	if ap := r.Approval; ap != nil {
		fmt.Fprintln(w)
		if err := fields(w, "approval", ap.ApprovalID, "kind", ap.Kind, "type", ap.Type, "deadline", ap.Deadline, "seed", ap.SeedID); err != nil {
			return err
		}
	}
	if len(r.Compensations) > 0 {
		rows := make([][]string, 0, len(r.Compensations))
		for _, cp := range r.Compensations {
			rows = append(rows, []string{strconv.Itoa(cp.Stage), cp.At})
		}
		fmt.Fprintln(w)
		return table(w, []string{"UNDONE STAGE", "AT"}, rows)
	}
	return nil
}
