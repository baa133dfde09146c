# Shared shape of every bundle's decision. Each bundle collects three sets
# (grants, denials, obligations) and a fallback reason and folds them here, so
# default deny and the decision format are written once. The Go enforcement
# point (shared/policy) evaluates denials, then grants and obligations only
# when nothing denied, then the fallback only when nothing granted either, and
# applies this same fold in Go; the pdp-vs-opa test proves the two agree.
package waooaw.lib

# The default-deny reason when nothing granted and nothing denied.
no_grant := "no rule grants this request"

# A decision allows only when some rule granted it and none denied it.
default allowed(_, _) := false

allowed(grants, denials) if {
	count(grants) > 0
	count(denials) == 0
}

decide(grants, denials, obls, fallback) := {
	"allow": allowed(grants, denials),
	"outcome": outcome(grants, denials, obls),
	"obligations": bound_obligations(grants, denials, obls),
	"reasons": reasons(grants, denials, fallback),
	"ttl_seconds": data.platform.decision_ttl_seconds,
}

outcome(grants, denials, obls) := "deny" if {
	not allowed(grants, denials)
} else := "allow" if {
	count(obls) == 0
} else := "allow_with_obligations"

# Obligations bind only an allowed decision.
bound_obligations(grants, denials, obls) := sort(obls) if {
	allowed(grants, denials)
} else := []

reasons(grants, denials, fallback) := sort(grants) if {
	allowed(grants, denials)
} else := sort(denials) if {
	count(denials) > 0
} else := [fallback] # nothing granted, nothing denied: default deny says why
