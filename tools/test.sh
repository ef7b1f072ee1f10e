#!/usr/bin/env bash
# make test: lint, unit + handler tests, the store contract against the emulator, the template
# lint, and a black-box run of the flow against the dev server. Starts and stops its own
# emulator and dev server on free ports.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p .dev

ensure_venv
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --quiet --workspace --all-targets -- -D warnings
log "cfn-lint infra/template.yaml"
"$VENV/bin/cfn-lint" infra/template.yaml

MOTO_PORT=$(free_port)
log "starting the AWS emulator on 127.0.0.1:$MOTO_PORT"
start_moto "$MOTO_PORT" .dev/test-moto.log
export GATEHOUSE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

log "Rust tests (unit, handlers, store contract on memory and DynamoDB)"
if cargo nextest --version > /dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

log "black-box HTTP tests against the dev server"
cargo build --quiet -p gatehouse-dev-server
PORT=$(free_port)
(
  local_env "$MOTO_PORT"
  export TABLE_NAME="blackbox-$PORT" ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 RATE_REGISTER_IP=1000/1h
  exec target/debug/gatehouse-dev-server --create-table --dev-key .dev/test-jwt-ed25519.pem --port "$PORT"
) > .dev/test-dev-server.log 2>&1 &
PIDS+=($!)
wait_port "$PORT" 60 "the dev server" || { cat .dev/test-dev-server.log >&2; exit 1; }
GATEHOUSE_URL="http://127.0.0.1:$PORT" MOTO_URL="http://127.0.0.1:$MOTO_PORT" TABLE_NAME="blackbox-$PORT" \
  "$VENV/bin/pytest" -q tools/blackbox
