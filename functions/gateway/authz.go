package gateway

import (
	"context"
	"fmt"

	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/logging"
	"waooaw.dev/governance/shared/policy"
)

// Principal is who a request comes from, once authenticated.
type Principal struct {
	Kind       string // "client" (signed webhook) or "user" (bearer token)
	ID         string // client id or token subject
	Role       string // users: the token's role; clients: ClientRole
	Engagement string // users only: the token's engagement claim
}

// Actor is the principal as an envelope's actor field ("client:<id>", "user:<sub>").
func (p Principal) Actor() string { return p.Kind + ":" + p.ID }

// ClientRole is the role a signed webhook client acts with: an agent or its operator
// reporting in, at operator level in the rbac policy.
const ClientRole = auth.RoleOperator

// Actions of the gateway's routes, as the rbac policy names them.
const (
	ActionSubmit         = "submit"          // a client's webhook
	ActionVerify         = "verify"          // verifying an audit stream
	ActionReadAudit      = "read_audit"      // reading an audit stream's entries
	ActionAssignGovernor = "assign_governor" // setting an engagement's Governor
	ActionCreate         = "create"          // submitting or revising an agent request
	ActionRead           = "read"            // reading an agent request
	ActionList           = "list"            // listing approvals
)

// Access is what a request asks to do, in the policies' terms.
type Access struct {
	Action       string // an rbac action (data.platform.actions): submit, verify, ...
	ResourceType string // health_report, slo_breach, approval_request, audit_stream, ...
	ResourceID   string
	// Engagement is resource.engagement_id, for data_scope and governor.
	Engagement string
	// Bundles are the policies asked, in order; default: the Authorizer's own.
	Bundles []string
}

// Verdict is the enforcement point's answer about one request.
type Verdict struct {
	Allow       bool
	Reasons     []string // why, in the policies' words
	DecisionIDs []string // one per policy decision, as attested on policy_attestations
}

// Authorizer is the policy enforcement point every route passes through after
// authentication. An error means no decision could be made (the request fails with 503),
// never a refusal.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, a Access) (Verdict, error)
}

// Policy is the Authorizer of the platform: the embedded OPA bundles of shared/policy,
// every decision attested by the engine's attester.
type Policy struct {
	Engine *policy.Engine
	// Bundles are asked in order, the first refusal wins; default: rbac.
	Bundles []string
}

// EnforcementPoint names the gateway on its attestations.
const EnforcementPoint = "gateway"

// Authorize implements Authorizer.
func (pa Policy) Authorize(ctx context.Context, p Principal, a Access) (Verdict, error) {
	bundles := a.Bundles
	if len(bundles) == 0 {
		bundles = pa.Bundles
	}
	if len(bundles) == 0 {
		bundles = []string{"rbac"}
	}
	subject := map[string]any{"id": p.ID, "type": p.Kind, "role": p.Role}
	if p.Engagement != "" {
		subject["engagements"] = []any{p.Engagement}
	}
	input := map[string]any{
		"subject":  subject,
		"action":   a.Action,
		"resource": map[string]any{"type": a.ResourceType, "id": a.ResourceID},
	}
	if a.Engagement != "" {
		input["resource"].(map[string]any)["engagement_id"] = a.Engagement
	}
	v, err := pa.Engine.DecideAll(ctx, bundles, input, policy.Meta{EnforcementPoint: EnforcementPoint, CorrelationID: logging.CorrelationID(ctx)})
	if err != nil {
		return Verdict{}, fmt.Errorf("gateway: policy %s %s: %w", a.Action, a.ResourceType, err)
	}
	out := Verdict{Allow: v.Allow, Reasons: v.Reasons}
	for _, d := range v.Decisions {
		out.DecisionIDs = append(out.DecisionIDs, d.DecisionID)
	}
	return out, nil
}
