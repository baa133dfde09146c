// Command main runs the PDP function locally with functions-framework-go on
// $PORT (default 8080).
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "waooaw.dev/governance/functions/pdp"
)

func main() {
	// Serve the one function at "/" so OPA's paths reach it unchanged.
	if os.Getenv("FUNCTION_TARGET") == "" {
		_ = os.Setenv("FUNCTION_TARGET", "PDP")
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
