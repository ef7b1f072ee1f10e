#!/usr/bin/env bash
# make dev: the AWS emulator (DynamoDB + SES v2) and every route on http://127.0.0.1:3000.
# Ctrl-C stops everything it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap cleanup EXIT
trap 'exit 130' INT TERM

MOTO_PORT=${MOTO_PORT:-4566}
PORT=${PORT:-3000}
ensure_venv
log "building the dev server"
cargo build --quiet -p gatehouse-dev-server
mkdir -p .dev
if port_open "$MOTO_PORT"; then
  log "reusing the emulator already listening on 127.0.0.1:$MOTO_PORT"
else
  log "starting the AWS emulator (moto) on 127.0.0.1:$MOTO_PORT"
  start_moto "$MOTO_PORT" .dev/moto.log
fi
local_env "$MOTO_PORT"
log "serving http://127.0.0.1:$PORT (emails: http://127.0.0.1:$PORT/_dev/emails)"
target/debug/gatehouse-dev-server --create-table --dev-key .dev/jwt-ed25519.pem --port "$PORT" &
PIDS+=($!)
wait "${PIDS[-1]}"
