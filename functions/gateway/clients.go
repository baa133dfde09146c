package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/audit"
	"waooaw.dev/governance/shared/events"
)

// EngagementClients holds one document per webhook client bound to an engagement,
// engagement_clients/{client}:{engagement} (a client id has no colon, so the id is
// unambiguous). data_scope reads them as data.platform.client_engagements: a client posts
// for the engagements an admin bound it to and for no other.
const EngagementClients = "engagement_clients"

// ActionManageClients is binding a webhook client to an engagement, or unbinding it.
const ActionManageClients = "manage_clients"

// clientBinding is an engagement_clients document. An unbound client's document stays,
// with Bound false, so that a repeated unbinding finds what to audit again.
type clientBinding struct {
	EngagementID string `firestore:"engagement_id"`
	ClientID     string `firestore:"client_id"`
	Bound        bool   `firestore:"bound"`
	BoundBy      string `firestore:"bound_by"`
	BoundAt      string `firestore:"bound_at"`
	UnboundBy    string `firestore:"unbound_by,omitempty"`
	UnboundAt    string `firestore:"unbound_at,omitempty"`
}

func bindingID(client, engagement string) string { return client + ":" + engagement }

// bindingWait bounds how long a change waits for this instance's listener to see it.
const bindingWait = 10 * time.Second

type bindBody struct {
	ClientID string `json:"client_id"`
}

// binding is what resolve learned about a binding request.
type binding struct{ engagement, client string }

func clientsTarget(req *request) (Access, *apiError) {
	eng := req.PathValue("id")
	return Access{Action: ActionManageClients, ResourceType: "engagement_client", ResourceID: eng, Engagement: eng, Bundles: []string{"rbac", "data_scope"}}, nil
}

func checkBinding(engagement, client string) *apiError {
	if err := audit.CheckStream(engagement); err != nil || engagement == PlatformStream {
		return errorf(http.StatusBadRequest, "engagement %q: not usable as an engagement (platform clients are listed in the policies' data)", engagement)
	}
	if !clientIDRE.MatchString(client) {
		return errorf(http.StatusBadRequest, "client_id: 1 to 64 of [A-Za-z0-9_-] is required")
	}
	return nil
}

func (s *Server) resolveBind(req *request, a *Access) *apiError {
	var b bindBody
	if aerr := decodeBody(req, &b); aerr != nil {
		return aerr
	}
	eng := req.PathValue("id")
	if aerr := checkBinding(eng, b.ClientID); aerr != nil {
		return aerr
	}
	a.ResourceID = bindingID(b.ClientID, eng)
	req.route = binding{engagement: eng, client: b.ClientID}
	return nil
}

func (s *Server) resolveUnbind(req *request, a *Access) *apiError {
	eng, client := req.PathValue("id"), req.PathValue("client")
	if aerr := checkBinding(eng, client); aerr != nil {
		return aerr
	}
	a.ResourceID = bindingID(client, eng)
	req.route = binding{engagement: eng, client: client}
	return nil
}

// serveBind binds the client: 201 when it was not bound, 200 when it already was. The
// answer comes once this instance enforces the binding. Its audit event's id comes from the
// binding itself, so answering a repeat publishes it again harmlessly.
func (s *Server) serveBind(w http.ResponseWriter, req *request) error {
	b := req.route.(binding)
	rec, changed, err := s.changeBinding(req, b, true)
	if err != nil {
		return err
	}
	code := http.StatusOK
	if changed {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]string{"engagement_id": rec.EngagementID, "client_id": rec.ClientID, "bound_at": rec.BoundAt})
	return nil
}

