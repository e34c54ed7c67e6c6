#!/usr/bin/env bash
# `make bench`: Signet's micro benchmarks (package-benchmark, release build) and, in the same run,
# this machine's `openssl speed` figures they are compared with, then the end-to-end comparison
# (scripts/bench-e2e.sh; BENCH_E2E=0 skips it). The machines are shared and noisy:
# compare the ratios of one run, not absolute numbers across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-.build-bench/results}
mkdir -p "$out"
seconds=${BENCH_OPENSSL_SECONDS:-3}

echo "== openssl speed (single core), $seconds s per figure"
openssl speed -seconds "$seconds" rsa2048 ed25519 2>/dev/null | grep -E '^(rsa 2048|.*Ed25519)|sign ' | tee "$out/openssl-speed-sign.txt"
openssl speed -seconds "$seconds" -evp sha256 2>/dev/null | grep -E '^(type|sha256)' | tee "$out/openssl-speed-sha256.txt"
echo "== openssl speed -multi 2"
openssl speed -multi 2 -seconds "$seconds" rsa2048 2>/dev/null | grep -E '^(rsa 2048|\+F)' | tail -2 | tee "$out/openssl-speed-rsa-multi2.txt"

echo "== package-benchmark (release)"
# A separate scratch path: the benchmark dependency only enters the manifest with SIGNET_BENCHMARKS set.
SIGNET_BENCHMARKS=1 swift package --scratch-path .build-bench --disable-sandbox benchmark \
    --target DKIMBenchmarks --format markdown --no-progress ${BENCH_ARGS:-} | tee "$out/DKIMBenchmarks.md"
echo "== openssl speed -hmac sha1 (SRS hashes), $seconds s per block size"
openssl speed -seconds "$seconds" -hmac sha1 2>/dev/null | grep -E '^(type|hmac)' | tee "$out/openssl-speed-hmac-sha1.txt"
SIGNET_BENCHMARKS=1 swift package --scratch-path .build-bench --disable-sandbox benchmark \
    --target SRSBenchmarks --format markdown --no-progress ${BENCH_ARGS:-} | tee "$out/SRSBenchmarks.md"
echo "== signing backends: signatures/s in-process vs signer agent, next to openssl speed -multi 2 above"
SIGNET_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product signet >/dev/null
SIGNET_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product SignerBenchmarks >/dev/null
for algorithm in rsa ed25519; do
    .build-bench/release/SignerBenchmarks .build-bench/release/signet "$seconds" "$algorithm"
done | tee "$out/SignerBenchmarks.txt"

echo "== DKIM verification: verifications/s on one core (raw public-key verify, whole 4 KiB message) next to openssl speed"
SIGNET_BENCHMARKS=1 swift build -c release --scratch-path .build-bench --product VerifyBenchmarks >/dev/null
.build-bench/release/VerifyBenchmarks "$seconds" | tee "$out/VerifyBenchmarks.txt"

if [ "${BENCH_E2E:-1}" != 0 ]; then
    echo "== end to end: signet-load → (Signet | Postfix + OpenDKIM | Postfix + rspamd) → signet-load sink"
    scripts/bench-e2e.sh
fi
echo "results in $out"
