# make run     the local stack (emulators, dev token issuer, every function) until Ctrl-C;
#              CLOCK=virtual for the Workflows emulator's virtual clock, FRESH=1 to start empty
# make test    lint, then every module's tests against one pair of emulators
# make lint    gofmt and go vet over every module of go.work, terraform fmt -check
# make package dist/<function>.zip for each function, each building alone
# make bench   every module's benchmarks, figures printed (and kept in .local/bench.txt)
# make load    with `make run` up: the pdp against `opa run --server` under load, the gateway's
#              refused route, attestations counted (LOAD_FLAGS: e.g. -corr run -d 20s)
# make demo    with `make run CLOCK=virtual` up: one seed request vetoed at hour 23, stage by stage
# make cost    the monthly bill by service (idle, the seed's workload, ten times it) from the
#              units recorded in infra/local/cost/units.json; needs nothing running
# make cost-measure  measures those units on a stack of its own and rewrites units.json
# make clean   build output (dist/, .local/bin, .local/logs); keys and secrets stay

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
DIST ?= dist
LOCAL_BIN := .local/bin/waooaw-local
# The workspace's modules, as absolute folders (go.work is the list).
MODULES = $(shell $(GO) list -m -f '{{.Dir}}')
GO_FILES = $(shell find $(MODULES) -name '*.go' -not -path '*/vendor/*' -not -path '*/testdata/*')

.PHONY: run test test-modules lint package bench bench-modules load demo cost cost-measure clean waooaw-local modules

# $(shell) hides a failing `go list`; an empty module list must not pass as "all green".
modules:
	@[ -n "$(strip $(MODULES))" ] || { echo "FAIL: go list -m found no modules (is go.work broken?)" >&2; exit 1; }

# Built and exec'd, not `go run`: a SIGTERM sent to make reaches the stack itself, which then
# saves Firestore's data before stopping the emulators (`go run` would die and orphan it).
# CLOCK=virtual runs the Workflows emulator on its virtual clock; FRESH=1 starts empty.
run: waooaw-local
	exec $(LOCAL_BIN) run $(if $(CLOCK),-clock=$(CLOCK)) $(if $(FRESH),-fresh) $(if $(METER),-meter)

# The wrapper is built, not `go run`, so that a SIGTERM sent to it reaches the emulators'
# shutdown rather than only the go tool.
waooaw-local:
	$(GO) build -o $(LOCAL_BIN) ./infra/local/cmd/waooaw-local

test: lint waooaw-local
	$(LOCAL_BIN) emulators -- $(MAKE) --no-print-directory test-modules

# Runs every module even when one fails, then fails naming them. The long timeout is for a
# fresh machine, where the packaging test compiles vendored functions from cold.
test-modules: modules
	@failed=""; \
	for d in $(MODULES); do \
		echo "=== go test $${d#$(CURDIR)/}"; \
		( cd "$$d" && $(GO) test -count=1 -timeout 20m ./... ) || failed="$$failed $${d#$(CURDIR)/}"; \
	done; \
	echo "=== go test -race infra/local/workflows (the Workflows emulator is concurrent by nature)"; \
	( cd infra/local && $(GO) test -race -count=1 ./workflows/... ) || failed="$$failed infra/local/workflows(-race)"; \
	echo "=== go test -race shared/policy (pooled evaluators, the attestation queue, decision ids)"; \
	( cd shared && $(GO) test -race -count=1 ./policy/... ) || failed="$$failed shared/policy(-race)"; \
	if [ -n "$$failed" ]; then echo "FAIL: tests failed in:$$failed" >&2; exit 1; fi; \
	echo "ok: all modules passed"

lint: modules
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then echo "FAIL: gofmt -l lists:" >&2; echo "$$unformatted" >&2; exit 1; fi
	@failed=""; \
	for d in $(MODULES); do ( cd "$$d" && $(GO) vet ./... ) || failed="$$failed $${d#$(CURDIR)/}"; done; \
	if [ -n "$$failed" ]; then echo "FAIL: go vet failed in:$$failed" >&2; exit 1; fi
	@command -v terraform >/dev/null || { echo "FAIL: terraform not installed" >&2; exit 1; }
	terraform fmt -check -recursive -diff infra/terraform

package:
	$(GO) run ./infra/local/cmd/waooaw-local package -out $(DIST)

bench: waooaw-local
	@mkdir -p .local
	$(LOCAL_BIN) emulators -- $(MAKE) --no-print-directory bench-modules | tee .local/bench.txt

bench-modules: modules
	@for d in $(MODULES); do \
		echo "=== go test -bench $${d#$(CURDIR)/}"; \
		( cd "$$d" && $(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./... ) || exit 1; \
	done

load:
	$(GO) run ./infra/local/cmd/loadtest $(LOAD_FLAGS)

demo:
	$(GO) run ./infra/local/cmd/demo

cost:
	$(GO) run ./infra/local/cmd/cost

# The e2e package starts its own metered stack on the virtual clock in a temporary folder.
cost-measure:
	cd infra/local && $(GO) test -count=1 -timeout 20m -run '^TestCostUnits$$' -v ./e2e/ -args -update-units

clean:
	rm -rf $(DIST) .local/bin .local/logs
	rm -rf functions/*/vendor
