package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Principal is who a request comes from, once authenticated.
type Principal struct {
	Kind       string // "client" (signed webhook) or "user" (bearer token)
	ID         string // client id or token subject
	Role       string // users only
	Engagement string // users only: the token's engagement claim
}

// Actor is the principal as an envelope's actor field ("client:<id>", "user:<sub>").
func (p Principal) Actor() string { return p.Kind + ":" + p.ID }

// ErrForbidden is wrapped by an Authorizer's refusals.
var ErrForbidden = errors.New("forbidden")

// Authorizer is the policy enforcement point every route passes through after
// authentication: it answers whether principal may perform action on resource. The OPA
// engine (shared/policy) plugs in here; until then RoleRules is the one rule set.
type Authorizer interface {
	Authorize(ctx context.Context, p Principal, action, resource string) error
}

// Rule says who may perform one action.
type Rule struct {
	Clients bool     // any authenticated webhook client
	Roles   []string // users with one of these roles
}

// RoleRules maps an action to its rule; an action without a rule is denied (default deny).
type RoleRules map[string]Rule

// Actions of the gateway's routes.
const (
	ActionAuditVerify = "audit.verify"
)

// DefaultRules are today's rules: webhooks from any known client, and audit verification
// for governors and auditors.
func DefaultRules() RoleRules {
	r := RoleRules{ActionAuditVerify: {Roles: []string{"governor", "auditor"}}}
	for _, k := range kinds {
		r[k.action()] = Rule{Clients: true}
	}
	return r
}

// Authorize implements Authorizer.
func (rr RoleRules) Authorize(_ context.Context, p Principal, action, resource string) error {
	rule, ok := rr[action]
	switch {
	case !ok:
		return fmt.Errorf("%w: no rule allows %s", ErrForbidden, action)
	case p.Kind == "client" && rule.Clients:
		return nil
	case p.Kind == "user" && slices.Contains(rule.Roles, p.Role):
		return nil
	case p.Kind == "user":
		return fmt.Errorf("%w: role %q may not %s %s", ErrForbidden, p.Role, action, resource)
	default:
		return fmt.Errorf("%w: %s may not %s %s", ErrForbidden, p.Actor(), action, resource)
	}
}
