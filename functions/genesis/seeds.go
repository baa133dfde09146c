package genesis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/rules"
)

// ApprovalVerdict is stage 6's answer: the verdict and the approval the workflow waits on.
// Every field is always there, so the workflow reads them without guarding for absence.
type ApprovalVerdict struct {
	Verdict
	ApprovalID        string `json:"approval_id"`
	SeedID            string `json:"seed_id"`             // the seed that auto-approved; "" for a blocking approval
	TimeoutSeconds    int    `json:"timeout_seconds"`     // the wait: the blocking approval's, or the veto window's
	OnTimeout         string `json:"on_timeout"`          // approve | deny | implicit
	Deadline          string `json:"deadline"`            // a blocking approval's; a veto window's is set when it opens
	VetoWindowSeconds int    `json:"veto_window_seconds"` // 0 for a blocking approval
}

// seedFacts are the precedent_seeds facts of a new agent's spec.
func seedFacts(spec map[string]any) (map[string]any, error) {
	facts := map[string]any{
		"request_type": "new_agent", "new_scope": false, "new_data_access": false, "fewer_approvals": false, "intake_type": "",
	}
	industry, ok, err := specString(spec, "industry")
	if err != nil {
		return nil, err
	}
	if ok {
		facts["industry"] = industry
	}
	if ct, ok, err := specString(spec, "content_type"); err != nil {
		return nil, err
	} else if ok {
		facts["content_type"] = ct
	}
	controls, isMap := spec["controls"].(map[string]any)
	if spec["controls"] != nil && !isMap {
		return nil, badCall("spec.controls must be an object of booleans")
	}
	checks := []string{}
	claims := false
	for name, v := range controls {
		b, ok := v.(bool)
		if !ok {
			return nil, badCall("spec.controls.%s must be a boolean, not %T", name, v)
		}
		switch {
		case name == "claims_verified":
			claims = b
		case b:
			checks = append(checks, name)
		}
	}
	slices.Sort(checks)
	facts["checks"], facts["claims_verified"] = checks, claims
	flags, err := specStrings(spec, "risk_flags")
	if err != nil {
		return nil, err
	}
	if flags == nil {
		flags = []string{}
	}
	facts["high_risk_flags"] = flags
	external, err := specStrings(spec, "external_systems")
	if err != nil {
		return nil, err
	}
	facts["external_communication"] = len(external) > 0
	return facts, nil
}

