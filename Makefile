# Gatehouse. The two commands: `make dev` and `make test`.
.PHONY: dev test watch build release package lint lint-infra fmt clean help bench fuzz bench-load

help:
	@echo "make dev        local stack: AWS emulator + every route on http://127.0.0.1:3000"
	@echo "make test       everything CI runs (installs what it needs)"
	@echo "make watch      every function under cargo lambda watch (needs make dev running)"
	@echo "make lint       cargo fmt --check, clippy -D warnings, cfn-lint, sam validate --lint"
	@echo "make package    cargo lambda build --release --arm64 for every function, then sam build"
	@echo "make bench      cold start, size, DynamoDB calls, latency/throughput vs djoser -> bench/results.md"
	@echo "make fuzz       cargo-fuzz targets in fuzz/, 300 s each (FUZZ_SECONDS=N to change; tools/fuzz.sh --bounded in make test)"
	@echo "make bench-load 200 clients x 60 s on the dev server + emulator, then authctl doctor -> bench/load.md"
	@echo "make clean      remove build output, .venv and .dev"

dev:
	@bash tools/dev.sh

test:
	@bash tools/test.sh

watch:
	@bash tools/watch.sh

build:
	cargo build --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(MAKE) lint-infra

lint-infra:
	@bash -c 'source tools/lib.sh && ensure_venv && "$$VENV/bin/cfn-lint" infra/template.yaml'
	@bash tools/sam.sh validate --lint --template infra/template.yaml

fmt:
	cargo fmt --all

bench:
	@bash bench/run.sh

fuzz:
	@bash tools/fuzz.sh $(FUZZ_SECONDS)

bench-load:
	@bash bench/run.sh load

package:
	@bash tools/package.sh

clean:
	cargo clean
	rm -rf .venv .venv-sam .dev .aws-sam
