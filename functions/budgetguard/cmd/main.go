// Command budgetguard serves the BudgetGuard function locally as Cloud Functions would:
// PORT (default 8080), FUNCTION_TARGET (default BudgetGuard).
package main

import (
	"waooaw.dev/governance/functions/budgetguard"
	"waooaw.dev/governance/shared/startup"
)

func main() { startup.Main(budgetguard.FunctionName) }
