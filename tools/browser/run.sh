#!/usr/bin/env bash
# The browser tests: the account pages walked in headless Chromium (Selenium 4, Debian's chromium
# and chromedriver), against a dev server of their own with the cookie transport on, over an
# emulator of their own, with a local sign-in provider of their own (tools/blackbox/
# fake_providers.py). Installs what is missing (the venv, Chromium, axe-core). Arguments go to
# pytest (e.g. `tools/browser/run.sh -k passkey -x`). UPDATE_SCREENSHOTS=1 also copies the
# screenshots (.dev/screenshots/) to docs/screenshots/. Run by `make test` after the black-box
# suite; about a minute.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$ROOT"
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p .dev

ensure_venv
ensure_chromium
ensure_browser_tools
# The same packages as tools/test.sh builds before it (one feature set, no rebuild between them).
cargo build --quiet -p gatehouse-dev-server -p gatehouse-authctl

MOTO_PORT=$(free_port)
start_moto "$MOTO_PORT" .dev/test-moto-browser.log
# A sign-in provider for the provider buttons (tools/blackbox/fake_providers.py: an OpenID Connect
# issuer under /oidc), configured below as `corp`.
FAKE_PORT=$(free_port)
"$VENV/bin/python" tools/blackbox/fake_providers.py "$FAKE_PORT" > .dev/test-fake-providers-browser.log 2>&1 &
PIDS+=($!)
wait_port "$FAKE_PORT" 30 "the fake sign-in provider" || { cat .dev/test-fake-providers-browser.log >&2; exit 1; }
FAKE="http://127.0.0.1:$FAKE_PORT"
PORT=$(free_port)
TABLE="browser-$PORT"
# Access tokens of a few seconds: the pages renew them from the refresh cookie mid-walk, as they
# do after five minutes in real use (test_an_expired_access_token_is_renewed_from_the_cookie).
export ACCESS_TOKEN_LIFETIME=3
(
  export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" # the emulator the tests read, whatever the shell says
  local_env "$MOTO_PORT"
  # The pages' origin is http://localhost:PORT: the emailed links point there, and it is the
  # WebAuthn relying party's one origin (localhost is a secure context, so Secure cookies and
  # passkeys work over plain http).
  export PROTOCOL=http FRONTEND_DOMAIN="localhost:$PORT" JWT_COOKIE=on TABLE_NAME="$TABLE" \
    ARGON2_MEMORY_KIB=1024 ARGON2_ITERATIONS=1 \
    RATE_REGISTER_IP=1000/1h RATE_CONFIRM_IP=1000/1h RATE_RESET_IP=1000/1h RATE_RESEND_IP=1000/1h \
    RATE_SET_EMAIL_IP=1000/1h RATE_LOGIN_FAILURES_IP=1000/1h RATE_PASSKEY_OPTIONS_IP=1000/1m \
    RATE_SOCIAL_IP=1000/1m SOCIAL_CLIENT_SECRETS='{"corp": "corp-secret"}' \
    SOCIAL_PROVIDERS='{"corp": {"type": "oidc", "issuer": "'"$FAKE"'/oidc", "client_id": "gatehouse-test", "label": "Corp SSO"}}'
  exec target/debug/gatehouse-dev-server --create-table --dev-key .dev/test-jwt-ed25519.pem --port "$PORT"
) > .dev/test-browser-server.log 2>&1 &
PIDS+=($!)
wait_port "$PORT" 60 "the dev server" || { cat .dev/test-browser-server.log >&2; exit 1; }

rm -rf .dev/screenshots .dev/browser
GATEHOUSE_URL="http://localhost:$PORT" MOTO_URL="http://127.0.0.1:$MOTO_PORT" TABLE_NAME="$TABLE" FAKE_PROVIDERS_URL="$FAKE" \
  PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 "$VENV/bin/pytest" -q -p no:cacheprovider tools/browser "$@"
