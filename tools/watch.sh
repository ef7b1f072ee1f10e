#!/usr/bin/env bash
# make watch: every function under `cargo lambda watch` (the Lambda runtime emulator), with the
# local settings, against the emulator started by `make dev` (run it in another terminal).
# Invoke one: .venv/bin/cargo-lambda lambda invoke register --data-file events/register.json
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2
MOTO_PORT=${MOTO_PORT:-4566}
port_open "$MOTO_PORT" || { echo "start 'make dev' first: the emulator is not on 127.0.0.1:$MOTO_PORT" >&2; exit 1; }
local_env "$MOTO_PORT"
mkdir -p .dev
[ -f .dev/jwt-ed25519.pem ] || { echo "start 'make dev' once first: it creates the table and .dev/jwt-ed25519.pem" >&2; exit 1; }
{
  for v in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION TABLE_NAME EMAIL_FROM SITE_NAME PROTOCOL FRONTEND_DOMAIN RUST_LOG; do
    printf '%s="%s"\n' "$v" "${!v}"
  done
  # The PEM on one line; Gatehouse reads literal \n as newlines.
  printf 'JWT_SIGNING_KEY="%s"\n' "$(awk '{printf "%s\\n", $0}' .dev/jwt-ed25519.pem)"
} > .dev/lambda.env
export PATH="$VENV/bin:$PATH"
exec cargo lambda watch --env-file .dev/lambda.env -p gatehouse-functions "$@"
