package genesis

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/ai"
	"waooaw.dev/governance/shared/aireview"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/rules"
)

// Names Genesis records under.
const (
	Actor      = "genesis"
	Source     = "//waooaw/genesis"
	Collection = "genesis_verdicts" // one record per stage call, undo, approval open and close, finish
	SeedStats  = "seed_stats"       // seed_stats/{seed_id}: false_positive_count, flagged
)

// Options are Genesis's collaborators; all but Logger are required.
type Options struct {
	Firestore *firestore.Client
	Publisher events.Publisher // audit_events, approvals, decisions
	Rules     *rules.Set
	Logger    *slog.Logger // defaults to slog.Default()
	// AI, when set, reviews each verdict of stages 1–3 (docs/ai-reviews.md); nil runs the
	// tables alone.
	AI ai.Asker
}

// Server serves Genesis's routes (docs/agent-creation.md).
type Server struct {
	mux       *http.ServeMux
	fs        *firestore.Client
	pub       events.Publisher
	rules     *rules.Set
	rec       *agentreq.Recorder
	log       *slog.Logger
	maxRounds int // a revise in this round or later is a rejection
	flagAt    int // false positives at which a seed stops auto-approving
	ai        *aireview.Reviewer
}

// New builds a Server. It fails when the rules lack a number Genesis decides with, since no
// call could then be answered right.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil || o.Rules == nil {
		return nil, errors.New("genesis: Firestore, Publisher and Rules are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{
		fs: o.Firestore, pub: o.Publisher, rules: o.Rules, log: o.Logger,
		maxRounds: o.Rules.MaxRevisionRounds(), flagAt: o.Rules.FalsePositiveFlagAt(),
		rec: &agentreq.Recorder{FS: o.Firestore, Collection: Collection, Publisher: o.Publisher, Actor: Actor, Source: Source},
	}
	if o.AI != nil {
		s.ai = &aireview.Reviewer{Asker: o.AI, FS: o.Firestore, Records: Collection, Agent: Actor}
	}
	if s.maxRounds < 1 {
		return nil, fmt.Errorf("genesis: rules: %s has no max_revision_rounds", rules.TableStageTimeouts)
	}
	if s.flagAt < 1 {
		return nil, fmt.Errorf("genesis: rules: %s has no false_positive_flag_at", rules.TablePrecedentSeeds)
	}
	if _, _, err := o.Rules.ApprovalTimeout(TypeDeployment); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	for _, t := range []string{rules.TableAgentSpecification, rules.TableWayOfWorking, rules.TableGenesisCertification} {
		if _, ok := o.Rules.Table(t); !ok {
			return nil, fmt.Errorf("genesis: rules: table %s: %w", t, rules.ErrUnknownTable)
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("POST /v1/stages/specification", s.specification)
	s.mux.HandleFunc("POST /v1/stages/way_of_working", s.wayOfWorking)
	s.mux.HandleFunc("POST /v1/stages/certification", s.certification)
	s.mux.HandleFunc("POST /v1/stages/governor_approval", s.governorApproval)
	s.mux.HandleFunc("POST /v1/approvals", s.openApproval)
	s.mux.HandleFunc("POST /v1/approvals/{target}", s.closeApproval)
	s.mux.HandleFunc("POST /v1/requests/{target}", s.finish)
	s.mux.HandleFunc("POST /v1/undo/certification", s.undoCertification)
	s.mux.HandleFunc("GET /v1/seeds", s.seeds)
	return s, nil
}

// ServeHTTP serves the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// fail answers err: 400 for a call that can never succeed, 503 (retried by the workflow) for
// anything else, which is logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, agentreq.ErrBadCall) && !errors.Is(err, agentreq.ErrUnknownRequest) {
		s.log.ErrorContext(r.Context(), "genesis: call failed; the workflow retries it", "path", r.URL.Path, "error", err.Error())
	}
	agentreq.WriteError(w, err)
}

// action splits a path segment "{id}:{verb}" and checks the verb; ok is false (and the
// answer written) when the segment is not one.
func action(w http.ResponseWriter, r *http.Request, verb string) (id string, ok bool) {
	id, v, found := strings.Cut(r.PathValue("target"), ":")
	if !found || v != verb || id == "" {
		agentreq.WriteJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, fmt.Sprintf("no route for %s; want .../{id}:%s", r.URL.Path, verb)))
		return "", false
	}
	return id, true
}

func errorBody(code int, msg string) any {
	type body struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	return map[string]body{"error": {Code: code, Message: msg}}
}

// badCall wraps a problem with a call as agentreq.ErrBadCall.
func badCall(format string, args ...any) error {
	return fmt.Errorf("%w: %s", agentreq.ErrBadCall, fmt.Sprintf(format, args...))
}
