#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer harnesses in Fuzz/ (SwiftPM targets that exist only with SIGNET_FUZZ=1) with
# AddressSanitizer in their own scratch path, then runs each for SECONDS (default 60; `make fuzz-smoke`: 10) over
# its seed corpus in Fuzz/Corpus plus what earlier runs found (.build-fuzz/corpus). A crash, a sanitizer report or
# a failed property (chunked vs whole, round trips) stops that fuzzer; the input is kept under
# .build-fuzz/artifacts and the script exits 1 after running the others.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
scratch=.build-fuzz
fuzzers=(
    SMTPFramerFuzzer SMTPReplyFuzzer DotStuffingFuzzer MessageHeaderFuzzer DKIMTagFuzzer BodyHashFuzzer SRSFuzzer
    AuthResultsFuzzer MailAuthRecordFuzzer ARCHeaderFuzzer
)
# gold stops with an internal error on the sanitizer runtime's symbols; the toolchain's lld links them.
flags=(--scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld)
for fuzzer in "${fuzzers[@]}"; do
    SIGNET_FUZZ=1 swift build "${flags[@]}" --product "$fuzzer"
done
bin=$(SIGNET_FUZZ=1 swift build "${flags[@]}" --show-bin-path)
failed=()
for fuzzer in "${fuzzers[@]}"; do
    corpus=$scratch/corpus/$fuzzer
    artifacts=$scratch/artifacts/$fuzzer
    mkdir -p "$corpus" "$artifacts"
    echo "== $fuzzer: $seconds s"
    # Swift's own crash backtracer waits on the sanitizer's; libFuzzer prints the report and keeps the input.
    if ! SWIFT_BACKTRACE=enable=no "$bin/$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "Fuzz/Corpus/$fuzzer" 2>"$scratch/$fuzzer.log"; then
        tail -40 "$scratch/$fuzzer.log"
        failed+=("$fuzzer")
    else
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$scratch/$fuzzer.log" | tr '\n' ' '
        echo
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]} (inputs in $scratch/artifacts/)" >&2
    exit 1
fi
echo "fuzz: ${#fuzzers[@]} fuzzers ran $seconds s each without a finding"
