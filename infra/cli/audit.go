package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// entry is one audit entry as the API gives it.
type entry struct {
	EventID   string            `json:"event_id"`
	Seq       int64             `json:"seq"`
	Time      string            `json:"time"`
	EventType string            `json:"event_type"`
	ActorID   string            `json:"actor_id"`
	Action    string            `json:"action"`
	Target    string            `json:"target"`
	Context   map[string]string `json:"context"`
	Result    string            `json:"result"`
	Hash      string            `json:"hash"`
}

func newAudit(a *app) *cobra.Command {
	verify := &cobra.Command{
		Use:   "verify STREAM",
		Short: "Verify a stream's hash chain (exit 4 when it is broken)",
		Long: `verify asks the gateway to walk the stream's hash chain (an engagement's stream is named by
the engagement) and says to which seq it verified, or the first broken link. It exits 4 when
the chain is broken, with either output.`,
		Example: "  waooaw audit verify eng-1",
		Args:    exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var rep struct {
				OK           bool   `json:"ok"`
				Entries      int64  `json:"entries"`
				HeadHash     string `json:"head_hash"`
				FirstBadSeq  *int64 `json:"first_bad_seq"`
				IndexBadSeq  *int64 `json:"index_bad_seq"`
				IndexProblem string `json:"index_problem"`
				Cached       bool   `json:"cached"`
				VerifiedAt   string `json:"verified_at"`
			}
			raw, err := c.getJSON(cmd.Context(), "/v1/audit/streams/"+url.PathEscape(args[0])+"/verify", &rep)
			if err != nil {
				return err
			}
			if a.json() {
				err = writeJSON(a.stdout, raw)
			} else {
				var verdict string
				switch {
				case rep.OK:
					verdict = fmt.Sprintf("chain verified to seq %d", rep.Entries)
				case rep.FirstBadSeq != nil:
					verdict = fmt.Sprintf("BROKEN at seq %d (%d entries verified before it)", *rep.FirstBadSeq, rep.Entries)
				case rep.IndexBadSeq != nil:
					verdict = fmt.Sprintf("BROKEN: the index disagrees at seq %d: %s", *rep.IndexBadSeq, rep.IndexProblem)
				default:
					verdict = "BROKEN"
				}
				cached := ""
				if rep.Cached {
					cached = "yes (head unchanged)"
				}
				err = fields(a.stdout, "stream", args[0], "verdict", verdict, "head hash", rep.HeadHash, "verified at", rep.VerifiedAt, "cached", cached)
			}
			if err != nil {
				return err
			}
			if !rep.OK {
				return errBroken
			}
			return nil
		},
	}
	var after int64
	var limit int
	entries := &cobra.Command{
		Use:     "entries STREAM",
		Short:   "List a stream's audit entries in seq order",
		Example: "  waooaw audit entries eng-1 --after 40\n  waooaw audit entries eng-1 -o json | jq '.entries[].action'",
		Args:    exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 || after < 0 {
				return usagef("--after and --limit must not be negative")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			var all []json.RawMessage
			var shown []entry
			next := after
			for limit == 0 || len(all) < limit {
				page := 1000
				if limit > 0 {
					page = min(page, limit-len(all))
				}
				var p struct {
					Entries   []json.RawMessage `json:"entries"`
					NextAfter int64             `json:"next_after"`
				}
				path := "/v1/audit/streams/" + url.PathEscape(args[0]) + "/entries?after=" + strconv.FormatInt(next, 10) + "&limit=" + strconv.Itoa(page)
				if _, err := c.getJSON(cmd.Context(), path, &p); err != nil {
					return err
				}
				for _, r := range p.Entries {
					var e entry
					if err := json.Unmarshal(r, &e); err != nil {
						return &unreachableError{fmt.Errorf("entry: %w", err)}
					}
					all, shown = append(all, r), append(shown, e)
				}
				if len(p.Entries) == 0 || p.NextAfter <= next {
					break
				}
				next = p.NextAfter
			}
			if a.json() {
				b, err := json.Marshal(map[string]any{"stream": args[0], "entries": nonNil(all), "next_after": next})
				if err != nil {
					return err
				}
				return writeJSON(a.stdout, b)
			}
			rows := make([][]string, 0, len(shown))
			for _, e := range shown {
				rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), e.Time, e.ActorID, e.Action, orDash(e.Target), orDash(e.Result), orDash(e.Context["request_id"])})
			}
			return table(a.stdout, []string{"SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "RESULT", "REQUEST"}, rows)
		},
	}
	entries.Flags().Int64Var(&after, "after", 0, "only entries after this seq")
	entries.Flags().IntVar(&limit, "limit", 0, "at most this many entries (0: all)")
	return group("audit", "The hash-chained audit log: verify a stream, read its entries", verify, entries)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
