package budgetguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
)

// MaxPushBytes bounds a push body: both notifications are a few hundred bytes.
const MaxPushBytes = 1 << 20

// Options are the guard's collaborators; Firestore and Publisher are required.
type Options struct {
	Firestore *firestore.Client
	Publisher events.Publisher // audit_events, approvals, health_events
	Logger    *slog.Logger     // defaults to slog.Default()
	// Rules give the thresholds, the cap and the approval timeout; default: the embedded
	// tables.
	Rules *rules.Set
	Now   func() time.Time // defaults to time.Now
}

// Server serves the guard's push routes:
//
//	POST /projects/{project}/topics/budget_alerts  Cloud Billing's budget notifications
//	POST /projects/{project}/topics/spend_events   the platform's AI spend
//	GET  /v1/budget                                the state, for operators and tests
type Server struct {
	opt   Options
	mux   *http.ServeMux
	level Level
	cap   float64
	// governance are the agents a suspension never touches (data.platform.governance_agents).
	governance map[string]bool
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil {
		return nil, errors.New("budgetguard: Firestore and Publisher are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rules == nil {
		set, err := rules.Load(tables.FS)
		if err != nil {
			return nil, fmt.Errorf("budgetguard: rules: %w", err)
		}
		o.Rules = set
	}
	capUSD, err := PlatformCapUSD(o.Rules)
	if err != nil {
		return nil, err
	}
	gov, err := GovernanceAgents()
	if err != nil {
		return nil, err
	}
	s := &Server{opt: o, mux: http.NewServeMux(), level: RulesLevel(o.Rules), cap: capUSD, governance: gov}
	s.mux.HandleFunc("/projects/{project}/topics/"+events.TopicBudgetAlerts, s.serveBilling)
	s.mux.HandleFunc("/projects/{project}/topics/"+events.TopicSpendEvents, s.serveSpend)
	s.mux.HandleFunc("/v1/budget", s.serveState)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+r.URL.Path)
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// RulesLevel is the Level of rules/budget_thresholds.
func RulesLevel(set *rules.Set) Level {
	return func(ratio float64) (string, string, error) {
		l, res, err := set.BudgetLevel(ratio)
		if err != nil {
			return "", "", err
		}
		rule := ""
		if len(res.Matches) > 0 {
			rule = res.Matches[0].RuleID
		}
		return l.State, rule, nil
	}
}

// PlatformCapUSD is budget_thresholds' platform_cap_usd.
func PlatformCapUSD(set *rules.Set) (float64, error) {
	data, err := set.PolicyData()
	if err != nil {
		return 0, fmt.Errorf("budgetguard: rules data: %w", err)
	}
	b, _ := data["budget"].(map[string]any)
	c, ok := b["platform_cap_usd"].(float64)
	if !ok || c <= 0 {
		return 0, fmt.Errorf("budgetguard: budget_thresholds: platform_cap_usd %v is not a positive number", b["platform_cap_usd"])
	}
	return c, nil
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, msg
	agentreq.WriteJSON(w, code, body)
}

// Push is the body Pub/Sub posts to a push endpoint (wrapped delivery).
type Push = events.Push

func readPush(r *http.Request) (Push, error) { return events.ReadPush(r, MaxPushBytes) }

// Answer is a push's answer (Pub/Sub reads only the status; tests and operators the rest).
type Answer struct {
	Outcome string  `json:"outcome"` // applied, unchanged, duplicate, older_month
	State   string  `json:"state"`
	From    string  `json:"from,omitempty"` // on a transition
	Spend   float64 `json:"spend_usd"`
}

// Outcomes of a push.
const (
	OutcomeTransition = "transition" // the state changed
	OutcomeApplied    = "applied"    // the spend changed, the state did not
	OutcomeUnchanged  = "unchanged"  // nothing to change (a repeated or lower notification)
	OutcomeDuplicate  = "duplicate"  // a spend event already counted
)

// answer writes a push's outcome: 200 for whatever was applied or changed nothing; 400 for
// poison (logged at ERROR: the dead-letter topic takes it after the last attempt); 503 for
// anything a redelivery may fix.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, p Push, ans Answer, err error) {
	ctx := r.Context()
	switch {
	case errors.Is(err, events.ErrPoison):
		s.opt.Logger.ErrorContext(ctx, "budgetguard: poison message", "message_id", p.Message.MessageID,
			"subscription", p.Subscription, "delivery_attempt", p.DeliveryAttempt, "error", err.Error())
		writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		s.opt.Logger.WarnContext(ctx, "budgetguard: not applied; Pub/Sub will redeliver", "message_id", p.Message.MessageID, "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		if ans.Outcome == OutcomeTransition {
			s.opt.Logger.InfoContext(ctx, "budgetguard: budget state changed", "from", ans.From, "to", ans.State, "spend_usd", ans.Spend)
		}
		agentreq.WriteJSON(w, http.StatusOK, ans)
	}
}

func (s *Server) serveBilling(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s; use POST", r.Method))
		return
	}
	p, err := readPush(r)
	var ans Answer
	if err == nil {
		var n Notification
		if n, err = DecodeNotification(p.Message.Data, p.Message.Attributes); err == nil {
			ans, err = s.observeBilling(r.Context(), n, p.Message.MessageID)
		}
	}
	s.answer(w, r, p, ans, err)
}

func (s *Server) serveSpend(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s; use POST", r.Method))
		return
	}
	p, err := readPush(r)
	var ans Answer
	if err == nil {
		var sp SpendEvent
		if sp, err = DecodeSpend(p.Message.Data); err == nil {
			ans, err = s.observeSpend(r.Context(), sp)
		}
	}
	s.answer(w, r, p, ans, err)
}

func (s *Server) serveState(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s; use GET", r.Method))
		return
	}
	st, err := s.read(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	agentreq.WriteJSON(w, http.StatusOK, st)
}
