#!/usr/bin/env bash
# `make test-sanitize`: the test suite under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer,
# each in its own scratch path (.build-asan, .build-ubsan, .build-tsan). SANITIZERS="address thread" picks some;
# FILTER (a swift test --filter regex) narrows the tests, by default the in-process suites (the interop suites'
# child processes are separate binaries, not instrumented by this build).
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=${SANITIZERS:-"address undefined thread"}
filter=${FILTER:-"MailMessageTests|DKIMCoreTests|DKIMTests|KeysTests|SRSTests|SMTPProtocolTests|MailAuthTests|ARCTests|RelayTests|ObservabilityTests|SignetCLITests"}
failed=()
for sanitizer in $sanitizers; do
    case $sanitizer in
        address) scratch=.build-asan ;;
        undefined) scratch=.build-ubsan ;;
        thread) scratch=.build-tsan ;;
        *) echo "unknown sanitizer $sanitizer (address, undefined, thread)" >&2; exit 2 ;;
    esac
    echo "== $sanitizer"
    # Swift's backtracer and the sanitizer runtimes both want the crash; the sanitizer's report is the one needed.
    # LeakSanitizer is off: it reports Swift's lazily created globals and Foundation's Process bookkeeping, which
    # live for the whole process, as leaks (first run: 77 such reports, every test passing).
    if ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 swift test --scratch-path "$scratch" --sanitize="$sanitizer" --filter "$filter"; then
        failed+=("$sanitizer")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-sanitize: failed under: ${failed[*]}" >&2
    exit 1
fi
echo "test-sanitize: passed under: $sanitizers"
