#!/usr/bin/env bash
# make test: lint, unit + handler tests, the store contract against the emulator, the template
# lint, a black-box run of the flow against the dev server, and the account pages in a headless
# browser (tools/browser). Starts and stops its own emulators and dev servers on free ports.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p .dev

ensure_venv
ensure_script
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

# IAM evidence (shared/src/iam.rs): what each function's handler asks of its ports, and what AWS
# calls each port operation makes against the emulator; tools/infra/test_iam.py checks the roles.
export GATEHOUSE_IAM_EVIDENCE="$ROOT/.dev/iam-evidence"
rm -rf "$GATEHOUSE_IAM_EVIDENCE"
log "Rust tests (unit, handlers, store contract on memory and DynamoDB)"
if cargo nextest --version > /dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

# Deploy rehearsal (tools/infra): the SAM transform run offline and its result checked (CORS,
# routes, permissions, roles and IAM scoping, environment), every role held equal to the IAM
# evidence the Rust tests just recorded, then every function's debug binary
# started under a stand-in of the Lambda Runtime API with exactly the environment the
# transformed template gives it (samconfig's dev and prod values, and HS256), against resources
# made in the emulator from the template. About 15 s. A failure here is reported at the end, so
# that the steps after it still run.
log "deploy rehearsal: SAM transform + every function binary under a Runtime API stand-in"
# The binaries are those nextest just built for the integration tests (target/debug/<binary>:
# gatehouse-lambdas' tests/mains.rs has cargo build them); a separate `cargo build --bins` would
# rebuild them with another feature set, for nothing.
INFRA_STATUS=0
# Its own emulator (tools/infra starts one when MOTO_URL is unset): the shared one holds every
# table of the Rust tests by now, and reading its SES mail (/moto-api/data.json) means dumping them.
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "$VENV/bin/pytest" -q -p no:cacheprovider tools/infra || INFRA_STATUS=$?

log "a Django 5.2 project's users, dumped with dumpdata (tools/django), for the move-in test"
ensure_django_venv
rm -rf .dev/django
"$DJANGO_VENV/bin/python" tools/django/make_dump.py .dev/django

log "black-box HTTP tests against the dev server"
cargo build --quiet -p gatehouse-dev-server -p gatehouse-authctl
# A fresh emulator of their own: the tests read what SES received from /moto-api/data.json, a dump
# of every backend, which the Rust tests' tables in the shared one make slow (tens of MB).
BB_MOTO_PORT=$(free_port)
start_moto "$BB_MOTO_PORT" .dev/test-moto-blackbox.log
# The sign-in providers of the social sign-in tests (tools/blackbox/fake_providers.py): an OpenID
# Connect provider (`corp`, and `untrusted`: the same one, its email_verified never trusted) and a
# GitHub-like one, on one port.
FAKE_PORT=$(free_port)
"$VENV/bin/python" tools/blackbox/fake_providers.py "$FAKE_PORT" > .dev/test-fake-providers.log 2>&1 &
PIDS+=($!)
wait_port "$FAKE_PORT" 30 "the fake sign-in providers" || { cat .dev/test-fake-providers.log >&2; exit 1; }
FAKE="http://127.0.0.1:$FAKE_PORT"
PORT=$(free_port)
(
  local_env "$BB_MOTO_PORT"
  export TABLE_NAME="blackbox-$PORT" ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 RATE_REGISTER_IP=1000/1h RATE_CONFIRM_IP=1000/1h \
    RATE_SOCIAL_IP=1000/1h SOCIAL_REDIRECT_URIS=http://localhost:3000/callback \
    SOCIAL_CLIENT_SECRETS='{"corp": "corp-secret", "github": "gh-secret", "untrusted": "corp-secret"}' \
    SOCIAL_PROVIDERS='{"corp": {"type": "oidc", "issuer": "'"$FAKE"'/oidc", "client_id": "gatehouse-test"},
      "untrusted": {"type": "oidc", "issuer": "'"$FAKE"'/oidc", "client_id": "gatehouse-test", "trust_email": false},
      "github": {"type": "github", "client_id": "gh-client", "authorize_url": "'"$FAKE"'/github/login/oauth/authorize",
        "token_url": "'"$FAKE"'/github/login/oauth/access_token", "api_url": "'"$FAKE"'/github/api"}}'
  exec target/debug/gatehouse-dev-server --create-table --dev-key .dev/test-jwt-ed25519.pem --port "$PORT"
) > .dev/test-dev-server.log 2>&1 &
PIDS+=($!)
wait_port "$PORT" 60 "the dev server" || { cat .dev/test-dev-server.log >&2; exit 1; }
GATEHOUSE_URL="http://127.0.0.1:$PORT" MOTO_URL="http://127.0.0.1:$BB_MOTO_PORT" TABLE_NAME="blackbox-$PORT" \
  DJANGO_DUMP="$ROOT/.dev/django" AUTHCTL="$ROOT/target/debug/authctl" FAKE_PROVIDERS_URL="$FAKE" \
  "$VENV/bin/pytest" -q tools/blackbox

