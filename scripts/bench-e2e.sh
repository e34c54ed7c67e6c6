#!/usr/bin/env bash
# End-to-end comparison in one run, same messages and concurrency for every path (issue 9):
#   (a) signet-load → signet-load sink                       the plumbing ceiling
#   (b) signet-load → signet run (rsa-sha256)     → sink
#   (c) signet-load → signet run (ed25519-sha256) → sink
#   (g) the same as (c) with glibc malloc instead of jemalloc: a second signet built with SIGNET_ALLOCATOR=system
#       in .build-glibc (a cold release build the first time): what jemalloc buys
#   (d) signet-load → Postfix + OpenDKIM milter   → sink     queue on tmpfs, milter on a unix socket
#   (e) signet-load → Postfix + rspamd milter (DKIM signing only) → sink
#   (s) signet-load → signet run (rsa-sha256 DKIM + ARC seal, same key; verification from a zone file) → sink
#   (t) the same with the ARC seal only, no DKIM signature (AMS and AS: one private-key operation more than (b))
#       neither in the default SCENARIOS: compare with (b), e.g. SCENARIOS="b s t" (issue 6: a seal within 2.2x of
#       (b)); the sink checks their samples' ARC chains with dkimpy's arc_verify as well
# Throughput is end to end: N divided by the time from the generator's first connection until the sink has
# answered all N (Postfix acknowledges at queueing, so the generator's own rate would flatter it). Latency is the generator's:
# MAIL sent to the end-of-data reply; "added" is the difference to (a). "Relay's own added p99" is Signet's
# signet_added_latency_seconds (end of data to its reply, the next hop's answer excluded), read from its metrics
# endpoint after the run: the bucket bound its p99 is under. Signet runs with its metrics exported, as deployed
# (metrics_listen is on by default). Peak RSS is VmHWM summed over the signing
# path's processes still alive at the end (Signet: the relay and its children; Postfix: master, its children and the
# milter). CPU is user+system of the same processes per message. Release builds. Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
# (BENCH_BIN_DIR, not SIGNET_*: `signet run` reads every SIGNET_ variable as configuration.)
N=${N:-20000}  # a run of (a) lasts under a second; 5000 messages were too few for it to settle
C=${C:-50}
SIZE=${SIZE:-4096}
PER=${PER:-100}
# RATE=messages/s paces the generator (for added latency below saturation); empty: as fast as the path answers.
RATE=${RATE:-}
SCENARIOS=${SCENARIOS:-a b c g d e}
out=${BENCH_OUT:-.build-bench/results}
mkdir -p "$out"

if [ -z "${BENCH_BIN_DIR:-}" ]; then
    swift build -c release --product signet >/dev/null
    swift build -c release --product signet-load >/dev/null
    BENCH_BIN_DIR=$(swift build -c release --show-bin-path)
fi
signet=$BENCH_BIN_DIR/signet
# (g): the same relay with glibc malloc; GLIBC_BIN_DIR to use one built already.
glibc_signet=
if [[ " $SCENARIOS " == *" g "* ]]; then
    if [ -z "${GLIBC_BIN_DIR:-}" ]; then
        SIGNET_ALLOCATOR=system swift build -c release --scratch-path .build-glibc --product signet >/dev/null
        GLIBC_BIN_DIR=$(SIGNET_ALLOCATOR=system swift build -c release --scratch-path .build-glibc --show-bin-path)
    fi
    glibc_signet=$GLIBC_BIN_DIR/signet
    if ldd "$glibc_signet" | grep -q jemalloc; then echo "bench-e2e: $glibc_signet links jemalloc" >&2; exit 1; fi
fi
load=$BENCH_BIN_DIR/signet-load

# Bench-only peers (tests need postfix and opendkim too; rspamd only here).
for p in postfix opendkim rspamd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
    [ "$(id -u)" -eq 0 ] || { echo "bench-e2e: $p is missing (run as root to install it)" >&2; exit 1; }
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done

