#!/usr/bin/env bash
# The SAM CLI from PyPI, in its own virtualenv (.venv-sam: it pins boto3, click and friends,
# which must not move the test tools in .venv). No telemetry. Used by `make lint-infra`
# (sam validate --lint: offline, needs no credentials) and `make package` (sam build).
#   bash tools/sam.sh <sam arguments>
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
SAM_VENV="$ROOT/.venv-sam"
SAM_VERSION=1.170.0
if [ "$("$SAM_VENV/bin/sam" --version 2> /dev/null || true)" != "SAM CLI, version $SAM_VERSION" ]; then
  log "installing the SAM CLI $SAM_VERSION into .venv-sam"
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_VERSION"
fi
export SAM_CLI_TELEMETRY=0
exec "$SAM_VENV/bin/sam" "$@"
