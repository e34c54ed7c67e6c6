#!/usr/bin/env bash
# `make test-sanitize`: the test suite under AddressSanitizer, UndefinedBehaviorSanitizer and ThreadSanitizer,
# each in its own scratch path (.build-asan, .build-ubsan, .build-tsan). SANITIZERS="address thread" picks some;
# FILTER (a swift test --filter regex) narrows the tests, by default the in-process suites. The interop suites are
# left out: they need the peers `make test` installs and took over 12 minutes under TSan. The signet they start is
# the one built here, so FILTER=InteropTests does run the relay under the sanitizer (docs/reliability.md: a TSan
# run, and the two tests that cannot run under TSan).
#
# UBSan: swiftc on Linux refuses -sanitize=undefined ("unsupported option ... for target x86_64-unknown-linux-gnu"),
# and Swift code needs none: debug builds trap on overflow, out-of-range indexing and bad unwraps by themselves.
# What UBSan adds is the C and C++ the package compiles (libyaml in Yams, BoringSSL in swift-nio-ssl, llhttp and
# the NIO shims), so it goes to clang through -Xcc/-Xcxx, and the test binary links the UBSan runtime through
# clang (-Xclang-linker). vptr is off: it needs the C++ UBSan runtime and BoringSSL is built without RTTI.
set -euo pipefail
cd "$(dirname "$0")/.."
# The sanitizers bring their own malloc; a signet linked with jemalloc as well frees through one what the other
# allocated ("attempting free on address which was not malloc()-ed" at start-up under ASan).
export SIGNET_ALLOCATOR=system
sanitizers=${SANITIZERS:-"address undefined thread"}
filter=${FILTER:-"MailMessageTests|DKIMCoreTests|DKIMTests|KeysTests|SRSTests|SMTPProtocolTests|MailAuthTests|ARCTests|RelayTests|ObservabilityTests|SignetCLITests"}
failed=()
for sanitizer in $sanitizers; do
    case $sanitizer in
        address) scratch=.build-asan flags=(--sanitize=address) ;;
        undefined)
            scratch=.build-ubsan
            flags=(-Xcc -fsanitize=undefined -Xcc -fno-sanitize=vptr -Xcxx -fsanitize=undefined -Xcxx -fno-sanitize=vptr
                -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined)
            ;;
        thread) scratch=.build-tsan flags=(--sanitize=thread) ;;
        *) echo "unknown sanitizer $sanitizer (address, undefined, thread)" >&2; exit 2 ;;
    esac
    echo "== $sanitizer"
    # Swift's backtracer and the sanitizer runtimes both want the crash; the sanitizer's report is the one needed.
    # LeakSanitizer is off: it reports Swift's lazily created globals and Foundation's Process bookkeeping, which
    # live for the whole process, as leaks (first run: 77 such reports, every test passing).
    # UBSan would print and carry on; halt_on_error makes a report fail the run. TSan fails the run (exit code 66)
    # when it reported anything; scripts/tsan.supp lists the understood false reports.
    if ! SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        TSAN_OPTIONS="suppressions=$PWD/scripts/tsan.supp" \
        swift test --scratch-path "$scratch" "${flags[@]}" --filter "$filter"; then
        failed+=("$sanitizer")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "test-sanitize: failed under: ${failed[*]}" >&2
    exit 1
fi
echo "test-sanitize: passed under: $sanitizers"
