// Package gateway is the platform's HTTP front door: signed webhooks from clients become
// events on Pub/Sub (with an audit entry); users submit agent requests (each starts an
// agent_creation workflow execution), revise them and read them; Governors decide approvals
// (delivering the workflow's callback); admins assign Governors; governors and auditors read
// and verify audit streams. Every route runs the same chain: method, target, authenticate,
// resolve (what the decision needs from the body or from Firestore), authorize (the one
// policy enforcement point), serve.
package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/firestore"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/events"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/notification"
	"waooaw.dev/governance/shared/rules"
	"waooaw.dev/governance/shared/secrets"
	"waooaw.dev/governance/shared/workflowexec"
)

// MaxBodyBytes is the largest webhook body accepted.
const MaxBodyBytes = 256 << 10

// TokenVerifier checks bearer tokens (auth.Verifier in production).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*auth.Claims, error)
}

// Options are the gateway's collaborators. Publisher, Firestore, Secrets and Tokens are
// required.
type Options struct {
	Publisher events.Publisher
	Firestore *firestore.Client // replay records; audit streams for verification
	Secrets   secrets.Source    // webhook keys, as secrets named WebhookSecretName(client)
	Tokens    TokenVerifier
	// Clients are the only webhook clients accepted (none when empty); which engagements
	// each may post for is data (POST /v1/engagements/{id}/clients).
	Clients []string
	// Watch, when set, is the listener keeping the policies' data: a change to a client's
	// engagements is answered once it sees it.
	Watch *Watch
	// Authorizer decides every request (Policy in production). Required.
	Authorizer Authorizer
	// VerifyStream defaults to audit.Verify on Firestore.
	VerifyStream func(ctx context.Context, stream string) (audit.Report, error)
	// VerifyLimit bounds each caller's walks of audit streams (a verification not answered
	// from the cache); default DefaultVerifyLimit.
	VerifyLimit *RateLimit
	Logger      *slog.Logger     // defaults to slog.Default()
	Now         func() time.Time // defaults to time.Now

	// Workflows starts agent_creation executions and delivers callbacks. Without it the
	// agent-request and decision routes answer 503.
	Workflows *workflowexec.Client
	// AgentCreationWorkflow is projects/P/locations/L/workflows/W; without it creating a
	// request answers 503.
	AgentCreationWorkflow string
	// Limits go into every execution's argument; default: the embedded rules' StageLimits.
	Limits *rules.Limits
	// DecisionWait bounds how long a decision waits for the workflow to close the approval
	// (default 10 s).
	DecisionWait time.Duration

	// AuditLog is the audit log's database, which verification and entries read; default
	// Firestore (the log shares the default database, as on the local stack).
	AuditLog *firestore.Client

	// ConsoleDevTokenURL, when set, is the development token issuer the console's sign-in
	// offers (EnvConsoleDevToken); never set in production.
	ConsoleDevTokenURL string
}

