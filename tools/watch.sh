#!/usr/bin/env bash
# make watch: every function under `cargo lambda watch` (the Lambda runtime emulator), against the
# emulator started by `make dev` (run it in another terminal). The settings are the local ones in
# [workspace.metadata.lambda.env] of Cargo.toml, and [workspace.metadata.lambda.watch.router] serves
# the API's paths (http://127.0.0.1:9000/auth/users/ ...). This script adds what differs per
# machine: the emulator's endpoint and the development signing key, in .dev/lambda.env.
# Invoke one: .venv/bin/cargo-lambda lambda invoke register --data-file events/register.json
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2
MOTO_PORT=${MOTO_PORT:-4566}
port_open "$MOTO_PORT" || { echo "start 'make dev' first: the emulator is not on 127.0.0.1:$MOTO_PORT" >&2; exit 1; }
mkdir -p .dev
[ -f .dev/jwt-ed25519.pem ] || { echo "start 'make dev' once first: it creates the table and .dev/jwt-ed25519.pem" >&2; exit 1; }
{
  printf 'AWS_ENDPOINT_URL="http://127.0.0.1:%s"\n' "$MOTO_PORT"
  # The PEM on one line; Gatehouse reads literal \n as newlines.
  printf 'JWT_SIGNING_KEY="%s"\n' "$(awk '{printf "%s\\n", $0}' .dev/jwt-ed25519.pem)"
} > .dev/lambda.env
export PATH="$VENV/bin:$PATH"
exec cargo lambda watch --env-file .dev/lambda.env -p gatehouse-lambdas "$@"
