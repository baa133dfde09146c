// Command guardian serves the Guardian function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Guardian).
package main

import (
	"waooaw.dev/governance/functions/guardian"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(guardian.FunctionName) }
