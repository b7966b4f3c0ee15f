# The two commands that matter on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build up down demo test fmt-check clippy check-events test-unit test-conformance test-e2e clean

setup: ## Install the local tooling (moto, cargo-lambda) into .venv
	bash infra/local/setup.sh

build: ## Build every binary: functions, simulator, runner
	$(CARGO) build --workspace --bins

up: setup build ## Start the local stack in the background; writes .local/stack.env
	bash infra/local/up.sh

down: ## Stop every process `make up` started
	bash infra/local/down.sh

demo: setup build ## Run the main job on the local stack
	bash infra/local/demo.sh

test: setup fmt-check clippy check-events test-unit test-conformance test-e2e ## Everything CI checks

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

check-events: ## The sample HR events against the published JSON Schema
	.venv/bin/python infra/local/check_events.py

test-unit:
	$(CARGO) test --workspace --lib --bins

test-conformance: ## The real SDK clients against the simulator
	$(CARGO) test -p aws-simulator --test conformance

test-e2e: build ## Real function binaries, moto and the simulator, through the local runner
	$(CARGO) test -p e2e --test e2e

clean: down
	rm -rf .local