// Server serves the gateway's routes.
type Server struct {
	opt     Options
	mux     *http.ServeMux
	ledger  *ledger
	reports *reportCache // verification reports by stream, valid while its head is unchanged
	walks   *limiter     // each caller's walks of audit streams
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Publisher == nil || o.Firestore == nil || o.Secrets == nil || o.Tokens == nil || o.Authorizer == nil {
		return nil, errors.New("gateway: Publisher, Firestore, Secrets, Tokens and Authorizer are required")
	}
	if o.AuditLog == nil {
		o.AuditLog = o.Firestore
	}
	if o.VerifyStream == nil {
		fs := o.AuditLog
		o.VerifyStream = func(ctx context.Context, stream string) (audit.Report, error) { return audit.Verify(ctx, fs, stream) }
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DecisionWait == 0 {
		o.DecisionWait = 10 * time.Second
	}
	if o.Limits == nil {
		l, err := StageLimits()
		if err != nil {
			return nil, err
		}
		o.Limits = &l
	}
	if o.VerifyLimit == nil {
		l := DefaultVerifyLimit
		o.VerifyLimit = &l
	}
	s := &Server{opt: o, ledger: &ledger{fs: o.Firestore, now: o.Now},
		reports: newReportCache(maxCachedReports), walks: newLimiter(*o.VerifyLimit)}
	s.mux = http.NewServeMux()
	s.mux.Handle("/v1/webhooks/{kind}", s.chain(endpoint{method: http.MethodPost, target: webhookTarget, authn: s.authenticateWebhook, resolve: s.resolveWebhook, serve: s.serveWebhook}))
	s.mux.Handle("/v1/audit/streams/{stream}/verify", s.chain(endpoint{method: http.MethodGet, target: verifyTarget, authn: s.authenticateBearer, serve: s.serveVerify}))
	s.mux.Handle("/v1/audit/streams/{stream}/entries", s.chain(endpoint{method: http.MethodGet, target: entriesTarget, authn: s.authenticateBearer, serve: s.serveEntries}))
	s.mux.Handle("/v1/engagements", s.chain(endpoint{method: http.MethodPost, target: engagementTarget, authn: s.authenticateBearer, resolve: s.resolveEngagement, serve: s.serveEngagement}))
	s.mux.Handle("/v1/engagements/{id}/clients", s.chain(endpoint{method: http.MethodPost, target: clientsTarget, authn: s.authenticateBearer, resolve: s.resolveBind, serve: s.serveBind}))
	s.mux.Handle("/v1/engagements/{id}/clients/{client}", s.chain(endpoint{method: http.MethodDelete, target: clientsTarget, authn: s.authenticateBearer, resolve: s.resolveUnbind, serve: s.serveUnbind}))
	s.mux.Handle("/v1/agent-requests", s.chain(endpoint{method: http.MethodPost, target: createTarget, authn: s.authenticateBearer, resolve: s.resolveCreate, serve: s.serveCreate}))
	s.mux.Handle("/v1/agent-requests/{id}", s.chain(endpoint{method: http.MethodGet, target: readRequestTarget, authn: s.authenticateBearer, resolve: s.resolveRequest, serve: s.serveRequest}))
	s.mux.Handle("/v1/agent-requests/{id}/revisions", s.chain(endpoint{method: http.MethodPost, target: revisionTarget, authn: s.authenticateBearer, resolve: s.resolveRevision, serve: s.serveRevision}))
	s.mux.Handle("/v1/approvals", s.chain(endpoint{method: http.MethodGet, target: listApprovalsTarget, authn: s.authenticateBearer, resolve: s.resolveListApprovals, serve: s.serveListApprovals}))
	s.mux.Handle("/v1/approvals/{id}/acknowledge", s.chain(endpoint{method: http.MethodPost, target: acknowledgeTarget, authn: s.authenticateBearer, resolve: s.resolveAcknowledge, serve: s.serveAcknowledge}))
	s.mux.HandleFunc("GET "+notification.LinkPath, s.serveLinkPage)
	s.mux.Handle("POST "+notification.LinkPath, linkHTML(s.chain(endpoint{method: http.MethodPost, target: linkTarget, authn: s.authenticateLink, resolve: s.resolveLink, serve: s.serveLink})))
	s.mux.Handle("/v1/approvals/{action}", s.chain(endpoint{method: http.MethodPost, target: decideTarget, authn: s.authenticateBearer, resolve: s.resolveDecide, serve: s.serveDecide}))
	s.mux.Handle(ConsolePath, consoleHandler(o.ConsoleDevTokenURL))
	s.mux.Handle("/", s.chain(endpoint{target: func(*request) (Access, *apiError) {
		return Access{}, errorf(http.StatusNotFound, "no route for this path")
	}}))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// request carries what the chain learns about a request to the later steps.
type request struct {
	*http.Request
	principal Principal
	body      []byte // webhooks: the raw, verified body
	webhook   auth.Webhook
	kind      kind
	log       []any // attributes for the access log line
	// missing, when set by resolve, is the 404 answered once the caller passed rbac: what
	// the request names does not exist.
	missing *apiError
	route   any // what resolve learned, for serve
}

// endpoint is one route's steps; the chain runs them in order and stops at the first error.
type endpoint struct {
	method string
	// target names the action and resource (404 for what does not exist).
	target func(*request) (Access, *apiError)
	// authn sets the principal (401).
	authn func(*request) *apiError
	// resolve, if set, completes the access from the body or from Firestore (the engagement
	// a decision is about); it runs after authentication and before authorization.
	resolve func(*request, *Access) *apiError
	// serve answers; any error it returns becomes the answer.
	serve func(http.ResponseWriter, *request) error
}

// statusWriter remembers the status written, for the access log.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) chain(e endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.opt.Now()
		ctx := r.Context()
		if tr, ok := logging.TraceFromRequest(r); ok {
			ctx = logging.WithTrace(ctx, tr)
		}
		corr := r.Header.Get(logging.HeaderCorrelationID)
		badCorr := corr != "" && !logging.ValidCorrelationID(corr)
		if corr == "" || badCorr {
			corr = events.NewID()
		}
		ctx = logging.WithCorrelationID(ctx, corr)
		w.Header().Set(logging.HeaderCorrelationID, corr)
		req := &request{Request: r.WithContext(ctx)}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}

		err := s.run(sw, req, e, badCorr)
		var status int
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = &apiError{code: http.StatusInternalServerError, msg: "internal error", cause: err}
			}
			status = ae.code
			writeError(sw, ae)
			if ae.cause != nil {
				req.log = append(req.log, "error", ae.cause.Error())
			}
			req.log = append(req.log, "reason", ae.msg)
		} else {
			status = sw.code
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelWarn
		}
		attrs := append([]any{"method", r.Method, "path", r.URL.Path, "status", status,
			"latency_ms", float64(s.opt.Now().Sub(start).Microseconds()) / 1000}, req.log...)
		if req.principal.ID != "" {
			attrs = append(attrs, "principal", req.principal.Actor())
		}
		s.opt.Logger.Log(ctx, level, "gateway request", attrs...)
	})
}