// governorApproval is stage 6: the first active seed that matches and is not flagged
// auto-approves citing it (the workflow deploys, then opens its veto window); with none, a
// blocking deployment approval opens in the same transaction as the verdict, and its request
// goes out on `approvals`.
func (s *Server) governorApproval(w http.ResponseWriter, r *http.Request) {
	c, err := stageCall(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	facts, err := seedFacts(c.Spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	matches, res, err := s.rules.ActiveSeeds(facts)
	if err != nil {
		s.fail(w, r, ruleErr(err))
		return
	}
	trace, err := res.Trace.JSON()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	const stage = 6
	key := agentreq.StageKey(c.RequestID, stage, c.Round)
	var opened *agentreq.Approval
	result, err := s.rec.Record(r.Context(), agentreq.Record{
		Key: key, RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round, At: c.At,
		Event: "stage", Action: agentreq.StepNames[stage], Trace: trace,
		Also: func(_ context.Context, tx *firestore.Transaction, req *agentreq.Request, rec *agentreq.Record) error {
			opened = nil
			stats, err := s.readStats(tx, matches)
			if err != nil {
				return err
			}
			var win *rules.SeedMatch
			var skipped []string
			for i, m := range matches {
				if st := stats[i]; st.Flagged {
					skipped = append(skipped, fmt.Sprintf("seed %s matches but is flagged after %d false positives; it no longer auto-approves", m.SeedID, st.FalsePositiveCount))
					continue
				}
				win = &matches[i]
				break
			}
			v := ApprovalVerdict{Verdict: Verdict{Stage: stage, Name: agentreq.StageNames[stage], Trace: trace}}
			var want string
			if win != nil {
				want = agentreq.StatusDeploying
				v.Outcome = OutcomeAutoApproved
				v.Reasons = append([]string{fmt.Sprintf("auto-approved citing precedent seed %s (version %d): %s", win.SeedID, win.Seed.Version, win.Seed.RuleText)}, skipped...)
				v.ApprovalID = agentreq.ApprovalID(c.RequestID, agentreq.KindVetoWindow, TypeDeployment, c.Round)
				v.SeedID, v.OnTimeout = win.SeedID, DecisionImplicit
				v.VetoWindowSeconds = win.VetoWindowHours * 3600
				v.TimeoutSeconds = v.VetoWindowSeconds
				rec.Approval = &agentreq.ApprovalRef{ApprovalID: v.ApprovalID, Kind: agentreq.KindVetoWindow, Type: TypeDeployment, SeedID: win.SeedID, State: agentreq.ApprovalPending}
			} else {
				want = agentreq.StatusAwaitingApproval
				v.Outcome = OutcomeAwaitingApproval
				v.Reasons = append([]string{"no active precedent seed matches unflagged; the Governor decides the deployment"}, skipped...)
				if c.ApprovalCallback == "" {
					return badCall("approval_callback is missing; with no seed to cite, stage 6 opens a blocking approval that reports there")
				}
				a, _, err := s.newApproval(OpenCall{
					RequestID: c.RequestID, EngagementID: c.EngagementID, Round: c.Round, At: c.At, Kind: agentreq.KindBlocking,
					Type: TypeDeployment, CallbackURL: c.ApprovalCallback, Stage: stage, Reasons: v.Reasons,
				})
				if err != nil {
					return err
				}
				cur, err := s.createApproval(tx, a)
				if err != nil {
					return err
				}
				opened = &cur
				v.ApprovalID, v.TimeoutSeconds, v.OnTimeout, v.Deadline = cur.ApprovalID, cur.TimeoutSeconds, cur.OnTimeout, cur.Deadline
				rec.Approval = cur.Ref()
			}
			v.Status = agentreq.FinalStatus(req.Status, want)
			rec.Outcome, rec.Reasons, rec.Status, rec.Answer = v.Outcome, v.Reasons, want, v
			rec.Stage = &agentreq.StageEntry{Stage: stage, Name: v.Name, Outcome: v.Outcome, Reasons: v.Reasons, At: c.At, Round: c.Round}
			return nil
		},
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var v ApprovalVerdict
	if err := json.Unmarshal(result.Answer, &v); err != nil {
		s.fail(w, r, fmt.Errorf("genesis: stored verdict %s: %w", key, err))
		return
	}
	if v.Outcome == OutcomeAwaitingApproval {
		if err := s.publishOpened(r.Context(), opened, v.ApprovalID, key); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	agentreq.WriteRaw(w, result.Answer)
}

// readStats reads, in tx, each matching seed's false-positive record.
func (s *Server) readStats(tx *firestore.Transaction, matches []rules.SeedMatch) ([]seedStat, error) {
	if len(matches) == 0 {
		return nil, nil
	}
	refs := make([]*firestore.DocumentRef, len(matches))
	for i, m := range matches {
		refs[i] = s.fs.Collection(SeedStats).Doc(m.SeedID)
	}
	snaps, err := tx.GetAll(refs)
	if err != nil {
		return nil, fmt.Errorf("read seed stats: %w", err)
	}
	return s.stats(snaps, func(i int) string { return matches[i].SeedID })
}

// stats decodes seed records, a missing one as its table's.
func (s *Server) stats(snaps []*firestore.DocumentSnapshot, id func(int) string) ([]seedStat, error) {
	out := make([]seedStat, len(snaps))
	for i, snap := range snaps {
		if !snap.Exists() {
			out[i] = s.tableStat(id(i))
			continue
		}
		st, err := decodeStat(snap, id(i))
		if err != nil {
			return nil, err
		}
		out[i] = st
	}
	return out, nil
}

// seed finds a precedent seed's rule.
func (s *Server) seed(id string) (*rules.Rule, bool) {
	t, ok := s.rules.Table(rules.TablePrecedentSeeds)
	if !ok {
		return nil, false
	}
	for _, r := range t.Rules {
		if r.ID == id && r.Seed != nil {
			return r, true
		}
	}
	return nil, false
}

// SeedView is a precedent seed as GET /v1/seeds shows it: the table's record with its
// current false-positive count and flag.
type SeedView struct {
	SeedID             string `json:"seed_id"`
	Version            int    `json:"version"`
	Domain             string `json:"domain"`
	Status             string `json:"status"`
	RuleText           string `json:"rule_text"`
	Supersedes         string `json:"supersedes"`
	FalsePositiveCount int    `json:"false_positive_count"`
	Flagged            bool   `json:"flagged"`
}

// SeedsAnswer is GET /v1/seeds.
type SeedsAnswer struct {
	Seeds               []SeedView `json:"seeds"`
	FalsePositiveFlagAt int        `json:"false_positive_flag_at"`
}

// seeds is GET /v1/seeds: every seed of the table, in table order, with its count and flag.
func (s *Server) seeds(w http.ResponseWriter, r *http.Request) {
	t, _ := s.rules.Table(rules.TablePrecedentSeeds)
	var list []*rules.Rule
	var refs []*firestore.DocumentRef
	if t != nil {
		for _, rule := range t.Rules {
			if rule.Seed != nil {
				list = append(list, rule)
				refs = append(refs, s.fs.Collection(SeedStats).Doc(rule.ID))
			}
		}
	}
	out := SeedsAnswer{Seeds: make([]SeedView, 0, len(list)), FalsePositiveFlagAt: s.flagAt}
	if len(refs) > 0 {
		snaps, err := s.fs.GetAll(r.Context(), refs)
		if err != nil {
			s.fail(w, r, fmt.Errorf("genesis: read seed stats: %w", err))
			return
		}
		stats, err := s.stats(snaps, func(i int) string { return list[i].ID })
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for i, rule := range list {
			m := rule.Seed
			out.Seeds = append(out.Seeds, SeedView{
				SeedID: rule.ID, Version: m.Version, Domain: m.Domain, Status: m.Status, RuleText: m.RuleText,
				Supersedes: m.Supersedes, FalsePositiveCount: stats[i].FalsePositiveCount, Flagged: stats[i].Flagged,
			})
		}
	}
	agentreq.WriteJSON(w, http.StatusOK, out)
}
