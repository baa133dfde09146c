// Package policies embeds the platform's Rego v1 policy bundles (package
// waooaw.<bundle>), their *_test.rego unit tests and the base data document
// data/platform.json, which is mounted at data.platform.
package policies

import "embed"

// FS holds *.rego (policies and tests) and data/platform.json.
//
//go:embed *.rego data/platform.json
var FS embed.FS

// Bundles are the policy bundles a caller may ask for. Each exposes decision
// (an object) and allow (a boolean), built by lib.rego from the bundle's
// grants, denials and obligations sets and its fallback reason.
var Bundles = []string{"rbac", "governor", "trial", "budget", "data_scope", "ai", "communication"}

// DataFile is the base data document inside FS.
const DataFile = "data/platform.json"
