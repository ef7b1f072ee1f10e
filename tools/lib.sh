# Shared helpers for tools/dev.sh and tools/test.sh (sourced, not run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
PIDS=()

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# venv_from DIR REQUIREMENTS WHAT: a virtualenv at DIR with REQUIREMENTS installed, (re)installed
# when the requirements file changes.
venv_from() {
  local want have=""
  want=$(sha256sum "$2" | cut -d' ' -f1)
  [ -f "$1/.requirements" ] && have=$(cat "$1/.requirements")
  if [ ! -x "$1/bin/python" ] || [ "$want" != "$have" ]; then
    log "installing $3 into ${1#"$ROOT"/}"
    python3 -m venv "$1"
    "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
    echo "$want" > "$1/.requirements"
  fi
}

# A project-local virtualenv with moto, cfn-lint and pytest.
ensure_venv() {
  venv_from "$VENV" "$ROOT/tools/requirements.txt" "Python tools (moto, cfn-lint, pytest)"
}

# tools/django/.venv: Django 5.2, djoser, simplejwt, argon2-cffi and bcrypt, for the Django
# project whose users make test imports (tools/django/make_dump.py).
DJANGO_VENV="$ROOT/tools/django/.venv"
ensure_django_venv() {
  venv_from "$DJANGO_VENV" "$ROOT/tools/django/requirements.txt" "Django, djoser, simplejwt, argon2-cffi and bcrypt"
}

# util-linux `script` (Debian: bsdutils), which tools/authctl/tests/cli.rs drives authctl through
# on a pseudo-terminal; that test fails without it. Installed with apt-get when missing.
ensure_script() {
  command -v script > /dev/null && script --version 2>/dev/null | grep -q util-linux && return 0
  if command -v apt-get > /dev/null; then
    log "installing util-linux script (apt-get install bsdutils)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bsdutils; } > /dev/null \
      || { log "bsdutils could not be installed"; return 1; }
  fi
  command -v script > /dev/null && script --version 2>/dev/null | grep -q util-linux && return 0
  log "util-linux script is missing: install it (Debian: bsdutils); authctl's pseudo-terminal test needs it"
  return 1
}

# Debian's Chromium and its WebDriver (/usr/bin/chromium, /usr/bin/chromedriver), which the browser
# tests (tools/browser) drive through Selenium; installed with apt-get when missing. Waits for
# another apt/dpkg run to let go of its lock rather than failing.
ensure_chromium() {
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  if command -v apt-get > /dev/null; then
    log "installing Chromium and its WebDriver (apt-get install chromium chromium-driver)"
    local sudo="" wait="-o DPkg::Lock::Timeout=900"
    [ "$(id -u)" = 0 ] || sudo="sudo"
    { $sudo apt-get $wait update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get $wait install -y -qq chromium chromium-driver; } > /dev/null \
      || { log "chromium could not be installed"; return 1; }
  fi
  [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && return 0
  log "Chromium is missing: install it (Debian: chromium chromium-driver); the browser tests need it"
  return 1
}

# tools/browser/node_modules: axe-core (the accessibility checks the browser tests inject), from
# tools/browser/package-lock.json with npm ci, again when the lock file changes. npm (and Node)
# come from apt-get when missing.
ensure_browser_tools() {
  local dir="$ROOT/tools/browser" want have=""
  if ! command -v npm > /dev/null && command -v apt-get > /dev/null; then
    log "installing Node.js and npm (apt-get install nodejs npm)"
    local sudo="" wait="-o DPkg::Lock::Timeout=900"
    [ "$(id -u)" = 0 ] || sudo="sudo"
    { $sudo apt-get $wait update -qq \
      && DEBIAN_FRONTEND=noninteractive $sudo apt-get $wait install -y -qq nodejs npm; } > /dev/null \
      || { log "npm could not be installed"; return 1; }
  fi
  command -v npm > /dev/null || { log "npm is missing: install Node.js and npm; the browser tests need axe-core"; return 1; }
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  [ -f "$dir/node_modules/.package-lock.sha256" ] && have=$(cat "$dir/node_modules/.package-lock.sha256")
  if [ ! -f "$dir/node_modules/axe-core/axe.min.js" ] || [ "$want" != "$have" ]; then
    log "installing axe-core into tools/browser/node_modules (npm ci)"
    (cd "$dir" && npm ci --silent --no-audit --no-fund) || { log "npm ci failed in tools/browser"; return 1; }
    echo "$want" > "$dir/node_modules/.package-lock.sha256"
  fi
}

# A TCP port nobody listens on.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
  python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)' "$1"
}

# wait_port PORT SECONDS NAME
wait_port() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "$3 did not start on port $1 within $2 s" >&2
  return 1
}

# start_moto PORT LOGFILE: the DynamoDB + SES v2 emulator on 127.0.0.1:PORT.
start_moto() {
  "$VENV/bin/python" "$ROOT/tools/emulator.py" "$1" > "$2" 2>&1 &
  PIDS+=($!)
  wait_port "$1" 30 "the AWS emulator (moto)" || { cat "$2" >&2; return 1; }
}

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

# Settings for the local stack; anything already set in the environment wins.
local_env() {
  export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://127.0.0.1:$1}
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
  export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
  export AWS_REGION=${AWS_REGION:-us-east-1}
  export TABLE_NAME=${TABLE_NAME:-gatehouse}
  export EMAIL_FROM=${EMAIL_FROM:-no-reply@gatehouse.test}
  export SITE_NAME=${SITE_NAME:-Gatehouse (local)}
  export PROTOCOL=${PROTOCOL:-http}
  export FRONTEND_DOMAIN=${FRONTEND_DOMAIN:-localhost:3000}
  export RUST_LOG=${RUST_LOG:-info}
}
