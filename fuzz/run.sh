#!/usr/bin/env bash
# Runs every fuzz target, one after the other, for a bounded time with a seed corpus made from the
# project's fixtures (and the committed seeds in fuzz/seeds/).
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]   (default 60 s, every target)
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain gives cargo fuzz the
# nightly features it needs with RUSTC_BOOTSTRAP=1. Builds with AddressSanitizer (cargo fuzz's
# default; set FUZZ_SANITIZER=none to build without). Figures go to fuzz/last-run.txt, full
# libFuzzer logs to fuzz/logs/, crashing inputs to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-address}"
root=..

seed() { # target, files...
  local dir="corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"; done
  return 0
}
seed config_load $(find "$root/mesh-core/tests/fixtures" "$root/examples/config" "$root/examples/scenarios" -name '*.yaml' 2>/dev/null)
# route_match: a fixture config, the `===` separator, then a request (path, authority, headers).
mkdir -p corpus/route_match
for f in $(find "$root/mesh-core/tests/fixtures/valid" -name '*.yaml' 2>/dev/null | head -20); do
  { cat "$f"; printf '\n===\n/api/v1/items?q=1\nsvc\nx-user: admin\n'; } > "corpus/route_match/$(basename "$f")"
done
printf '/Static/a?q=1\nsvc\nx-user: admin1\n' > corpus/route_match/fixed-config-request
# jwt_verify: first byte `t` then a token, `k` then a JWKS document (see the target's docs).
seed jwt_verify seeds/jwt_verify/*
printf 'teyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwic3ViIjoidSJ9.c2ln' > corpus/jwt_verify/es256-shape
printf 'teyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.' > corpus/jwt_verify/alg-none

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
mkdir -p logs
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(uname -m); sanitizer: $sanitizer; ${secs}s per target"
} > last-run.txt
status=0
for target in "${targets[@]}"; do
  cargo fuzz build -s "$sanitizer" "$target"
  echo "== $target: ${secs}s, seed corpus $(ls "corpus/$target" | wc -l) files" | tee -a last-run.txt
  log="logs/$target.log"
  # -timeout: one input taking over 10 s is a finding; -rss_limit_mb: libFuzzer's default, stated.
  if cargo fuzz run -s "$sanitizer" "$target" "corpus/$target" -- \
      -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log and artifacts/$target/)"
    status=1
  fi
  {
    grep -E '^#[0-9]+.*(INITED|DONE)|Done [0-9]+ runs' "$log" | tail -n 3
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    grep -E 'ERROR: libFuzzer|panicked at|SUMMARY: ' "$log" | head -n 5 || true
    echo "corpus after run: $(ls "corpus/$target" | wc -l) files; crashes saved: $(ls "artifacts/$target" 2>/dev/null | wc -l); result: $result"
  } | tee -a last-run.txt
done
exit $status
