// Command notifier serves the Notifier function locally as Cloud Functions would:
// PORT (default 8080), FUNCTION_TARGET (default Notifier).
package main

import (
	"waooaw.dev/governance/functions/notifier"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(notifier.FunctionName) }
