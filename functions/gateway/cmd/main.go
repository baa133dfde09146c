// Command gateway serves the Gateway function locally with the Functions Framework, as
// Cloud Functions would: PORT (default 8080), FUNCTION_TARGET (default Gateway).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"waooaw.dev/governance/functions/gateway"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", gateway.FunctionName)
		gateway.Prepare() // init() did not, not knowing it would serve the gateway
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
