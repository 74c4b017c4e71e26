#!/usr/bin/env bash
# Runs every fuzz target for a bounded time with a seed corpus made from the project's fixtures.
#   fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain gives cargo fuzz the
# nightly features it needs with RUSTC_BOOTSTRAP=1. Figures go to fuzz/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
export RUSTC_BOOTSTRAP=1
root=..

seed() { # target, files...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"; done
}
seed config_load $(find "$root/mesh-core/tests/fixtures" "$root/examples/config" "$root/examples/scenarios" -name '*.yaml' 2>/dev/null)
seed route_match $(find "$root/mesh-core/tests/fixtures/valid" -name '*.yaml' 2>/dev/null | head -20)
mkdir -p corpus/jwt_verify
printf 'eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoidSJ9.c2ln' > corpus/jwt_verify/es256-shape
printf 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' > corpus/jwt_verify/alg-none

: > last-run.txt
for target in $(cargo fuzz list); do
  echo "== $target: ${secs}s" | tee -a last-run.txt
  cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$secs" -max_len=65536 2>&1 \
    | grep -E '^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|ERROR|panicked' | tail -n 3 | tee -a last-run.txt
done