// serveUnbind unbinds the client: 204, or 404 when it was not bound (after publishing the
// last unbinding's audit event again, in case a crash lost it).
func (s *Server) serveUnbind(w http.ResponseWriter, req *request) error {
	b := req.route.(binding)
	_, changed, err := s.changeBinding(req, b, false)
	if err != nil {
		return err
	}
	if !changed {
		return errorf(http.StatusNotFound, "client %s is not bound to engagement %s", b.client, b.engagement)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// changeBinding sets the binding's document to bound, publishes its audit event on the
// platform stream and waits for the listener to see it.
func (s *Server) changeBinding(req *request, b binding, bound bool) (clientBinding, bool, error) {
	ctx := req.Context()
	ref := s.opt.Firestore.Collection(EngagementClients).Doc(bindingID(b.client, b.engagement))
	var rec clientBinding
	var changed bool
	err := s.opt.Firestore.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		changed, rec = false, clientBinding{}
		snap, err := tx.Get(ref)
		if err != nil && status.Code(err) != codes.NotFound {
			return err
		}
		if err == nil {
			if err := snap.DataTo(&rec); err != nil {
				rec = clientBinding{} // a document of the wrong shape binds nobody: rewrite it
			}
		}
		if rec.Bound == bound && rec.ClientID != "" {
			return nil
		}
		if !bound && !rec.Bound {
			return nil // never bound, or already unbound
		}
		changed = true
		now, actor := s.opt.Now().UTC().Format(time.RFC3339Nano), req.principal.Actor()
		if bound {
			rec = clientBinding{EngagementID: b.engagement, ClientID: b.client, Bound: true, BoundBy: actor, BoundAt: now}
		} else {
			rec.Bound, rec.UnboundBy, rec.UnboundAt = false, actor, now
		}
		return tx.Set(ref, rec)
	})
	if err != nil {
		return rec, false, &apiError{code: http.StatusServiceUnavailable, msg: "engagement store unavailable; retry", cause: err}
	}
	req.log = append(req.log, "engagement", b.engagement, "client", b.client, "bound", bound, "changed", changed)
	if rec.ClientID != "" {
		env, err := bindingAudit(rec)
		if err != nil {
			return rec, false, err
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
		defer cancel()
		if _, err := s.opt.Publisher.Publish(pctx, events.TopicAuditEvents, env); err != nil {
			return rec, false, &apiError{code: http.StatusServiceUnavailable, msg: "could not publish; retry the same request", cause: err}
		}
	}
	if s.opt.Watch != nil {
		wctx, cancel := context.WithTimeout(ctx, bindingWait)
		defer cancel()
		if err := s.opt.Watch.WaitBinding(wctx, b.client, b.engagement, bound); err != nil {
			return rec, false, &apiError{code: http.StatusServiceUnavailable, msg: "the change is stored but not yet enforced; retry the same request", cause: err}
		}
	}
	return rec, changed, nil
}

// bindingAudit is the platform stream's entry for a binding or an unbinding.
func bindingAudit(b clientBinding) (events.Envelope, error) {
	eventType, action, actor, at := "waooaw.engagement.client_bound", "bind_client", b.BoundBy, b.BoundAt
	if !b.Bound {
		eventType, action, actor, at = "waooaw.engagement.client_unbound", "unbind_client", b.UnboundBy, b.UnboundAt
	}
	sum := sha256.Sum256([]byte(b.EngagementID + "\x00" + b.ClientID + "\x00" + b.BoundAt + "\x00" + b.UnboundAt))
	env, err := events.New(AuditEventType, Source, actor, map[string]any{
		"stream": PlatformStream, "event_type": eventType,
		"actor_id": actor, "actor_type": "human", "action": action,
		"target": "client:" + b.ClientID, "context": map[string]string{"engagement_id": b.EngagementID, "client_id": b.ClientID},
		"result": map[bool]string{true: "bound", false: "unbound"}[b.Bound],
	})
	if err != nil {
		return events.Envelope{}, err
	}
	env.EventID = "bind-" + hex.EncodeToString(sum[:16])
	env.CorrelationID = env.EventID
	env.Time = at
	env.EngagementID = b.EngagementID
	return env, nil
}
