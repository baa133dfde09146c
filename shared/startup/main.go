package startup

import (
	"fmt"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
)

// Main serves one function as Cloud Functions runs it: FUNCTION_TARGET (default name) is
// the entry point served at "/", PORT (default 8080) the port. A function's cmd/main.go is
// this one call; it is what `make run` starts.
func Main(name string) {
	if os.Getenv("FUNCTION_TARGET") == "" {
		os.Setenv("FUNCTION_TARGET", name)
	}
	target := os.Getenv("FUNCTION_TARGET")
	prep, ok := registered.Load(target)
	if !ok {
		fmt.Fprintf(os.Stderr, "startup: no function registered as %q\n", target)
		os.Exit(2)
	}
	// init() ran before FUNCTION_TARGET was set here, so it did not prepare the function.
	prep.(func())()
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	if err := funcframework.Start(port); err != nil {
		fmt.Fprintf(os.Stderr, "startup: funcframework.Start: %v\n", err)
		os.Exit(1)
	}
}
