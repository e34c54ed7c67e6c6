#!/usr/bin/env bash
# Where a relayed message's CPU goes: CPU per message of the relay, of the sink behind it and of the generator in
# front of it, in one run (generator → signet run → sink, 4 KiB messages), and the same generator and sink
# alone for comparison. With MALLOCS=1 it also counts the relay's malloc calls per message (a perf uprobe on
# jemalloc's malloc; root): unlike CPU time on this shared machine, that count repeats to within a few percent.
#
#   scripts/relay-cost.sh                    # ed25519-sha256, 20000 messages, 50 connections
#   ALG=rsa-sha256 N=10000 scripts/relay-cost.sh
#   MALLOCS=1 N=5000 scripts/relay-cost.sh
#   PER=1 RATE=600 N=6000 scripts/relay-cost.sh   # a new client connection per message
#
# Release builds (BENCH_BIN_DIR to use others). Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ALG=${ALG:-ed25519-sha256}
N=${N:-20000}
C=${C:-50}
PER=${PER:-100}
RATE=${RATE:-}
if [ -z "${BENCH_BIN_DIR:-}" ]; then
    swift build -c release --product signet >/dev/null
    swift build -c release --product signet-load >/dev/null
    BENCH_BIN_DIR=$(swift build -c release --show-bin-path)
fi
signet=$BENCH_BIN_DIR/signet
load=$BENCH_BIN_DIR/signet-load
dir=$(mktemp -d /dev/shm/signet-cost.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
"$signet" keygen --algorithm "$ALG" --out "$dir/key.pem" >/dev/null
chmod 600 "$dir/key.pem"

wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listens on $1" >&2
    return 1
}
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# Voluntary and involuntary context switches of all of a process's threads so far.
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
per_message() { echo $(( ($1) * 1000000 / $(getconf CLK_TCK) / N )); }
port=$((25000 + RANDOM % 5000))

# The sinks run until killed, so that their CPU time can be read after the generator is done.
# Runs the generator against $1 with N messages; prints its CPU ticks (user + system).
generate() {
    /usr/bin/time -o "$dir/load.time" -f "%U %S" "$load" --server "127.0.0.1:$1" --count "$N" --connections "$C" \
        --per-connection "$PER" --size 4096 ${RATE:+--rate "$RATE"} >"$dir/load.out"
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($1 + $2) * hz }' "$dir/load.time"
}

echo "== $ALG, $N × 4 KiB, $C connections, $PER per connection${RATE:+, paced at $RATE/s}"
sink_port=$((port + 1))
"$load" sink --listen "127.0.0.1:$sink_port" --timeout 600 >/dev/null 2>&1 &
sink=$!
pids+=("$sink")
wait_port "$sink_port"
s0=$(ticks "$sink")
g=$(generate "$sink_port")
s1=$(ticks "$sink")
kill "$sink"
echo "generator → sink:      generator $(per_message "$g") µs/msg, sink $(per_message "$((s1 - s0))") µs/msg;" \
    "$(grep -E '^elapsed' "$dir/load.out")"

relay_port=$((port + 2))
sink_port=$((port + 3))
"$load" sink --listen "127.0.0.1:$sink_port" --timeout 600 >/dev/null 2>&1 &
sink=$!
pids+=("$sink")
wait_port "$sink_port"
"$signet" run --listen "127.0.0.1:$relay_port" --next-hop "127.0.0.1:$sink_port" --domain example.com \
    --selector s --key "$dir/key.pem" --algorithm "$ALG" --state-dir "$dir/state" --metrics-listen "" \
    --log-level warning >"$dir/relay.log" 2>&1 &
relay=$!
pids+=("$relay")
wait_port "$relay_port"
probe=
if [ "${MALLOCS:-0}" = 1 ]; then
    jemalloc=$(awk '/libjemalloc/ {print $6; exit}' "/proc/$relay/maps")
    perf probe -q -x "$jemalloc" --add malloc 2>/dev/null || true
    perf stat -x, -e probe_libjemalloc:malloc -p "$relay" -o "$dir/mallocs.csv" &
    probe=$!
    sleep 0.5
fi
r0=$(ticks "$relay")
c0=$(switches "$relay")
u0=$(awk '{ sub(/.*\) /, ""); print $12 }' "/proc/$relay/stat")
s0=$(ticks "$sink")
g=$(generate "$relay_port")
r1=$(ticks "$relay")
c1=$(switches "$relay")
u1=$(awk '{ sub(/.*\) /, ""); print $12 }' "/proc/$relay/stat")
s1=$(ticks "$sink")
kill "$sink"
if [ -n "$probe" ]; then
    kill -INT "$probe"
    wait "$probe" || true
fi
echo "generator → relay → sink: generator $(per_message "$g") µs/msg, sink $(per_message "$((s1 - s0))") µs/msg;" \
    "$(grep -E '^elapsed' "$dir/load.out")"
echo "relay: $(per_message "$((r1 - r0))") µs/msg ($(per_message "$((u1 - u0))") user)," \
    "$(awk -v c="$((c1 - c0))" -v n="$N" 'BEGIN { printf "%.1f", c / n }') context switches/msg"
if [ -n "$probe" ]; then
    count=$(awk -F, '/probe_libjemalloc:malloc/ {print $1}' "$dir/mallocs.csv")
    echo "relay mallocs per message: $(awk -v c="$count" -v n="$N" 'BEGIN { printf "%.1f", c / n }')" \
        "(the probe's own cost inflates the CPU figure above)"
fi
