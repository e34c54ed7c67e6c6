# Signet. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
# CI builds with warnings as errors so a warning cannot land.
ifeq ($(CI),true)
WERROR := -Xswiftc -warnings-as-errors
endif
DEBUG_BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install the Debian packages the build and tests need (when root)
	@scripts/install-deps.sh

.PHONY: build
build: deps ## debug build of every target
	$(SWIFT) build $(WERROR)

.PHONY: release
release: deps ## release build of the signet executable
	$(SWIFT) build -c release --product signet

.PHONY: test
test: deps ## build and run every test, the independent-verifier interop tests included
	$(SWIFT) build --build-tests $(WERROR)
	SIGNET_BIN="$(DEBUG_BIN)/signet" $(SWIFT) test --skip-build

.PHONY: run
run: release ## start the relay's first-run default: 127.0.0.1:10025, development key, mail captured in signet-state/captured
	$(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)/signet run

.PHONY: bench
bench: deps ## micro benchmarks next to openssl speed, then the end-to-end comparison (load → Signet / Postfix+OpenDKIM / Postfix+rspamd → sink)
	scripts/bench.sh

.PHONY: bench-e2e
bench-e2e: deps ## only the end-to-end comparison (N, C, SIZE, SCENARIOS="a b c d e" override)
	scripts/bench-e2e.sh

.PHONY: bench-metrics
bench-metrics: release ## relay throughput with metrics exported versus no-op handlers (the instrumentation's cost)
	scripts/bench-metrics.sh

.PHONY: format
format: ## format every Swift file in place
	$(SWIFT) format --in-place --recursive --parallel Package.swift Sources Tests Benchmarks

.PHONY: format-check
format-check: ## fail when a Swift file is not formatted
	$(SWIFT) format lint --strict --recursive --parallel Package.swift Sources Tests Benchmarks

.PHONY: clean
clean: ## remove build products
	rm -rf .build .build-*
