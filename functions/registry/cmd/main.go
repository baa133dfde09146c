// Command registry serves the Registry function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Registry).
package main

import (
	"waooaw.dev/governance/functions/registry"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(registry.FunctionName) }
