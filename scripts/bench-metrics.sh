#!/usr/bin/env bash
# The cost of Signet's instrumentation in relay throughput: the same load (Postfix's smtp-source →
# signet run → smtp-sink, all on loopback) with the metrics exported to Prometheus versus counted into
# swift-metrics' no-op handlers (`--metrics-listen ""`). Rounds alternate the two so drift on a shared
# machine hits both; compare the medians of one run. Wall-clock throughput on a shared two-core machine swings by
# ±25%, far more than the effect sought, so the relay's own CPU time per message (user + system, from
# /proc/PID/stat) is reported beside it: it is what instrumentation adds to. Ed25519 signing keeps the relay's own work small, so the
# instrumentation's share is the largest it gets (RSA-2048 signing would hide it).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${SIGNET_BIN:-$(swift build -c release --show-bin-path)/signet}
rounds=${ROUNDS:-5}
messages=${MESSAGES:-3000}
sessions=${SESSIONS:-10}
dir=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT

wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listens on $1" >&2
    return 1
}

"$bin" keygen --algorithm ed25519-sha256 --out "$dir/ed.pem" >/dev/null
sink=$((20000 + RANDOM % 6000)); relay=$((sink + 1)); metrics=$((sink + 2))
/usr/sbin/smtp-sink -u nobody "127.0.0.1:$sink" 256 &
pids+=($!)
wait_port "$sink"

run() {  # $1: metrics listen address or ""; prints messages per second and CPU microseconds per message
    "$bin" run --listen "127.0.0.1:$relay" --next-hop "127.0.0.1:$sink" --domain example.com --selector ed \
        --key "$dir/ed.pem" --algorithm ed25519-sha256 --state-dir "$dir/state" --metrics-listen "$1" \
        --log-level warning >"$dir/signet.log" 2>&1 &
    local pid=$!
    wait_port "$relay"
    local start end
    start=$(date +%s.%N)
    /usr/sbin/smtp-source -s "$sessions" -m "$messages" -l 2000 -f bulk@example.com -t rcpt@example.org \
        "127.0.0.1:$relay"
    end=$(date +%s.%N)
    if [ -n "$1" ]; then
        # The exporter's view must match the load, or the comparison measured nothing.
        exec 3<>"/dev/tcp/127.0.0.1/$metrics"
        printf 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
        grep -q "^signet_messages_relayed_total $messages\$" <&3 \
            || { echo "metrics do not show $messages relayed" >&2; exit 1; }
        exec 3<&-
    fi
    local ticks
    ticks=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat")  # utime + stime (fields 14, 15)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    awk -v m="$messages" -v s="$start" -v e="$end" -v t="$ticks" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%f %f\n", m / (e - s), t / hz / m * 1e6 }'
}

off=(); on=(); off_cpu=(); on_cpu=()
for round in $(seq "$rounds"); do
    # ABBA order: whichever runs second in a round meets a warmer, or a busier, machine.
    for mode in $( ((round % 2)) && echo "off on" || echo "on off"); do
        if [ "$mode" = off ]; then
            read -r rate cpu < <(run "")
            off+=("$rate"); off_cpu+=("$cpu")
        else
            read -r rate cpu < <(run "127.0.0.1:$metrics")
            on+=("$rate"); on_cpu+=("$cpu")
        fi
    done
    printf 'round %d: no-op %.0f msg/s %.0f µs CPU/msg, exported %.0f msg/s %.0f µs CPU/msg\n' "$round" \
        "${off[-1]}" "${off_cpu[-1]}" "${on[-1]}" "${on_cpu[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
awk -v off="$(median "${off[@]}")" -v on="$(median "${on[@]}")" \
    -v offc="$(median "${off_cpu[@]}")" -v onc="$(median "${on_cpu[@]}")" 'BEGIN {
        printf "median throughput: no-op %.0f msg/s, exported %.0f msg/s (%+.2f%%)\n", off, on, (on - off) / off * 100
        printf "median relay CPU:  no-op %.0f µs/msg, exported %.0f µs/msg (%+.2f%%)\n", offc, onc, (onc - offc) / offc * 100
    }'
