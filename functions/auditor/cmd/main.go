// Command auditor serves the Auditor function locally as Cloud Functions would: PORT
// (default 8080), FUNCTION_TARGET (default Auditor).
package main

import (
	"waooaw.dev/governance/functions/auditor"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(auditor.FunctionName) }
