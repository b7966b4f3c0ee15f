# The two commands that matter on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build setup+build up down demo test fmt-check clippy check-events check-template check-calls test-unit test-conformance test-e2e sam-build bench bench-tools bench-smoke bench-micro chaos chaos-smoke e2e+chaos-smoke+demo clean

setup: ## Install the local tooling (moto, cargo-lambda; cfn-lint, SAM CLI) into .venv and .venv-infra
	bash infra/local/setup.sh

# Clippy lints the workspace's own crates while they compile: clippy-driver stands in for rustc
# there, as `cargo clippy` does it, and still emits the code. The dependencies are then compiled
# once, for the build, not a second time in check mode for clippy (about 4 min of CI on 2 cores).
# LINT_WHILE_BUILDING=0 builds with plain rustc, and `make clippy` runs `cargo clippy` instead.
LINT_WHILE_BUILDING ?= 1
ifeq ($(LINT_WHILE_BUILDING),1)
export RUSTC_WORKSPACE_WRAPPER := $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)
# How `cargo clippy -- -D warnings` hands its arguments to clippy-driver.
export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
endif
# Release builds (the bench's, SAM's) are compiled by plain rustc: clippy-driver turns MIR
# optimisations off.
RELEASE_RUSTC := env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS

# Every target (clippy's --all-targets), the tests with it, so features unify as they do for
# `make test` (dev-dependencies turn on features of shared crates, serde among them): the AWS SDK
# is then compiled once, not twice.
build: ## Build every binary (functions, simulator, runner), the tests and benches; linted by clippy
	$(CARGO) build --workspace --all-targets

up: setup build ## Start the local stack in the background; writes .local/stack.env
	bash infra/local/up.sh

down: ## Stop every process `make up` started
	bash infra/local/down.sh

demo: setup build ## Run the main job on the local stack
	bash infra/local/demo.sh

# The Python tooling installs while cargo compiles (pip waits on downloads and unpacking, the
# build on the CPU): one step, `setup+build`, in the summary. The last step runs the end-to-end
# tests, the chaos smoke, and the demo then the smoke benchmark, all at once (`e2e+chaos-smoke+demo`).
TEST_STEPS := fmt-check setup+build clippy check-events check-template test-unit test-conformance e2e+chaos-smoke+demo
test: ## Everything CI checks, one step after another; then how long each step took
	@set -e; began=$$(date +%s); took=""; \
	for step in $(TEST_STEPS); do \
	  start=$$(date +%s); $(MAKE) --no-print-directory $$step; \
	  took="$$took\n  $$(printf '%-22s %5d s' $$step $$(( $$(date +%s) - start )))"; \
	done; \
	printf "== make test: where the time went$$took\n  $$(printf '%-22s %5d s' total $$(( $$(date +%s) - began )))\n"

setup+build:
	$(MAKE) --no-print-directory -j2 setup build

fmt-check:
	$(CARGO) fmt --all -- --check

ifeq ($(LINT_WHILE_BUILDING),1)
clippy: build ## clippy -D warnings on every target: done by the build (LINT_WHILE_BUILDING)
else
clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
endif

check-events: ## The HR event corpus (events/hr/cases.json): each case's exact rules from the JSON Schema (the parser's: test-unit)
	.venv/bin/python infra/local/check_events.py

check-template: ## The SAM template: cfn-lint, sam validate, agreement with the code and the local stack, and the check's mutation tests
	.venv-infra/bin/python infra/check_template.py
	.venv-infra/bin/python infra/test_check_template.py
	.venv-infra/bin/cfn-lint infra/template.yaml
	cd infra && SAM_CLI_TELEMETRY=0 ../.venv-infra/bin/sam validate --lint --region us-east-1 -t template.yaml

sam-build: setup ## Release arm64 builds of every function through SAM (slow: not part of make test)
	rustup target add aarch64-unknown-linux-gnu
	cd infra && PATH="$(CURDIR)/.venv/bin:$$PATH" SAM_CLI_TELEMETRY=0 $(RELEASE_RUSTC) ../.venv-infra/bin/sam build --beta-features -t template.yaml

# One invocation over the workspace (the corpus test included): the same feature set as the other
# test builds, so the AWS SDK is not compiled again for `-p shared` alone.
test-unit: ## Unit tests, the contract corpus through the parser, and each micro-benchmark run once as a test
	$(CARGO) test --workspace --lib --bins --benches --test contract_corpus --test model --test held_memory

