package policies_test

import "os"

// readTestdata reads fixtures that are not embedded (they are for tests only).
func readTestdata(path string) ([]byte, error) { return os.ReadFile(path) }
