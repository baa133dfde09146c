// Command main serves the Auditor function locally, as the Cloud Functions runtime would:
// FUNCTION_TARGET=Auditor PORT=8080 go run ./cmd
package main

import (
	"log"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	_ "waooaw.dev/governance/functions/auditor" // registers Auditor
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", "Auditor") // one function per server, served at "/"
	}
	if err := funcframework.Start(port); err != nil {
		log.Fatalf("funcframework.Start: %v", err)
	}
}
