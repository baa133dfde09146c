// Command pdp serves the PDP function locally as Cloud Functions would: PORT (default
// 8080), FUNCTION_TARGET (default PDP), served at "/" so OPA's paths reach it unchanged.
package main

import (
	"waooaw.dev/governance/functions/pdp"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(pdp.FunctionName) }
