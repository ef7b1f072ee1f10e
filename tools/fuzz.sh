#!/usr/bin/env bash
# cargo-fuzz targets of fuzz/ (body parsing, email parsing, the Authorization header, JWT verify)
# on the stable toolchain.
#   tools/fuzz.sh --bounded            install what is missing, build every target, run each one on
#                                      its seeds and then for FUZZ_BOUNDED_SECONDS (default 5) s;
#                                      fails on any crash or failed property (make test runs this)
#   tools/fuzz.sh [SECONDS] [TARGET..] run each (or the named) target for SECONDS (default 300)
# Environment: FUZZ_SANITIZER (none | address; default none: the code under test has no unsafe)
# and FUZZ_PROFILE (dev | release; default dev: a cold release build with sanitizer coverage takes
# several times longer, mostly the AWS SDK crates; release runs more executions per second).
# Crashes land in fuzz/artifacts/<target>/; reproduce one with
#   RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=fuzz/target .dev/cargo-bin/bin/cargo-fuzz run --fuzz-dir fuzz -s none --dev <target> <file>
# New interesting inputs collect in fuzz/corpus/<target>/ (not checked in; fuzz/seeds/ is).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CARGO_FUZZ_VERSION=0.13.2
FUZZ_ROOT="$ROOT/.dev/cargo-bin"
CARGO_FUZZ="$FUZZ_ROOT/bin/cargo-fuzz"
TARGETS=(body email authorization jwt)
SANITIZER=${FUZZ_SANITIZER:-none}
case ${FUZZ_PROFILE:-dev} in
  dev) PROFILE=(--dev) ;;
  release) PROFILE=(--release --debug-assertions) ;;
  *) echo "FUZZ_PROFILE must be dev or release" >&2; exit 2 ;;
esac

bounded=0
seconds=300
if [ "${1:-}" = "--bounded" ]; then
  bounded=1
  seconds=${FUZZ_BOUNDED_SECONDS:-5}
  shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
elif [ -n "${1:-}" ] && [[ "$1" == -* ]]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
[ $# -gt 0 ] && TARGETS=("$@")

if ! [ -x "$CARGO_FUZZ" ] || [ "$("$CARGO_FUZZ" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into .dev/cargo-bin"
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$FUZZ_ROOT" --quiet
fi

# cargo-fuzz passes -Z / sanitizer-coverage flags that only a nightly compiler accepts; the
# stable compiler accepts them too with RUSTC_BOOTSTRAP=1. fuzz/ is a workspace of its own with
# its own lock file and target directory (fuzz/target).
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$ROOT/fuzz/target"
fuzz() { (cd "$ROOT" && "$CARGO_FUZZ" "$@"); }

max_len() {
  case $1 in
    body) echo 17000 ;;   # past the 16 KiB body limit
    jwt) echo 5000 ;;     # past the 4096-byte token limit
    *) echo 4096 ;;
  esac
}

log "building fuzz targets (sanitizer: $SANITIZER, profile: ${FUZZ_PROFILE:-dev})"
start=$SECONDS
fuzz build --fuzz-dir fuzz --sanitizer "$SANITIZER" "${PROFILE[@]}"
log "built in $((SECONDS - start)) s"

failed=()
for target in "${TARGETS[@]}"; do
  mkdir -p "$ROOT/fuzz/corpus/$target" "$ROOT/fuzz/target/logs"
  out="$ROOT/fuzz/target/logs/$target.log"
  log "fuzzing $target for $seconds s (log: fuzz/target/logs/$target.log)"
  # The first corpus directory receives new inputs; the seeds are read only.
  if fuzz run --fuzz-dir fuzz --sanitizer "$SANITIZER" "${PROFILE[@]}" "$target" \
    "$ROOT/fuzz/corpus/$target" "$ROOT/fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 > "$out" 2>&1; then
    grep -E '^(Done|stat::(number_of_executed_units|new_units_added))' "$out" | sed 's/^/    /' >&2 || true
  else
    failed+=("$target")
    grep -E -A8 'panicked at|ERROR: libFuzzer|Failing input' "$out" | head -n 40 >&2 || tail -n 40 "$out" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
log "fuzzing: no crashes in ${TARGETS[*]} ($seconds s each$([ $bounded = 1 ] && echo ", bounded"))"