# Everything, Postfix's queue included, lives on tmpfs.
dir=$(mktemp -d /dev/shm/signet-bench.XXXXXX)
chmod 755 "$dir"
pids=()
postfix_dirs=()
cleanup() {
    for d in "${postfix_dirs[@]}"; do /usr/sbin/postfix -c "$d/conf" stop >/dev/null 2>&1 || true; done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$dir"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    echo "nothing listens on $1" >&2
    return 1
}
port=$((20000 + RANDOM % 5000))
# Sets $1 to a new port (not in a subshell, so the counter moves on).
next_port() { port=$((port + 1)); printf -v "$1" '%s' "$port"; }

# Keys and their DNS records, for the sink's sampled verification (dkimpy).
"$signet" keygen --algorithm rsa-sha256 --out "$dir/rsa.pem" >/dev/null
"$signet" keygen --algorithm ed25519-sha256 --out "$dir/ed.pem" >/dev/null
rsa_p=$(openssl pkey -in "$dir/rsa.pem" -pubout -outform DER | base64 -w0)
ed_p=$(openssl pkey -in "$dir/ed.pem" -pubout -outform DER | tail -c 32 | base64 -w0)
printf 'rsa._domainkey.example.com\tv=DKIM1; k=rsa; p=%s\ned._domainkey.example.com\tv=DKIM1; k=ed25519; p=%s\n' \
    "$rsa_p" "$ed_p" >"$dir/keys.txt"
