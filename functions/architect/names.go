package architect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/agentreq"
)

// reservation is an agent name held in an engagement (architect_agent_names/{NameID}): the
// request whose architecture review approved it.
type reservation struct {
	RequestID    string `firestore:"request_id"`
	EngagementID string `firestore:"engagement_id"`
	AgentName    string `firestore:"agent_name"`
	At           string `firestore:"at"`
}

// NameID is the reservation's document id: names compare without case or surrounding space
// within an engagement.
func NameID(engagementID, name string) string {
	sum := sha256.Sum256([]byte(engagementID + "\x00" + strings.ToLower(strings.TrimSpace(name))))
	return hex.EncodeToString(sum[:])
}

// nameRef is the reservation of name in the engagement; nil for a spec without a name
// (stage 1 refuses those, so there is nothing to hold).
func (s *Server) nameRef(engagementID, name string) *firestore.DocumentRef {
	if strings.TrimSpace(name) == "" {
		return nil
	}
	return s.fs.Collection(AgentNames).Doc(NameID(engagementID, name))
}

// heldByAnother reports whether another request holds the name. A holder that ended without
// an agent (rejected, denied, failed, vetoed) no longer holds it: the name is free again.
func (s *Server) heldByAnother(tx *firestore.Transaction, ref *firestore.DocumentRef, requestID string) (bool, error) {
	if ref == nil {
		return false, nil
	}
	snap, err := tx.Get(ref)
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("architect: read name: %w", err)
	}
	var n reservation
	if err := snap.DataTo(&n); err != nil {
		return false, fmt.Errorf("architect: read name: %w", err)
	}
	if n.RequestID == requestID {
		return false, nil
	}
	holder, err := tx.Get(s.fs.Collection(agentreq.Requests).Doc(n.RequestID))
	if status.Code(err) == codes.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("architect: read the name's holder %s: %w", n.RequestID, err)
	}
	st, _ := holder.DataAt("status")
	h, _ := st.(string)
	return !agentreq.Terminal(h) || h == agentreq.StatusDeployed, nil
}

// spec is what the review reads from a specification.
type spec struct {
	name       string
	systems    []string // de-duplicated without case, in the spec's order
	costPerDay float64
}

// readSpec takes the review's fields from a spec. Stage 1 has seen every required field, so
// a field of the wrong type is a bad call, not a verdict.
func readSpec(m map[string]any) (spec, error) {
	if m == nil {
		return spec{}, fmt.Errorf("%w: spec is missing", agentreq.ErrBadCall)
	}
	var sp spec
	switch v := m["agent_name"].(type) {
	case nil:
	case string:
		sp.name = strings.TrimSpace(v)
	default:
		return spec{}, fmt.Errorf("%w: spec.agent_name: want a string", agentreq.ErrBadCall)
	}
	switch v := m["external_systems"].(type) {
	case nil:
	case []any:
		seen := map[string]bool{}
		for _, e := range v {
			system, ok := e.(string)
			if !ok {
				return spec{}, fmt.Errorf("%w: spec.external_systems: want a list of strings", agentreq.ErrBadCall)
			}
			system = strings.TrimSpace(system)
			if key := strings.ToLower(system); system != "" && !seen[key] {
				seen[key] = true
				sp.systems = append(sp.systems, system)
			}
		}
	default:
		return spec{}, fmt.Errorf("%w: spec.external_systems: want a list of strings", agentreq.ErrBadCall)
	}
	switch v := m["estimated_cost_usd_per_day"].(type) {
	case nil:
	case float64:
		if v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
			return spec{}, fmt.Errorf("%w: spec.estimated_cost_usd_per_day: want a number of 0 or more", agentreq.ErrBadCall)
		}
		sp.costPerDay = v
	default:
		return spec{}, fmt.Errorf("%w: spec.estimated_cost_usd_per_day: want a number", agentreq.ErrBadCall)
	}
	return sp, nil
}
