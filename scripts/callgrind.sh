#!/usr/bin/env bash
# Instructions per request, counted by callgrind (the same figure however loaded the machine is):
#   1. one hop of the chain in one process (examples/examples/hop_cost.rs): service2's app with
#      every mesh layer (inbound and outbound, down to an in-process transport), and the same app
#      bare as `--plain` runs it; the difference is what the mesh costs per hop;
#   2. the MeshClient stack alone over a mock cluster (mesh-client/examples/callgrind_stack.rs).
# Each is run with N=200 and N=1200 requests and the difference divided by 1000, so start-up and
# config loading cancel out.
#   scripts/callgrind.sh          (needs valgrind: apt-get install -y valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p mesh-examples --example hop_cost
cargo build --release -q -p mesh-client --example callgrind_stack
dir="${CARGO_TARGET_DIR:-target}/release/examples"
count() { # binary args... -> total instructions
  local out; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
per_request() { # binary args-before-N -> instructions per request
  local a b; a=$(count "$@" 200); b=$(count "$@" 1200)
  echo $(( (b - a) / 1000 ))
}
mesh=$(per_request "$dir/hop_cost" run mesh)
bare=$(per_request "$dir/hop_cost" run bare)
stack=$(per_request "$dir/callgrind_stack")
echo "hop, mesh: $mesh instructions per request"
echo "hop, bare: $bare instructions per request"
echo "hop, the mesh's cost: $(( mesh - bare )) instructions per request"
echo "MeshClient stack over a mock cluster: $stack instructions per request"
