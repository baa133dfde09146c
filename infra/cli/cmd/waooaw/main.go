// Command waooaw operates the platform from outside, through the gateway's public API: log
// in, set an engagement's Governor, submit and follow agent requests, decide approvals and
// read or verify the audit log. See docs/cli.md.
package main

import (
	"os"

	"waooaw.dev/governance/infra/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
