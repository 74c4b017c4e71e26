#!/usr/bin/env bash
# The bench chain (service1 -> service2 -> service3) started by hand, for profiling one app under
# a gRPC load (examples/examples/grpc_load.rs): `plain` (the --plain apps, bare tonic) or `mesh`
# (the apps with bench's policies, mesh_examples::hop::BENCH_POLICY). Prints the entry address
# and the PIDs, and leaves the apps running until you kill them (by the PIDs it printed).
#   scripts/grpc_chain.sh mesh 18000 &     # ports 18000-18005
#   target/release/examples/grpc_load 127.0.0.1:18000 32 10
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:?plain|mesh}"
base="${2:-18000}"
bin="${CARGO_TARGET_DIR:-target}/release"
dir=$(mktemp -d "/tmp/grpc-chain-$kind.XXXX")
s1=$base s2=$((base + 1)) s3=$((base + 2))
entry() { # host port
  printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s}\nspec:\n  hosts: [%s]\n  location: MESH_INTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - address: 127.0.0.1\n    ports: {http: %s}\n    labels: {app: %s, version: v1}\n---\n' "$1" "$1" "$2" "$1"
}
{ entry service1 "$s1"; entry service2 "$s2"; entry service3 "$s3"; } >"$dir/00-registry.yaml"
flags=(--plain)
if [ "$kind" = mesh ]; then
  # The policy text, from the one place it is written.
  sed -n '/^pub const BENCH_POLICY: &str = r#"/,/^"#;/p' examples/src/hop.rs | sed '1s/.*r#"//; $d' >"$dir/10-policy.yaml"
  flags=()
fi
pids=()
for spec in "service3 $s3 $((base + 3))" "service2 $s2 $((base + 4)) --version v1" "service1 $s1 $((base + 5))"; do
  set -- $spec
  name=$1 port=$2 admin=$3; shift 3
  RUST_LOG=warn "$bin/$name" --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --config "$dir" "$@" "${flags[@]}" 2>"$dir/$name.log" &
  pids+=("$name=$!")
  sleep 0.5
done
echo "entry 127.0.0.1:$s1 config $dir pids ${pids[*]}"
wait