test-conformance: ## The real SDK clients against the simulator; the doubles' contracts on the real adapters there; the moto launcher's transactions
	@# The launcher's test (about a minute, mostly moto's own time) runs beside the Rust tests,
	@# once they are built (its timings would otherwise compete with the compiler).
	$(CARGO) test --workspace --test conformance --test adapter_contract --no-run
	@mkdir -p target; .venv/bin/python infra/local/test_moto_server.py > target/test_moto_server.log 2>&1 & launcher=$$!; \
	$(CARGO) test --workspace --test conformance --test adapter_contract; rust=$$?; \
	wait $$launcher; python=$$?; cat target/test_moto_server.log; \
	[ $$rust -eq 0 ] && [ $$python -eq 0 ]

# Each test's stack records the AWS operations its functions call into target/iam-calls/.
# E2E_THREADS run at once, on three moto servers (TEST_MOTO_SERVERS). Four at once beside the
# chaos smoke made timing-bound tests time out on 2 cores (CI, 2026-11-28); two beside it, with
# their liveness bounds doubled, pass (`e2e+chaos-smoke+demo`, below).
E2E_THREADS ?= 2
# No backtraces: a failure's panic message (what timed out, what differed) is then the last thing
# before the summary, where a truncated CI log still shows it.
E2E_RUN = RUST_BACKTRACE=0 $(CARGO) test --workspace --test e2e -- --test-threads=$(E2E_THREADS)
test-e2e: build ## Real function binaries, moto and the simulator, through the local runner
	rm -rf target/iam-calls
	$(E2E_RUN)

check-calls: ## IAM proven from the calls made: the e2e tests' and chaos-smoke's recorded calls equal each function's grants, both ways
	.venv-infra/bin/python infra/check_template.py --calls target/iam-calls

BENCH_SIZES ?= 100,1000
# Each size on moto (the tests' DynamoDB) and on dynoxide, one after the other: the same
# pipeline on one machine, so the stores compare as a ratio. The large run on dynoxide alone.
BENCH_STORES ?= moto,dynoxide
BENCH_LARGE_STORES ?= dynoxide
# The large run, once per WorkSpaces rate model (AWS does not say whether its limit is per
# account or per operation). Empty: skip it. On moto, give it BENCH_ARGS=--reconcile-every-s 30:
# moto answers a GSI query by reading the whole table (see BENCHMARKS.md).
BENCH_LARGE ?= 10000
BENCH_LARGE_SCOPES ?= service operation
BENCH_ARGS ?=
FUNCTIONS := -p intake -p provisioner -p terminator -p reconciler -p auditor -p publisher
# The harness (the simulator, the runner, the counting proxies) is a release build too: at 45
# WorkSpaces a second its debug build would take a core of this 2-core machine from the pipeline.
BENCH_RUN = ./target/release/bench --bin-dir target/release --arm64-dir target/aarch64-unknown-linux-gnu/release \
	  --lambda-dir target/lambda

# dynoxide (a DynamoDB emulator in Rust on SQLite, crates.io) for the benchmark only: moto stays
# the store of the tests. Its own root, built once, about 3 min on 2 cores.
DYNOXIDE_VERSION := 3.2.0
bench-tools: ## dynoxide into .tools/bin (the benchmark's faster local DynamoDB)
	@# The binary's --version does not follow the crate's; cargo's own record does.
	@if ! [ -x .tools/bin/dynoxide ] || ! grep -q '"dynoxide-rs $(DYNOXIDE_VERSION) ' .tools/.crates.toml 2>/dev/null; then \
	  $(RELEASE_RUSTC) $(CARGO) install dynoxide-rs --version $(DYNOXIDE_VERSION) --locked --root .tools \
	    --no-default-features --features native-sqlite,http-server,cli; fi

bench: setup build bench-tools ## N joiners then N leavers: BENCH_SIZES on both stores, then BENCH_LARGE per rate model (~45 min), release binaries; micro-benchmarks
	rustup target add aarch64-unknown-linux-gnu
	$(RELEASE_RUSTC) $(CARGO) build --release $(FUNCTIONS) -p bench
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(RELEASE_RUSTC) cargo lambda build --release --arm64 --output-format zip $(FUNCTIONS)
	$(BENCH_RUN) --sizes $(BENCH_SIZES) --stores $(BENCH_STORES) --out target/bench/report.json $(BENCH_ARGS)
	for scope in $(if $(BENCH_LARGE),$(BENCH_LARGE_SCOPES)); do \
	  $(BENCH_RUN) --sizes $(BENCH_LARGE) --stores $(BENCH_LARGE_STORES) --rate-scope $$scope \
	    --out target/bench/report-large-$$scope.json $(BENCH_ARGS) || exit 1; done
	$(MAKE) bench-micro

bench-micro: ## Criterion: parsing, validation, batching and response mapping, per event
	$(CARGO) bench -p shared --bench hot_path

