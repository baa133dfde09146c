// Package rules embeds the platform's YAML decision tables. The tables are the
// only home of the thresholds, caps and timeouts the domain gives; code reads
// them through waooaw.dev/governance/shared/rules.
package rules

import "embed"

// FS holds every *.yaml table at its root.
//
//go:embed *.yaml
var FS embed.FS
