// Command gateway serves the Gateway function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Gateway).
package main

import (
	"waooaw.dev/governance/functions/gateway"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(gateway.FunctionName) }
