package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"cloud.google.com/go/firestore"

	tables "waooaw.dev/governance/rules"
	"waooaw.dev/governance/shared/agentreq"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/policy"
	"waooaw.dev/governance/shared/rules"
)

// Actor is the registry's name on the audit log; VerdictCollection keeps its records.
const (
	Actor             = "registry"
	VerdictCollection = "registry_verdicts"
)

// Callbacks delivers a workflow's callback (workflowexec.Client in production). An error
// wrapping workflowexec.ErrCallbackGone says the execution no longer awaits it.
type Callbacks interface {
	Callback(ctx context.Context, url string, body any) error
}

// Options are the registry's collaborators; Firestore, Publisher and Callbacks are required.
type Options struct {
	Firestore *firestore.Client
	Publisher events.Publisher // audit events
	Callbacks Callbacks
	Logger    *slog.Logger // defaults to slog.Default()
	// Rules decide what a run of critical reports does (rules/agent_health.yaml); default:
	// the embedded tables.
	Rules *rules.Set
	// Policy decides whether a deploy may run under the platform's budget (the budget
	// bundle, with data.platform.budget_state kept by a shared/budget listener); default:
	// the embedded policies, unattested, on no budget state (normal).
	Policy *policy.Engine
}

// Server serves the registry's routes:
//
//	POST /v1/stages/deploy                       stage 7: the agent is recorded, deploying
//	POST /v1/deployments/{agent_id}:complete     live; the request deployed
//	POST /v1/deployments/{agent_id}:rollback     rolled back (no healthy report in time)
//	POST /v1/undo/deploy                         undeployed by the compensation saga
//	GET  /v1/agents/{agent_id}                   the projection and its events
//	POST /projects/{project}/topics/health_events  the health_events push
type Server struct {
	opt   Options
	store store
	rec   *agentreq.Recorder
	mux   *http.ServeMux
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Firestore == nil || o.Publisher == nil || o.Callbacks == nil {
		return nil, errors.New("registry: Firestore, Publisher and Callbacks are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Rules == nil {
		set, err := rules.Load(tables.FS)
		if err != nil {
			return nil, fmt.Errorf("registry: rules: %w", err)
		}
		o.Rules = set
	}
	if o.Policy == nil {
		e, err := policy.New()
		if err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
		o.Policy = e
	}
	s := &Server{
		opt:   o,
		store: store{fs: o.Firestore},
		rec: &agentreq.Recorder{FS: o.Firestore, Collection: VerdictCollection, Publisher: o.Publisher,
			Actor: Actor, Source: Source},
		mux: http.NewServeMux(),
	}
	// Methods are checked by the handlers, so a wrong one is answered in the platform's
	// error body rather than the mux's plain text.
	s.mux.HandleFunc("/v1/stages/deploy", s.serveDeploy)
	s.mux.HandleFunc("/v1/deployments/{op}", s.serveDeployment)
	s.mux.HandleFunc("/v1/undo/deploy", s.serveUndo)
	s.mux.HandleFunc("/v1/agents/{agent_id}", s.serveAgent)
	s.mux.HandleFunc("/projects/{project}/topics/"+events.TopicHealthEvents, s.serveHealth)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route for "+r.URL.Path)
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// writeError answers the platform's error body with any code (agentreq.WriteError for the
// workflow's calls picks 400 or 503 itself).
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

// AgentView is GET /v1/agents/{agent_id}'s answer.
type AgentView struct {
	Agent  Agent   `json:"agent"`
	Events []Event `json:"events"`
}

func (s *Server) serveAgent(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s; use GET", r.Method))
		return
	}
	id := r.PathValue("agent_id")
	a, evs, err := s.store.Get(r.Context(), id)
	switch {
	case errors.Is(err, ErrUnknownAgent):
		writeError(w, http.StatusNotFound, "no agent "+id)
		return
	case err != nil:
		s.opt.Logger.ErrorContext(r.Context(), "registry: read agent", "agent_id", id, "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	agentreq.WriteJSON(w, http.StatusOK, AgentView{Agent: a, Events: evs})
}

// splitOp splits "{agent_id}:{verb}".
func splitOp(op string) (agentID, verb string) {
	i := strings.LastIndexByte(op, ':')
	if i < 0 {
		return op, ""
	}
	return op[:i], op[i+1:]
}