# The account pages walked in headless Chromium (Selenium, Debian's chromium and chromedriver;
# axe-core on every page and state), against a dev server and an emulator of their own with the
# cookie transport on; installs Chromium and axe-core when missing. About a minute.
log "browser tests: the account pages in headless Chromium (tools/browser)"
bash tools/browser/run.sh

# Schemathesis: every operation of infra/openapi.json, a bounded number of seeded examples each,
# against a second dev server with the rate limits, lockout, email cooldown and timing floor off
# (they would answer 429 or slow every request). Fails on any 5xx, a status, content type, header
# or body the document does not list, a request the document forbids being accepted, and the
# other stock checks but one: positive_data_acceptance (a request the document allows must
# succeed) is left out because what decides many of ours is state no schema can describe (the
# current password, a uid/token pair from an email, an existing group, the password policy's
# common-password list and similarity rule); those rightly answer 400 and the handler tests cover
# them. tools/schemathesis_hooks.py signs in as an activated staff account, keeps its token valid
# and gives a few positive cases of the operations that need them real ids, tokens and emailed
# links; tools/schemathesis.toml fails the run on the missing_auth and missing_test_data
# warnings; and tools/schemathesis_statuses.py then requires a 2xx from every operation (`GET /`:
# its redirect). The cookie transport is on, so its answers are checked against the document too.
# Social sign-in has one provider, `corp`, on a fake OpenID Connect provider of the run's own
# (tools/blackbox/fake_providers.py), through which the hooks sign in for real.
log "schemathesis against the dev server (infra/openapi.json)"
ST_FAKE_PORT=$(free_port)
"$VENV/bin/python" tools/blackbox/fake_providers.py "$ST_FAKE_PORT" > .dev/test-schemathesis-fake-providers.log 2>&1 &
PIDS+=($!)
wait_port "$ST_FAKE_PORT" 30 "the fake sign-in provider" || { cat .dev/test-schemathesis-fake-providers.log >&2; exit 1; }
ST_FAKE="http://127.0.0.1:$ST_FAKE_PORT"
ST_PORT=$(free_port)
(
  local_env "$MOTO_PORT"
  export TABLE_NAME="schemathesis-$ST_PORT" ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 TIMING_FLOOR=0 \
    EMAIL_COOLDOWN=0 RATE_LOGIN_FAILURES_IP=off RATE_REGISTER_IP=off RATE_RESEND_IP=off RATE_RESET_IP=off \
    RATE_CONFIRM_IP=off RATE_SET_EMAIL_IP=off RATE_LOGIN_FAILURES_ACCOUNT=off CODE_GUESS_BUDGET=off \
    RATE_PASSKEY_OPTIONS_IP=off JWT_COOKIE=true \
    LOGIN_LOCKOUT_THRESHOLD=1000 LOGIN_LOCKOUT_MAX=1s \
    RATE_SOCIAL_IP=off SOCIAL_REDIRECT_URIS=http://localhost:3000/callback SOCIAL_CLIENT_SECRETS='{"corp": "corp-secret"}' \
    SOCIAL_PROVIDERS='{"corp": {"type": "oidc", "issuer": "'"$ST_FAKE"'/oidc", "client_id": "gatehouse-test", "label": "Corp SSO"}}'
  exec target/debug/gatehouse-dev-server --create-table --dev-key .dev/test-jwt-ed25519.pem --port "$ST_PORT"
) > .dev/test-schemathesis-server.log 2>&1 &
PIDS+=($!)
wait_port "$ST_PORT" 60 "the dev server" || { cat .dev/test-schemathesis-server.log >&2; exit 1; }
mkdir -p .dev/schemathesis
rm -f .dev/schemathesis/statuses.log
GATEHOUSE_URL="http://127.0.0.1:$ST_PORT" MOTO_URL="http://127.0.0.1:$MOTO_PORT" TABLE_NAME="schemathesis-$ST_PORT" \
  FAKE_PROVIDERS_URL="$ST_FAKE" SOCIAL_PROVIDER=corp SOCIAL_REDIRECT_URI=http://localhost:3000/callback \
  SCHEMATHESIS_HOOKS=tools/schemathesis_hooks.py HYPOTHESIS_STORAGE_DIRECTORY=.dev/hypothesis \
  SCHEMATHESIS_STATUS_LOG=.dev/schemathesis/statuses.log \
  "$VENV/bin/schemathesis" --config-file tools/schemathesis.toml run infra/openapi.json \
  --url "http://127.0.0.1:$ST_PORT" --checks all --exclude-checks positive_data_acceptance \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" --seed 20261123 --workers 1 \
  --no-color --report junit --report-dir .dev/schemathesis
"$VENV/bin/python" tools/schemathesis_statuses.py .dev/schemathesis/statuses.log infra/openapi.json

# Stop the servers and the emulator before fuzzing: the fuzz build wants both cores.
cleanup
PIDS=()
log "bounded fuzz run (cargo-fuzz on stable; each target on its seeds, then 5 s)"
bash tools/fuzz.sh --bounded

if [ "$INFRA_STATUS" != 0 ]; then
  log "the deploy rehearsal (pytest tools/infra) failed: see its output above"
  exit "$INFRA_STATUS"
fi
