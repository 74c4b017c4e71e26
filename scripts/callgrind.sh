#!/usr/bin/env bash
# Instructions per request through the MeshClient stack (over a mock cluster), with callgrind.
# Runs the example with N=100 and N=1100 and divides the difference by 1000, so start-up cancels.
#   scripts/callgrind.sh          (needs valgrind: apt-get install -y valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p mesh-client --example callgrind_stack
bin="${CARGO_TARGET_DIR:-target}/release/examples/callgrind_stack"
count() {
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" "$1" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
a=$(count 100); b=$(count 1100)
echo "instructions: N=100 $a, N=1100 $b"
echo "instructions per request: $(( (b - a) / 1000 ))"
