#!/usr/bin/env bash
# Instructions per request of service2 in the real chain (client -> service1 -> service2 ->
# service3 over loopback sockets), counted by callgrind: what the in-process hop of
# scripts/callgrind.sh leaves out is in this count (hyper's HTTP/1 codec for the headers the
# mesh adds, the timers a pending answer arms, the headers a middle hop receives: traceparent,
# x-request-id, x-mesh-peer-metadata). service1 and service3 run normally, service2 under
# callgrind; after 300 warm-up requests the counters are dumped and zeroed, and the dump after
# 1000 more requests (one at a time, on one keep-alive connection) holds exactly those.
#   scripts/chain_callgrind.sh plain|mesh [BASEPORT] [OUTDIR]   (needs valgrind and python3)
# Prints the instructions per request; the callgrind file stays in OUTDIR for
# callgrind_annotate. The mesh run uses bench's policies (mesh_examples::hop::BENCH_POLICY).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:?plain|mesh}"
base="${2:-19000}"
bin="${CARGO_TARGET_DIR:-target}/release"
out=$(realpath -m "${3:-$(mktemp -d /tmp/chain-callgrind.XXXX)}")
mkdir -p "$out"
dir=$(mktemp -d "/tmp/chain-callgrind-$kind.XXXX")
s1=$base s2=$((base + 1)) s3=$((base + 2))
entry() { # host port
  printf 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: %s}\nspec:\n  hosts: [%s]\n  location: MESH_INTERNAL\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints:\n  - address: 127.0.0.1\n    ports: {http: %s}\n    labels: {app: %s, version: v1}\n---\n' "$1" "$1" "$2" "$1"
}
{ entry service1 "$s1"; entry service2 "$s2"; entry service3 "$s3"; } >"$dir/00-registry.yaml"
flags=(--plain)
if [ "$kind" = mesh ]; then
  sed -n '/^pub const BENCH_POLICY: &str = r#"/,/^"#;/p' examples/src/hop.rs | sed '1s/.*r#"//; $d' >"$dir/10-policy.yaml"
  flags=()
fi
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
RUST_LOG=warn "$bin/service3" --listen "127.0.0.1:$s3" --admin "127.0.0.1:$((base + 3))" \
  --config "$dir" "${flags[@]}" 2>"$dir/service3.log" &
pids+=($!)
RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out/$kind.out" "$bin/service2" \
  --listen "127.0.0.1:$s2" --admin "127.0.0.1:$((base + 4))" --config "$dir" --version v1 \
  "${flags[@]}" 2>"$dir/service2.log" &
cg=$!
pids+=("$cg")
# service1 starts once service2 answers: a caller that meets a slow-starting service2 would
# eject it (outlier detection) and answer 503 for the ejection time.
for _ in $(seq 1 120); do
  curl -sf -o /dev/null "127.0.0.1:$s2/ready" && break
  sleep 1
done
RUST_LOG=warn "$bin/service1" --listen "127.0.0.1:$s1" --admin "127.0.0.1:$((base + 5))" \
  --config "$dir" "${flags[@]}" 2>"$dir/service1.log" &
pids+=($!)
send() { # count
  python3 - "$s1" "$1" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/ready"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    c.request("GET", "/bench"); r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit(f"service1 answered {r.status}")
PY
}
send 300
callgrind_control -d "$cg" >/dev/null
send 1000
callgrind_control -d "$cg" >/dev/null
# The second dump is the 1000 requests (callgrind numbers its dumps .1, .2, ...).
total=$(callgrind_annotate "$out/$kind.out.2" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "service2 ($kind) in the chain: $((total / 1000)) instructions per request ($out/$kind.out.2)"
