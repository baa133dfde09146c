// Package cli is the `waooaw` command: the platform operated from outside, as terraform
// operates its infrastructure. It speaks only the gateway's public API (bearer tokens, the
// same policies as any client), so it works the same against production and against the
// local stack of `make run`; it is neither a function nor part of that stack, which it finds
// through .local/endpoints.json only when told nothing else.
//
// Exit codes are a contract scripts rely on (ExitOK and the others); docs/cli.md lists them.
package cli
