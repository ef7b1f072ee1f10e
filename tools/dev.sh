#!/usr/bin/env bash
# make dev: the AWS emulator (DynamoDB + SES v2), every route and the account pages on
# http://localhost:3000.
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
# The emailed links land on the account pages of this server, which keep a sign-in in the
# refresh cookie (README "Pages").
export FRONTEND_DOMAIN=${FRONTEND_DOMAIN:-localhost:$PORT} JWT_COOKIE=${JWT_COOKIE:-true}
local_env "$MOTO_PORT"
log "serving http://localhost:$PORT (account pages: http://localhost:$PORT/login; emails: http://localhost:$PORT/_dev/emails)"
target/debug/gatehouse-dev-server --create-table --dev-key .dev/jwt-ed25519.pem --port "$PORT" &
PIDS+=($!)
wait "${PIDS[-1]}"
