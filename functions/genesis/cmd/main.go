// Command genesis serves the Genesis function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Genesis).
package main

import (
	"waooaw.dev/governance/functions/genesis"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(genesis.FunctionName) }
