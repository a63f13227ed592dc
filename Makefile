# berth: the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM ?= npm

.PHONY: help
help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

# `npm ci` installs exactly the lock file. npm 11 leaves other platforms' optional packages (the
# native builds of @swc/core and friends) out of a lock written on Linux and then refuses `npm ci`
# for them; `npm install` with the same lock installs the same versions and adds those entries.
node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund || $(NPM) install --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: node_modules/.installed ## Install the Node dependencies (brings Node 24 with them)

.PHONY: tools
tools: ## Build the test-ground binaries (etcd, kube-apiserver, kwok, registry, crane, helm) into bin/
	bash hack/tools.sh
	bash hack/system-deps.sh

.PHONY: build
build: deps ## Compile TypeScript into dist/
	$(NPM) run build

.PHONY: run
run: deps tools ## Run berth: against $$KUBECONFIG, or on a local control plane when it is unset
	$(NPM) run --silent run

.PHONY: check
check: deps ## Type check, lint, formatting and generated-code drift
	$(NPM) run --silent check

.PHONY: test
test: ## Install what is needed and run every check and test (prints each phase's time)
	@bash hack/timed.sh deps $(MAKE) --no-print-directory deps
	@bash hack/timed.sh tools $(MAKE) --no-print-directory tools
	@bash hack/timed.sh images bash hack/images.sh
	@bash hack/timed.sh checks $(NPM) run --silent check
	@bash hack/timed.sh tests $(NPM) test

.PHONY: images
images: deps tools ## Build berth's, the registry's and the pause image into bin/images/, without Docker
	bash hack/images.sh

.PHONY: bench
bench: deps tools ## Run the benchmarks and print their figures
	$(NPM) run --silent bench

.PHONY: clean
clean: ## Remove build output (keeps bin/ and the tool cache)
	rm -rf dist coverage
