// swift-tools-version: 6.1
// Signet: a DKIM signing SMTP relay. Module map and dependency direction: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "Signet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "signet", targets: ["signet"]),
        .executable(name: "signet-load", targets: ["signet-load"]),
        .library(name: "DKIM", targets: ["DKIM"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // PKCS#11 header only (p11-kit's pkcs11.h); the module itself is dlopen()ed from the configured path.
        .systemLibrary(
            name: "CPKCS11",
            providers: [.apt(["libp11-kit-dev"])]
        ),
        // The relay's allocator (docs/performance.md measures it against glibc malloc).
        .systemLibrary(
            name: "CJemalloc",
            pkgConfig: "jemalloc",
            providers: [.apt(["libjemalloc-dev"])]
        ),
        .systemLibrary(
            name: "CCrypt",
            pkgConfig: "libxcrypt",
            providers: [.apt(["libcrypt-dev"])]
        ),
        .target(
            name: "MailMessage",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "DKIMCore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "Keys",
            dependencies: ["COpenSSL", "CPKCS11"]
        ),
        .target(name: "SRS", dependencies: ["Keys"]),
        // Verification: DNS (static zone, libunbound), DKIM results, SPF, DMARC, Authentication-Results.
        .systemLibrary(name: "CUnbound", providers: [.apt(["libunbound-dev"])]),
        .target(
            name: "MailAuth",
            dependencies: [
                "CUnbound", "DKIM", "DKIMCore", "Keys", "MailMessage", .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // ARC chain validation and sealing (RFC 8617) on top of DKIM's hashing and MailAuth's DNS.
        .target(
            name: "ARC",
            dependencies: [
                "DKIM", "DKIMCore", "Keys", "MailAuth", "MailMessage", .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "DKIM",
            dependencies: ["DKIMCore", "Keys", "MailMessage", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .target(
            name: "SignetCLI",
            dependencies: [
                "ARC", "MailAuth", "DKIM", "DKIMCore", "Keys", "MailMessage", "Observability", "Relay", "SRS",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(name: "SMTPProtocol", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "Relay",
            dependencies: [
                "ARC", "CCrypt", "DKIM", "DKIMCore", "Keys", "MailAuth", "MailMessage", "SMTPProtocol", "SRS",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Metrics export, health endpoints and log formats; knows nothing of SMTP (SignetCLI wires it to Relay).
        .target(
            name: "Observability",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The benchmark's SMTP load generator and sink; only SMTP framing is shared with the relay.
        .target(
            name: "LoadGenerator",
            dependencies: [
                "SMTPProtocol",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "signet-load",
            dependencies: ["LoadGenerator", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "signet",
            // SIGNET_ALLOCATOR=system builds signet with glibc malloc: the benchmark's comparison, and the sanitizer
            // builds (scripts/test-sanitize.sh), whose runtimes replace malloc themselves.
            dependencies: (Context.environment["SIGNET_ALLOCATOR"] == "system" ? [] : ["CJemalloc"]) + [
                "SignetCLI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(
            name: "MailMessageTests",
            dependencies: ["MailMessage", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "DKIMCoreTests",
            dependencies: ["DKIMCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(name: "KeysTests", dependencies: ["Keys"]),
        .testTarget(name: "SRSTests", dependencies: ["SRS"]),
        .testTarget(
            name: "MailAuthTests",
            dependencies: [
                "MailAuth", "DKIM", "DKIMCore", "Keys", "MailMessage", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "ARCTests",
            dependencies: [
                "ARC", "DKIM", "DKIMCore", "Keys", "MailAuth", "MailMessage",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "DKIMTests",
            dependencies: ["DKIM", "DKIMCore", "Keys", "MailMessage", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "SignetCLITests",
            dependencies: ["SignetCLI", "DKIM", "Keys", "MailAuth", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "SMTPProtocolTests",
            dependencies: [
                "SMTPProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RelayTests",
            dependencies: [
                "Relay", "SMTPProtocol", "ARC", "DKIM", "DKIMCore", "Keys", "MailAuth", "MailMessage", "SRS",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "ObservabilityTests",
            dependencies: [
                "Observability",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "InteropTests",
            dependencies: [
                "DKIM", "DKIMCore", "Keys", "MailAuth", "MailMessage", "SRS",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)

// Every target: Swift 6 mode plus the upcoming features the anchors use.
for target in package.targets where target.type != .system {
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    target.swiftSettings = settings
}

// Benchmarks live in the root manifest but only enter resolution when asked for,
// so `make build`/`make test` never compile package-benchmark.
if Context.environment["SIGNET_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "DKIMBenchmarks",
            dependencies: [
                "DKIM", "DKIMCore", "Keys", "MailMessage",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/DKIMBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
    package.targets.append(
        .executableTarget(
            name: "SRSBenchmarks",
            dependencies: ["SRS", "Keys", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/SRSBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

// Signatures per second through each signing backend (a plain executable: throughput over threads and a child
// process, not one call's latency). With SIGNET_BENCHMARKS, or alone with SIGNET_SIGNER_BENCHMARK, which needs
// no package-benchmark.
if Context.environment["SIGNET_BENCHMARKS"] != nil || Context.environment["SIGNET_SIGNER_BENCHMARK"] != nil {
    package.targets.append(
        .executableTarget(
            name: "SignerBenchmarks",
            dependencies: [
                "Keys", "Relay", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/SignerBenchmarks"
        )
    )
}

// DKIM verifications per second (raw public-key verify and whole-message verify) next to `openssl speed`; a plain
// executable like SignerBenchmarks. With SIGNET_BENCHMARKS, or alone with SIGNET_VERIFY_BENCHMARK.
if Context.environment["SIGNET_BENCHMARKS"] != nil || Context.environment["SIGNET_VERIFY_BENCHMARK"] != nil {
    package.targets.append(
        .executableTarget(
            name: "VerifyBenchmarks",
            dependencies: ["DKIM", "DKIMCore", "Keys", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/VerifyBenchmarks"
        )
    )
}

// libFuzzer harnesses for every parser that sees untrusted bytes (`make fuzz`, `scripts/fuzz.sh`). Only with
// SIGNET_FUZZ, built with -sanitize=fuzzer,address in their own scratch path.
if Context.environment["SIGNET_FUZZ"] != nil {
    package.targets.append(
        .target(
            name: "FuzzSupport",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/FuzzSupport",
            swiftSettings: [.enableExperimentalFeature("Extern")]
        )
    )
    let fuzzers: [(String, [Target.Dependency])] = [
        ("SMTPFramerFuzzer", ["SMTPProtocol"]),
        ("SMTPReplyFuzzer", ["SMTPProtocol"]),
        ("DotStuffingFuzzer", ["SMTPProtocol"]),
        ("MessageHeaderFuzzer", ["MailMessage"]),
        ("DKIMTagFuzzer", ["DKIMCore"]),
        ("BodyHashFuzzer", ["DKIM", "DKIMCore"]),
        ("SRSFuzzer", ["SRS"]),
        ("AuthResultsFuzzer", ["MailAuth"]),
        ("MailAuthRecordFuzzer", ["MailAuth"]),
        ("ARCHeaderFuzzer", ["ARC", "MailMessage"]),
    ]
    for (name, dependencies) in fuzzers {
        package.targets.append(
            .executableTarget(
                name: name,
                dependencies: dependencies + ["FuzzSupport", .product(name: "NIOCore", package: "swift-nio")],
                path: "Fuzz/\(name)"
            )
        )
    }
}
