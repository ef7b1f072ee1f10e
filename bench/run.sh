#!/usr/bin/env bash
# make bench: installs what the benchmark needs, builds Gatehouse (release, and arm64 for the
# sizes), the floor and the harness, then runs bench/bench.py, which measures, writes
# bench/results.{md,json,png} and prints the table.
#
#   BENCH_SKIP_BUILD=1   reuse the binaries already built (only while trying the script)
#   BENCH_SKIP_ARM64=1   skip the arm64 build (the size target is then reported as not measured)
#   BENCH_QUICK=1        shortened measurements (not for results)
#
# `bash bench/run.sh load` (make bench-load) runs only the load test, bench/load.py: the release dev
# server and authctl are built, then LOAD_CLIENTS (200) clients for LOAD_DURATION (60) seconds, then
# `authctl doctor` on the table; writes bench/load.{md,json}. `make bench` runs it last.
set -euo pipefail
source "$(dirname "$0")/../tools/lib.sh"
cd "$ROOT"
BENCH_VENV="$ROOT/tools/bench/.venv"
export CARGO_TARGET_DIR="$ROOT/target"

# The project venv: moto for the emulator.
ensure_venv

if [ "${1:-}" = load ]; then
  if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
    log "building the dev server and authctl (release)"
    cargo build --release --quiet -p gatehouse-dev-server -p gatehouse-authctl
  fi
  exec "$VENV/bin/python" bench/load.py
fi

# The bench venv: Django, djoser, simplejwt, gunicorn, argon2-cffi, matplotlib, cargo-lambda, zig.
venv_from "$BENCH_VENV" "$ROOT/tools/bench/requirements.txt" "the bench tools (djoser, Django, gunicorn, matplotlib, cargo-lambda)"

# valgrind (Debian) counts the instructions to each function's first poll; without it that
# column is left empty and everything else is measured.
if ! command -v valgrind > /dev/null && command -v apt-get > /dev/null; then
  log "installing valgrind (apt-get)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind; } > /dev/null \
    || log "valgrind could not be installed: instructions to the first poll will not be counted"
fi

# The floor and the argon2id timer must be built exactly as the functions are: the same
# [profile.release], the same per-package overrides of dependencies (argon2, blake2), and each of
# the bench's own packages (bench-hello, bench-harness: the LTO roots) as the functions' binaries'
# package (gatehouse-lambdas).
"$BENCH_VENV/bin/python" - <<'PY'
import sys, tomllib
main = tomllib.load(open("Cargo.toml", "rb"))["profile"]["release"]
bench = tomllib.load(open("tools/bench/Cargo.toml", "rb"))["profile"]["release"]

def split(profile, own_prefix):
    packages = dict(profile.get("package", {}))
    own = {name: packages.pop(name) for name in list(packages) if name.startswith(own_prefix)}
    return {k: v for k, v in profile.items() if k != "package"}, own, packages

main_base, main_own, main_deps = split(main, "gatehouse-")
bench_base, bench_own, bench_deps = split(bench, "bench-")
roots = main_own.get("gatehouse-lambdas", {})
problems = []
if main_base != bench_base:
    problems.append(f"[profile.release]: Cargo.toml {main_base} vs tools/bench/Cargo.toml {bench_base}")
if main_deps != bench_deps:
    problems.append(f"dependency overrides: Cargo.toml {main_deps} vs tools/bench/Cargo.toml {bench_deps}")
for name in ("bench-hello", "bench-harness"):
    if bench_own.get(name, {}) != roots:
        problems.append(f"[profile.release.package.{name}] {bench_own.get(name, {})} vs gatehouse-lambdas' {roots}")
if problems:
    sys.exit("tools/bench/Cargo.toml's release profile differs from the functions': " + "; ".join(problems))
PY

start=$(date +%s)
if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then
  log "building the functions and the dev server (release)"
  cargo build --release --quiet -p gatehouse-lambdas -p gatehouse-dev-server -p gatehouse-authctl
  log "building the hello-world floor and the bench harness (release, same profile)"
  cargo build --release --quiet --manifest-path tools/bench/Cargo.toml
  if [ "${BENCH_SKIP_ARM64:-}" != 1 ]; then
    if command -v rustup > /dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
      log "adding the aarch64-unknown-linux-gnu target"
      rustup target add aarch64-unknown-linux-gnu
    fi
    log "cargo lambda build --release --arm64 (bootstrap sizes)"
    PATH="$BENCH_VENV/bin:$PATH" cargo lambda build --release --arm64 -p gatehouse-lambdas
  fi
fi
if [ "${BENCH_SKIP_BUILD:-}" != 1 ]; then export BENCH_BUILD_S=$(( $(date +%s) - start )); fi

export BENCH_EMULATOR_PYTHON="$VENV/bin/python"
"$BENCH_VENV/bin/python" bench/bench.py
log "moving in from djoser: authctl import-django speed, first login of a Django PBKDF2 account -> bench/django.md"
"$BENCH_VENV/bin/python" bench/django.py
log "load test: ${LOAD_CLIENTS:-200} clients for ${LOAD_DURATION:-60} s, then authctl doctor"
exec "$VENV/bin/python" bench/load.py