# Signet refuses key files others can read; rspamd (e), which runs as its own user, gets a readable copy.
chmod 600 "$dir"/*.pem

# Process tree helpers: a pid and all its descendants; VmHWM (kB) and CPU ticks summed over them.
tree() { local p; for p in "$@"; do echo "$p"; tree $(ps -o pid= --ppid "$p" 2>/dev/null); done; }
peak_rss_kb() { local s=0 p v; for p in $(tree "$@"); do v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || true); s=$((s + ${v:-0})); done; echo "$s"; }
cpu_ticks() { local s=0 p v; for p in $(tree "$@"); do v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || true); s=$((s + ${v:-0})); done; echo "$s"; }

# Runs the load against $1 with the sink on $2; $3: scenario name; $4: pids of the signing path ("" for none);
# $5: Signet's metrics port, read at the end for the relay's own view of the latency it adds ("" for none).
measure() {
    local target=$1 sink_port=$2 name=$3 path_pids=$4 metrics=${5:-} verify=()
    [ "$name" = a ] || verify=(--verify-every $((N / 20 > 0 ? N / 20 : 1)) --key-file "$dir/keys.txt")
    "$load" sink --listen "127.0.0.1:$sink_port" --exit-after "$N" --timeout 600 --json "${verify[@]}" \
        >"$out/e2e-$name-sink.json" 2>"$dir/sink-$name.log" &
    local sink=$!
    wait_port "$sink_port"
    local cpu0=0
    [ -n "$path_pids" ] && cpu0=$(cpu_ticks $path_pids)
    local start end
    start=$(date +%s.%N)
    "$load" --server "127.0.0.1:$target" --count "$N" --connections "$C" --per-connection "$PER" --size "$SIZE" \
        ${RATE:+--rate "$RATE"} --json >"$out/e2e-$name-load.json" || echo "($name: not every message was acknowledged)" >&2
    # Postfix may still be delivering what it queued; give it two minutes, then the sink reports what it has.
    for _ in $(seq 1200); do kill -0 "$sink" 2>/dev/null || break; sleep 0.1; done
    kill "$sink" 2>/dev/null || true
    wait "$sink" || echo "($name: the sink did not get every message or a sample failed to verify)" >&2
    end=$(date +%s.%N)
    local rss=0 cpu=0
    [ -z "$metrics" ] || python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
        "http://127.0.0.1:$metrics/metrics" >"$out/e2e-$name-metrics.txt" || echo "($name: no metrics)" >&2
    if [ -n "$path_pids" ]; then
        rss=$(peak_rss_kb $path_pids)
        cpu=$(( $(cpu_ticks $path_pids) - cpu0 ))
    fi
    python3 - "$out/e2e-$name-load.json" "$out/e2e-$name-sink.json" "$start" "$end" "$rss" "$cpu" "$(getconf CLK_TCK)" "$name" \
        "${metrics:+$out/e2e-$name-metrics.txt}" >>"$dir/rows" <<'PY'
import json, os, re, sys
load = json.load(open(sys.argv[1])); sink = json.load(open(sys.argv[2]))
# The relay's signet_added_latency_seconds: the bucket bound its p99 falls under (the end of data to its reply,
# less the next hop's answer; histogram buckets, so an upper bound).
relay_p99 = None
if len(sys.argv) > 9 and sys.argv[9] and os.path.exists(sys.argv[9]):
    buckets = [(float("inf") if m[1] == "+Inf" else float(m[1]), float(m[2])) for m in
               re.finditer(r'^signet_added_latency_seconds_bucket\{le="([^"]+)"\} (\S+)$', open(sys.argv[9]).read(), re.M)]
    if buckets and buckets[-1][1] > 0:
        relay_p99 = next(le for le, count in buckets if count >= 0.99 * buckets[-1][1]) * 1000
start, end, rss, cpu, hz, name = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]
# From the generator's first connection to the sink's last answer; the shell's clock brackets also the processes'
# start and exit and the wait loop's polling (up to 0.1 s, a third of a 5000-message run of (a)).
outer = sink["accepted"] / (end - start)
if load.get("startedAt") and sink.get("lastAnswerAt"):
    start, end = load["startedAt"], sink["lastAnswerAt"]
v = sink.get("verification") or {}
print(json.dumps({"name": name, "rate": sink["accepted"] / (end - start), "outer_rate": outer, "acked": load["acknowledged"],
    "received": sink["accepted"], "p50": load["latencyMilliseconds"]["p50"], "p99": load["latencyMilliseconds"]["p99"],
    "rss_mib": rss / 1024, "relay_p99": relay_p99, "cpu_us": cpu / hz / max(1, sink["accepted"]) * 1e6,
    "verified": "%s/%s" % (v.get("passed", "-"), v.get("messages", "-"))}))
PY
}

# Metrics are exported as in a deployment (metrics_listen is on by default), on $metrics_port.
signet_run() {  # $1 relay port, $2 sink port, $3 selector, $4 key, $5 algorithm, $6 name (default: the selector)
    local name=${6:-$3}  # RELAY_EXECUTABLE: another build of signet
    "${RELAY_EXECUTABLE:-$signet}" run --listen "127.0.0.1:$1" --next-hop "127.0.0.1:$2" --domain example.com --selector "$3" --key "$4" \
        --algorithm "$5" --state-dir "$dir/state-$name" --metrics-listen "127.0.0.1:$metrics_port" --log-level warning \
        >"$dir/signet-$name.log" 2>&1 &
    echo $!
}

# A throwaway Postfix relaying everything to the sink, with the given milter; echoes its directory.
postfix_instance() {  # $1 name, $2 smtpd port, $3 sink port, $4 milter socket
    local d=$dir/postfix-$1
    mkdir -p "$d/conf" "$d/queue" "$d/data"
    chown postfix "$d/data"
    cat >"$d/conf/main.cf" <<CF
compatibility_level = 3.6
config_directory = $d/conf
queue_directory = $d/queue
data_directory = $d/data
maillog_file = $d/maillog
maillog_file_prefixes = $d
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = relay.example.com
mydestination =
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$3
smtpd_milters = unix:$4
milter_default_action = tempfail
local_header_rewrite_clients =
default_destination_concurrency_limit = $C
smtp_destination_concurrency_limit = $C
default_process_limit = $((C * 2 + 10))
biff = no
CF
    cat >"$d/conf/master.cf" <<CF
127.0.0.1:$2 inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CF
    postfix_dirs+=("$d")
    /usr/sbin/postfix -c "$d/conf" start >/dev/null 2>&1 || { cat "$d/maillog" >&2; return 1; }
    wait_port "$2"
}
master_pid() { tr -d ' \n' <"$1/queue/pid/master.pid"; }

: >"$dir/rows"
for s in $SCENARIOS; do
    next_port sink_port
    case $s in
    a)
        echo "== (a) signet-load → sink"
        measure "$sink_port" "$sink_port" a ""
        ;;
    b | c | g)
        next_port relay_port
        next_port metrics_port
        if [ "$s" = b ]; then pid=$(signet_run "$relay_port" "$sink_port" rsa "$dir/rsa.pem" rsa-sha256); label=rsa-sha256
        elif [ "$s" = c ]; then pid=$(signet_run "$relay_port" "$sink_port" ed "$dir/ed.pem" ed25519-sha256); label=ed25519-sha256
        else
            pid=$(RELAY_EXECUTABLE=$glibc_signet signet_run "$relay_port" "$sink_port" ed "$dir/ed.pem" ed25519-sha256 ed-glibc)
            label="ed25519-sha256, glibc malloc"
        fi
        pids+=("$pid")
        echo "== ($s) signet-load → signet run ($label) → sink"
        wait_port "$relay_port" || { cat "$dir"/signet-*.log >&2; exit 1; }
        measure "$relay_port" "$sink_port" "$s" "$pid" "$metrics_port"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        ;;
    s | t)
        next_port relay_port
        next_port metrics_port
        table="[{from: example.com, keys: [rsa]}]"
        [ "$s" = t ] && table="[]"
        # The key record as a zone file for dns.zone_file (TXT strings of at most 255 bytes).
        python3 - "$rsa_p" >"$dir/keys.zone" <<'PY'
import sys
value = "v=DKIM1; k=rsa; p=" + sys.argv[1]
print("rsa._domainkey.example.com. TXT " + " ".join('"%s"' % value[i:i + 250] for i in range(0, len(value), 250)))
PY
        cat >"$dir/sealed-$s.yaml" <<CF
listen: ["127.0.0.1:$relay_port"]
next_hop: 127.0.0.1:$sink_port
metrics_listen: 127.0.0.1:$metrics_port
state_directory: $dir/state-sealed-$s
dns: {zone_file: $dir/keys.zone}
signing:
  keys: {rsa: {domain: example.com, selector: rsa, key_file: $dir/rsa.pem}}
  table: $table
arc:
  rules: [{key: rsa, authserv_id: relay.example.com}]
CF
        "$signet" run --config "$dir/sealed-$s.yaml" --log-level warning >"$dir/signet-sealed-$s.log" 2>&1 &
        pid=$!
        pids+=("$pid")
        if [ "$s" = s ]; then what="rsa-sha256 DKIM + ARC seal"; else what="ARC seal only"; fi
        echo "== ($s) signet-load → signet run ($what) → sink"
        wait_port "$relay_port" || { cat "$dir"/signet-*.log >&2; exit 1; }
        measure "$relay_port" "$sink_port" "$s" "$pid" "$metrics_port"
        kill "$pid"; wait "$pid" 2>/dev/null || true
        ;;
    d)
        echo "== (d) signet-load → Postfix + OpenDKIM (rsa-sha256) → sink"
        next_port smtpd_port
        # OpenDKIM drops to its own user before making the socket: a folder it owns.
        mkdir -p "$dir/opendkim"
        chown opendkim "$dir/opendkim"
        sock=$dir/opendkim/opendkim.sock
        cat >"$dir/opendkim.conf" <<CF
Mode s
Domain example.com
Selector rsa
KeyFile $dir/rsa.pem
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
Socket local:$sock
UMask 000
RequireSafeKeys no
Syslog no
UserID opendkim
PidFile $dir/opendkim/opendkim.pid
CF
        chown opendkim "$dir/rsa.pem"
        opendkim -f -x "$dir/opendkim.conf" >"$dir/opendkim.log" 2>&1 &
        milter=$!
        pids+=("$milter")
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
        postfix_instance d "$smtpd_port" "$sink_port" "$sock"
        measure "$smtpd_port" "$sink_port" d "$(master_pid "$dir/postfix-d") $milter"
        /usr/sbin/postfix -c "$dir/postfix-d/conf" stop >/dev/null 2>&1 || true
        kill "$milter" 2>/dev/null || true
        chown root "$dir/rsa.pem"
        ;;
    e)
        echo "== (e) signet-load → Postfix + rspamd milter proxy (DKIM signing only, rsa-sha256) → sink"
        next_port smtpd_port
        install -m 644 "$dir/rsa.pem" "$dir/rsa-rspamd.pem"
        if ! scripts/bench-rspamd.sh "$dir" "$dir/rsa-rspamd.pem" >"$dir/rspamd-setup.log" 2>&1; then
            echo "(e: rspamd could not be set up; see below)" >&2; cat "$dir/rspamd-setup.log" >&2; continue
        fi
        rspamd_pid=$(cat "$dir/rspamd/rspamd.pid")
        postfix_instance e "$smtpd_port" "$sink_port" "$dir/rspamd/milter.sock"
        measure "$smtpd_port" "$sink_port" e "$(master_pid "$dir/postfix-e") $rspamd_pid"
        /usr/sbin/postfix -c "$dir/postfix-e/conf" stop >/dev/null 2>&1 || true
        kill "$rspamd_pid" 2>/dev/null || true
        ;;
    esac
done

python3 - "$dir/rows" "$N" "$C" "$SIZE" <<'PY' | tee "$out/e2e-table.md"
import json, sys
rows = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
n, c, size = sys.argv[2:5]
labels = {"a": "(a) load → sink (plumbing ceiling)", "b": "(b) Signet rsa-sha256", "c": "(c) Signet ed25519-sha256",
          "g": "(g) Signet ed25519-sha256, glibc malloc",
          "d": "(d) Postfix + OpenDKIM rsa-sha256", "e": "(e) Postfix + rspamd rsa-sha256",
          "s": "(s) Signet rsa-sha256 + ARC seal", "t": "(t) Signet ARC seal only (rsa-sha256)"}
base = rows.get("a")
import os
rate = os.environ.get("RATE")
print(f"{n} messages of {size} bytes, {c} connections, pipelining" + (f", paced at {rate} messages/s" if rate else "") + "\n")
print("| path | msg/s | acked / received | p50 ms | p99 ms | added p50 / p99 ms | relay's own added p99 ms | peak RSS MiB | CPU µs/msg | verified | ×(a) | ×(d) | ×(e) |")
print("|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for k in "abcgdest":
    r = rows.get(k)
    if not r: continue
    added = f"{r['p50'] - base['p50']:.2f} / {r['p99'] - base['p99']:.2f}" if base and k != "a" else "–"
    ratio = lambda o: f"{r['rate'] / rows[o]['rate']:.2f}" if o in rows and rows[o]["rate"] > 0 else "–"
    rss = f"{r['rss_mib']:.1f}" if k != "a" else "–"
    cpu = f"{r['cpu_us']:.0f}" if k != "a" else "–"
    own = f"≤ {r['relay_p99']:g}" if r.get("relay_p99") is not None else "–"
    print(f"| {labels[k]} | {r['rate']:.0f} | {r['acked']} / {r['received']} | {r['p50']:.2f} | {r['p99']:.2f} | {added} | {own} | {rss} | {cpu} | {r['verified']} | {ratio('a')} | {ratio('d')} | {ratio('e')} |")
print("\nmsg/s over the shell's clock instead (the processes' start and exit and the wait for the sink included): "
      + ", ".join(f"({k}) {rows[k]['outer_rate']:.0f}" for k in "abcgdest" if k in rows and "outer_rate" in rows[k]))
for k, what in (("s", "signed and sealed (s)"), ("t", "sealed only (t)")):
    if k in rows and "b" in rows and rows[k]["rate"] > 0:
        b, s = rows["b"], rows[k]
        print(f"\n{what} vs signed-only (b): {b['rate'] / s['rate']:.2f}x the time per message, "
              f"{s['cpu_us'] / max(1, b['cpu_us']):.2f}x the CPU per message")
PY
