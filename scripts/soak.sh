#!/usr/bin/env bash
# `make soak`: a long run through `signet run` (release) to the `signet-load` sink: N messages (default 200000)
# over C connections (50), each connection replaced every PER messages (100) so connections come and go for the
# whole run. Prints the report docs/reliability.md keeps: messages sent, acknowledged, received by the sink,
# the relay's own relayed count, duplicates and losses, and the relay's RSS and open descriptors at the start
# (after a warm-up of 2000 messages) and the end, with the peak sampled every second.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000} C=${C:-50} PER=${PER:-100} SIZE=${SIZE:-4096}
swift build -c release --product signet >/dev/null
swift build -c release --product signet-load >/dev/null
bin=$(swift build -c release --show-bin-path)
work=$(mktemp -d /tmp/signet-soak.XXXXXX)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
relay_port=$(port) sink_port=$(port) metrics_port=$(port)
"$bin/signet" keygen --out "$work/soak.pem" --selector soak --domain example.com >"$work/soak.dns"
total=$((N + 2000))
"$bin/signet-load" sink --listen "127.0.0.1:$sink_port" --exit-after "$total" --timeout 7200 --json >"$work/sink.json" &
sink=$!; pids+=("$sink")
"$bin/signet" run --listen "127.0.0.1:$relay_port" --next-hop "127.0.0.1:$sink_port" \
    --metrics-listen "127.0.0.1:$metrics_port" --state-dir "$work/state" \
    --domain example.com --selector soak --key "$work/soak.pem" >"$work/signet.log" 2>&1 &
relay=$!; pids+=("$relay")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$relay_port") 2>/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$relay/status"; }
fds() { ls "/proc/$relay/fd" | wc -l; }
"$bin/signet-load" send --server "127.0.0.1:$relay_port" -n 2000 -c "$C" --per-connection "$PER" --size "$SIZE" \
    --from soak@example.com >/dev/null
rss_start=$(rss) fds_start=$(fds) rss_peak=$rss_start fds_peak=$fds_start
started=$(date +%s)
"$bin/signet-load" send --server "127.0.0.1:$relay_port" -n "$N" -c "$C" --per-connection "$PER" --size "$SIZE" \
    --from soak@example.com --timeout 7200 --json >"$work/load.json" &
load=$!; pids+=("$load")
while kill -0 "$load" 2>/dev/null; do
    r=$(rss) f=$(fds)
    [ "$r" -gt "$rss_peak" ] && rss_peak=$r
    [ "$f" -gt "$fds_peak" ] && fds_peak=$f
    sleep 1
done
wait "$load" || true
seconds=$(( $(date +%s) - started ))
sleep 2  # idle connections close
rss_end=$(rss) fds_end=$(fds)
wait "$sink" || true
relayed=$(curl -s "http://127.0.0.1:$metrics_port/metrics" | awk '$1 == "signet_messages_relayed_total" {print $2}')
python3 - "$work/load.json" "$work/sink.json" "$N" "$relayed" "$seconds" \
    "$rss_start" "$rss_peak" "$rss_end" "$fds_start" "$fds_peak" "$fds_end" <<'PY'
import json, sys
load, sink = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
n, relayed, seconds = int(sys.argv[3]), float(sys.argv[4] or 0), int(sys.argv[5])
rss = [int(x) / 1024 for x in sys.argv[6:9]]
fds = [int(x) for x in sys.argv[9:12]]
def find(d, *keys):
    for k in keys:
        if k in d: return d[k]
    return None
acked = find(load, "acknowledged", "accepted", "ok", "succeeded")
received = find(sink, "answered", "received", "messages", "accepted")
warmup = 2000
print(f"soak: {n} messages in {seconds} s")
print(f"| sent | acknowledged (250) | received by the sink | relayed (signet) | duplicates | lost |")
print(f"|--:|--:|--:|--:|--:|--:|")
dup = (received - warmup - acked) if received is not None and acked is not None else "?"
lost = (acked - (received - warmup)) if received is not None and acked is not None else "?"
print(f"| {n} | {acked} | {received - warmup if received is not None else '?'} | {int(relayed) - warmup} | {max(dup,0) if dup!='?' else dup} | {max(lost,0) if lost!='?' else lost} |")
print(f"relay RSS MiB start/peak/end: {rss[0]:.1f} / {rss[1]:.1f} / {rss[2]:.1f}; open fds start/peak/end: {fds[0]} / {fds[1]} / {fds[2]}")
print("load report:", json.dumps({k: v for k, v in load.items() if not isinstance(v, (dict, list))}))
print("sink report:", json.dumps({k: v for k, v in sink.items() if not isinstance(v, (dict, list))}))
PY
