# Signet. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

SWIFT ?= swift
# CI builds with warnings as errors so a warning cannot land.
ifeq ($(CI),true)
WERROR := -Xswiftc -warnings-as-errors
endif
DEBUG_BIN = $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
# `make DEPS=build ...` installs only the build packages (the Containerfile's build stage).
DEPS ?= all

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install the Debian packages the build and tests need (when root)
	@scripts/install-deps.sh $(DEPS)

.PHONY: build
build: deps ## debug build of every target
	$(SWIFT) build $(WERROR)

.PHONY: release
release: deps ## release build of the signet executable
	$(SWIFT) build -c release --product signet

.PHONY: release-static
release-static: deps ## release signet with the Swift runtime linked in: needs only libc, libstdc++, OpenSSL, libcrypt
	$(SWIFT) build -c release --static-swift-stdlib --product signet

.PHONY: test
test: deps ## build and run every test, the independent-verifier interop tests included
	$(SWIFT) build --build-tests $(WERROR)
	SIGNET_BIN="$(DEBUG_BIN)/signet" $(SWIFT) test --skip-build
	scripts/k8s-check.sh "$(DEBUG_BIN)/signet"

.PHONY: k8s-check
k8s-check: deps ## validate k8s/ offline (pinned kubernetes-validate) and check-config the ConfigMap's configuration
	$(SWIFT) build --product signet $(WERROR)
	scripts/k8s-check.sh "$(DEBUG_BIN)/signet"

.PHONY: run
run: release ## start the relay's first-run default: 127.0.0.1:10025, development key, mail captured in signet-state/captured
	$(shell $(SWIFT) build -c release --show-bin-path 2>/dev/null)/signet run

.PHONY: test-sanitize
test-sanitize: deps ## the in-process test suites under ASan, UBSan and TSan (SANITIZERS=, FILTER= to narrow)
	scripts/test-sanitize.sh

.PHONY: soak
soak: deps ## a long run (N messages, default 200000) through signet run: counts, duplicates, losses, RSS and fds
	scripts/soak.sh

.PHONY: fuzz
fuzz: deps ## libFuzzer + AddressSanitizer on every parser of untrusted bytes, FUZZ_SECONDS each (default 60)
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

.PHONY: fuzz-smoke
fuzz-smoke: deps ## the same fuzzers for 10 s each (CI)
	scripts/fuzz.sh 10

.PHONY: bench
bench: deps ## micro benchmarks next to openssl speed, then the end-to-end comparison (load → Signet / Postfix+OpenDKIM / Postfix+rspamd → sink)
	scripts/bench.sh

.PHONY: bench-e2e
bench-e2e: deps ## only the end-to-end comparison (N, C, SIZE, SCENARIOS="a b c d e" override)
	scripts/bench-e2e.sh

.PHONY: relay-cost
relay-cost: deps ## CPU per message of the relay, the sink and the generator in one run (ALG, N; MALLOCS=1 counts mallocs)
	scripts/relay-cost.sh

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