func (s *Server) run(w http.ResponseWriter, req *request, e endpoint, badCorr bool) error {
	access, aerr := e.target(req)
	if aerr != nil {
		return aerr
	}
	if req.Method != e.method {
		w.Header().Set("Allow", e.method)
		return errorf(http.StatusMethodNotAllowed, "method %s not allowed; use %s", req.Method, e.method)
	}
	if badCorr {
		return errorf(http.StatusBadRequest, "header %s must be 1 to 128 of [A-Za-z0-9._:-]", logging.HeaderCorrelationID)
	}
	if aerr := e.authn(req); aerr != nil {
		return aerr
	}
	if e.resolve != nil {
		if aerr := e.resolve(req, &access); aerr != nil {
			return aerr
		}
	}
	if req.missing != nil {
		// Nothing to scope the decision to: rbac alone says whether the caller may know.
		access.Bundles, access.Engagement = []string{"rbac"}, ""
	} else {
		// Every route is asked of the budget too, last: the platform's budget state (kept
		// in the policies' data by the listener) refuses all but governance work when halted.
		access.Bundles = append(slices.Clip(access.Bundles), BudgetBundle)
	}
	if aerr := s.authorize(w, req, access); aerr != nil {
		return aerr
	}
	if req.missing != nil {
		return req.missing
	}
	return e.serve(w, req)
}

// BudgetBundle is the policy every route's request is asked of after its own.
const BudgetBundle = "budget"

// HeaderDecisionID carries the ids of the policy decisions behind an answer (comma
// separated), as attested on policy_attestations.
const HeaderDecisionID = "X-Waooaw-Decision-Id"

// authorize is the policy enforcement point: every route's request passes here once, after
// authentication and before anything is read or written on its behalf.
func (s *Server) authorize(w http.ResponseWriter, req *request, a Access) *apiError {
	v, err := s.opt.Authorizer.Authorize(req.Context(), req.principal, a)
	if err != nil {
		return &apiError{code: http.StatusServiceUnavailable, msg: "authorization unavailable; retry", cause: err}
	}
	if len(v.DecisionIDs) > 0 {
		w.Header().Set(HeaderDecisionID, strings.Join(v.DecisionIDs, ","))
		req.log = append(req.log, "decision_id", strings.Join(v.DecisionIDs, ","))
	}
	if !v.Allow {
		return errorf(http.StatusForbidden, "forbidden: %s", strings.Join(v.Reasons, "; "))
	}
	return nil
}

// authenticateBearer accepts a valid platform token.
func (s *Server) authenticateBearer(req *request) *apiError {
	tok, err := auth.BearerToken(req.Request)
	if err != nil {
		return &apiError{code: http.StatusUnauthorized, msg: "a bearer token is required", cause: err}
	}
	c, err := s.opt.Tokens.Verify(req.Context(), tok)
	if err != nil {
		return &apiError{code: http.StatusUnauthorized, msg: "invalid token", cause: err}
	}
	req.principal = Principal{Kind: "user", ID: c.Subject, Role: c.Role, Engagement: c.Engagement}
	return nil
}