bench-smoke: setup build ## What CI runs: 50 joiners and leavers on debug binaries (the bench works; figures not quotable)
	./target/debug/bench --sizes 50 --bin-dir target/debug --out target/bench/smoke.json

CHAOS_EMPLOYEES ?= 2000
CHAOS_SEED ?= 1
CHAOS_ARGS ?=
chaos: setup build ## N employees (CHAOS_EMPLOYEES, 2,000) under every fault at once, checked by an independent oracle (RELIABILITY.md)
	./target/debug/chaos --employees $(CHAOS_EMPLOYEES) --seed $(CHAOS_SEED) \
	  --out target/chaos/report-$(CHAOS_EMPLOYEES)-$(CHAOS_SEED).json $(CHAOS_ARGS)

# In make test: 200 employees under every fault but SUSPENDED WorkSpaces (a refused termination
# comes back 201 s later, four times: the full run and the e2e tests cover it); its calls join the
# e2e tests' for check-calls.
CHAOS_SMOKE = ./target/debug/chaos --employees 200 --seed $(CHAOS_SEED) --suspended 0 \
	  --record-calls target/iam-calls/chaos-smoke.json --out target/chaos/smoke.json $(CHAOS_ARGS)
chaos-smoke: setup build
	RUST_BACKTRACE=0 $(CHAOS_SMOKE)
	$(MAKE) check-calls

# The end of `make test`: the end-to-end tests, and beside them the chaos smoke, and the demo
# (which proves `make up` and `make down`) then the smoke benchmark; then check-calls over the
# calls the tests and the chaos smoke recorded. All of them mostly wait on batching windows and
# the simulated API rate, each on a stack of its own (moto, simulator, runner on free ports):
# 513 s together against 757 s (2 cores, 2026-11-28; the e2e tests alone 403 s, the chaos smoke
# with the demo and the benchmark beside it 354 s). The e2e tests' liveness bounds are doubled
# there (E2E_PATIENCE): they share the CPU. The chaos smoke's and the demo's output is printed
# after the e2e tests', so none interleave.
BESIDE_LOGS := target/ci
e2e+chaos-smoke+demo: setup build
	@rm -rf target/iam-calls; mkdir -p $(BESIDE_LOGS); \
	( RUST_BACKTRACE=0 $(CHAOS_SMOKE) ) > $(BESIDE_LOGS)/chaos-smoke.log 2>&1 & chaos_pid=$$!; \
	( set -e; start=$$(date +%s); $(MAKE) --no-print-directory demo; \
	  echo "== make demo took $$(( $$(date +%s) - start )) s (beside the e2e tests and the chaos smoke)"; \
	  start=$$(date +%s); $(MAKE) --no-print-directory bench-smoke; \
	  echo "== make bench-smoke took $$(( $$(date +%s) - start )) s (beside the e2e tests and the chaos smoke)" \
	) > $(BESIDE_LOGS)/demo+bench-smoke.log 2>&1 & demo_pid=$$!; \
	start=$$(date +%s); e2e=0; E2E_PATIENCE=2 $(E2E_RUN) || e2e=$$?; \
	echo "== the e2e tests took $$(( $$(date +%s) - start )) s"; \
	chaos=0; wait $$chaos_pid || chaos=$$?; \
	echo "== the chaos smoke, beside the e2e tests ($(BESIDE_LOGS)/chaos-smoke.log), ended $$(( $$(date +%s) - start )) s after they began:"; \
	cat $(BESIDE_LOGS)/chaos-smoke.log; \
	demo=0; wait $$demo_pid || demo=$$?; \
	echo "== the demo and the smoke benchmark, beside the e2e tests ($(BESIDE_LOGS)/demo+bench-smoke.log):"; \
	cat $(BESIDE_LOGS)/demo+bench-smoke.log; \
	calls=0; if [ $$e2e -eq 0 ] && [ $$chaos -eq 0 ]; then $(MAKE) --no-print-directory check-calls || calls=$$?; fi; \
	[ $$e2e -eq 0 ] || echo "== the e2e tests failed (exit $$e2e)"; \
	[ $$chaos -eq 0 ] || echo "== make chaos-smoke failed (exit $$chaos)"; \
	[ $$demo -eq 0 ] || echo "== make demo or make bench-smoke failed (exit $$demo)"; \
	[ $$calls -eq 0 ] || echo "== make check-calls failed (exit $$calls)"; \
	[ $$e2e -eq 0 ] && [ $$chaos -eq 0 ] && [ $$demo -eq 0 ] && [ $$calls -eq 0 ]

clean: down
	rm -rf .local
