// Command architect serves the Architect function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Architect).
package main

import (
	"waooaw.dev/governance/functions/architect"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(architect.FunctionName) }
