# Kairos: `make demo` runs the engine in memory; `make test` runs every test.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:

VENV := build/venv
TOOLS := $(VENV)/.installed
WATCH_PORT := 5005
export KAIROS_MOTO_PYTHON := $(CURDIR)/$(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
# The SAM CLI sends no usage telemetry from here.
export SAM_CLI_TELEMETRY := 0

.PHONY: demo test lint lint-infra tools node-tools build watch deploy bench bench-archive flood soak fuzz clean

## The engine on the embedded default: in memory, no AWS account, no server.
demo:
	cargo run --quiet --bin kairos -- demo

## The marketer's console on 127.0.0.1:8787 over the embedded default (kairos console).
.PHONY: console
console:
	cargo run --quiet --bin kairos -- console

## The console's page load times: 200 segments, a contact with a long audit trail (release build).
.PHONY: bench-console
bench-console:
	cargo bench --locked --bench console_pages

## Headless Chromium and its WebDriver for the console's browser tests (Debian packages).
.PHONY: browser screenshots
browser:
	command -v chromedriver >/dev/null || { apt-get update && apt-get install -y chromium chromium-driver; }

## The console's pages as PNGs in docs/console/ (shown in the README), taken by the browser test.
screenshots: browser
	KAIROS_SCREENSHOTS_DIR=$(CURDIR)/docs/console cargo test --locked --test console_browser

## Every test: the template lint, unit tests, and integration tests over moto server
## and the real Segment client (Node.js).
test: lint-infra node-tools
	cargo test --workspace --locked

## Formatting and clippy, warnings denied.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## cfn-lint (with the SAM transform) and `sam validate --lint` on the deployable
## template (offline; SAM wants a region set, any will do).
lint-infra: $(TOOLS)
	cfn-lint infra/template.yaml
	AWS_REGION=$${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} \
	  sam validate --lint --template-file infra/template.yaml --config-file $(SAMCONFIG)

## Pinned Python tools (moto, cargo-lambda, cfn-lint) in build/venv.
tools: $(TOOLS)
$(TOOLS): requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## The pinned @segment/analytics-node client that tests/segment_node.rs drives (needs node and npm).
NODE_TOOLS := tests/segment_node/node_modules/.package-lock.json
node-tools: $(NODE_TOOLS)
$(NODE_TOOLS): tests/segment_node/package-lock.json
	npm ci --prefix tests/segment_node --no-audit --no-fund

## The rules engine's throughput and state size, beside datalogic-rs on the same rules; the send-time
## learning against uniform random and the oracle, and decide latency; ingest's signature checks
## (ring as shipped, beside p256/rsa and aws-lc-rs); each function's release binary size and
## init time against a stand-in Lambda runtime API (docs/performance.md).
FUNCTIONS := ingest evaluate writeback sweep decide admin
bench:
	cargo bench -p kairos-rules --bench throughput
	cargo bench -p kairos-ingest --bench providers
	cargo bench -p kairos-decide --bench simulate
	cargo bench --locked -p kairos-ingest --bench signatures
	cargo build --release --locked $(addprefix --bin ,$(FUNCTIONS))
	cargo bench --locked -p kairos --bench cold_start

## Replay throughput from the event archive (events/s on one thread, peak memory) over a
## generated archive of BENCH_EVENTS events in build/bench-archive (deleted after), and the
## archive's cost per million events at list prices.
BENCH_EVENTS ?= 10000000
bench-archive:
	KAIROS_BENCH_EVENTS=$(BENCH_EVENTS) cargo bench --locked -p kairos --bench archive_replay

## One contact flooded with a million events, hostile ones among them, through the
## real evaluate path (release): prints the item budget and the largest record written.
FLOOD_EVENTS ?= 1000000
flood:
	KAIROS_FLOOD_EVENTS=$(FLOOD_EVENTS) cargo test --release --locked -p kairos-evaluate --test flood -- --nocapture

## The soak: the rules bench's workload (SOAK_CONTACTS contacts, about twenty events each) through
## ingest → evaluate → write-back and the sweep on memory adapters under injected faults, checked
## exactly against `kairos replay`; prints events/s, faults, retries, dead letters, mismatches and
## the cost per million events (docs/soak.md). `make test` runs a small one. The second run
## (WIRE_CONTACTS contacts, 760: over 10,000 events) goes through moto server with the real SDK behind
## the wire-level fault proxy (throttling answers, dropped answers).
SOAK_CONTACTS ?= 100000
WIRE_CONTACTS ?= 760
soak: $(TOOLS)
	KAIROS_SOAK_CONTACTS=$(SOAK_CONTACTS) KAIROS_WIRE_CONTACTS=$(WIRE_CONTACTS) \
	  cargo test --release --locked --test soak -- --nocapture

## Each provider parser, the /v1 routes and the contact state under libFuzzer,
## FUZZ_SECS seconds each, seeded with the fixtures. cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP lets
## the stable toolchain accept them. Findings land in fuzz/artifacts/<target>/.
FUZZ_SECS ?= 20
FUZZ_TARGETS := sendgrid mailgun postmark ses mandrill brevo sparkpost resend customerio v1 state
CARGO_FUZZ := build/tools/bin/cargo-fuzz
$(CARGO_FUZZ):
	cargo install cargo-fuzz --version 0.13.2 --locked --root build/tools
fuzz: $(CARGO_FUZZ)
	fuzz/seed.sh
	cd fuzz
	mkdir -p ../build
	for target in $(FUZZ_TARGETS); do
	  log=../build/fuzz-$$target.log
	  echo "== fuzz $$target ($(FUZZ_SECS) s, full output in build/fuzz-$$target.log)"
	  if ! RUSTC_BOOTSTRAP=1 ../$(CARGO_FUZZ) run -O $$target corpus/$$target -- -max_total_time=$(FUZZ_SECS) > $$log 2>&1; then
	    tail -n 80 $$log
	    exit 1
	  fi
	  grep -a '^Done' $$log
	done

## Release bootstrap binaries for Lambda (arm64), in target/lambda/<function>/.
build: $(TOOLS)
	rustup target add aarch64-unknown-linux-gnu
	cargo lambda build --release --arm64 --bin ingest --bin evaluate --bin writeback --bin sweep --bin decide --bin admin --bin console
	ls -l target/lambda/*/bootstrap

## Everything on this machine, on loopback only: moto (DynamoDB, SQS, SSM) on
## 127.0.0.1:$(WATCH_PORT) with the template's table and queues, fresh samples in events/,
## the webhook receiver on 127.0.0.1:$(RECEIVER_PORT), `cargo lambda watch` on
## [::1]:$(INVOKE_PORT) (where `cargo lambda invoke` sends), and the poller chaining the queues to the functions.
## Prints a READY line; Ctrl-C stops it all.
INVOKE_PORT := 9000
RECEIVER_PORT := 8787
KAIROS := target/debug/kairos
watch: $(TOOLS)
	@mkdir -p build
	echo "==> [1/5] building the functions and the kairos CLI (the first time takes several minutes)"
	cargo build --bin kairos --bin ingest --bin evaluate --bin writeback --bin sweep --bin admin
	trap 'echo "==> stopping"; kill $$(jobs -p) 2>/dev/null; wait' EXIT
	echo "==> [2/5] moto on 127.0.0.1:$(WATCH_PORT) (log: build/moto-watch.log)"
	python tests/support/moto_server.py -H 127.0.0.1 -p $(WATCH_PORT) > build/moto-watch.log 2>&1 &
	for _ in $$(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$(WATCH_PORT)) 2>/dev/null && break; sleep 0.1; done
	{ cat events/local.env; $(KAIROS) local-infra --endpoint http://127.0.0.1:$(WATCH_PORT); } > build/local.env
	echo "==> [3/5] samples for now in events/"
	$(KAIROS) samples --out events
	echo "==> [4/5] receiver on 127.0.0.1:$(RECEIVER_PORT), runtime emulator on [::1]:$(INVOKE_PORT)"
	$(KAIROS) local-receive --port $(RECEIVER_PORT) &
	cargo lambda watch --invoke-address ::1 --invoke-port $(INVOKE_PORT) --env-file build/local.env &
	for _ in $$(seq 600); do (exec 3<>/dev/tcp/::1/$(INVOKE_PORT)) 2>/dev/null && break; sleep 0.2; done
	echo "==> [5/5] poller: events queue → evaluate, write-back queue → writeback, the sweep every minute"
	$(KAIROS) local-poll --endpoint http://127.0.0.1:$(WATCH_PORT) --invoke http://[::1]:$(INVOKE_PORT) &
	sleep 1
	echo "READY  invoke: http://[::1]:$(INVOKE_PORT) (cargo lambda invoke ingest --data-file events/ingest-sendgrid.json)" \
	  " | AWS endpoint: http://127.0.0.1:$(WATCH_PORT) (table ContactsTable)" \
	  " | receiver: http://127.0.0.1:$(RECEIVER_PORT)/kairos | stop: Ctrl-C"
	wait

## Build every arm64 function with SAM (cargo-lambda from build/venv), then
## deploy the stack `kairos`: `sam deploy --guided` the first time (it asks for the
## parameters and saves them in infra/samconfig.toml), without questions after.
## Needs AWS credentials and a region (README: Deploying).
SAMCONFIG := $(CURDIR)/infra/samconfig.toml
deploy: $(TOOLS)
	rustup target add aarch64-unknown-linux-gnu
	echo "==> sam build (cargo lambda build --release --arm64 for each function; several minutes)"
	sam build --template-file infra/template.yaml --config-file $(SAMCONFIG)
	if grep -q '^parameter_overrides' $(SAMCONFIG); then
	  sam deploy --config-file $(SAMCONFIG)
	else
	  echo "==> first deploy: sam deploy --guided (answers saved in infra/samconfig.toml)"
	  sam deploy --guided --config-file $(SAMCONFIG)
	fi

clean:
	cargo clean
	rm -rf build
