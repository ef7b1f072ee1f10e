#!/usr/bin/env bash
# make package: every function built for Lambda (arm64, provided.al2023) with cargo-lambda and its
# zig from PyPI, the bootstrap sizes, then `sam build` of infra/template.yaml into .aws-sam/build
# (its rust-cargolambda method runs the same cargo lambda build per function: all fresh by then).
#   PACKAGE_SKIP_SAM=1   only the cargo lambda build
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
"$VENV/bin/pip" install --quiet --disable-pip-version-check cargo-lambda==1.9.2 ziglang==0.17.1
if command -v rustup > /dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  log "adding the aarch64-unknown-linux-gnu target"
  rustup target add aarch64-unknown-linux-gnu
fi
export PATH="$VENV/bin:$PATH"
log "cargo lambda build --release --arm64 (every function; a long LTO build)"
cargo lambda build --release --arm64 -p gatehouse-lambdas
log "bootstrap sizes (target/lambda/<function>/bootstrap)"
for f in target/lambda/*/bootstrap; do
  printf '%8d KiB  %s\n' "$(( $(stat -c %s "$f") / 1024 ))" "$(basename "$(dirname "$f")")"
done
[ "${PACKAGE_SKIP_SAM:-}" = 1 ] && exit 0
log "sam build (infra/template.yaml -> .aws-sam/build)"
bash tools/sam.sh build --template-file infra/template.yaml --beta-features
