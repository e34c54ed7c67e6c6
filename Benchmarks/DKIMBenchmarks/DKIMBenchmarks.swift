import Benchmark
import DKIM
import DKIMCore
import Keys
import MailMessage
import NIOCore

/// A null sink: measures canonicalization alone.
private struct DiscardingSink: CanonicalizationSink {
    var count = 0
    mutating func write(_ bytes: UnsafeRawBufferPointer) { count &+= bytes.count }
}

/// 1 MiB of ordinary mail text: 76-column lines, single spaces, the odd double space,
/// trailing blank, tab and empty line, as real bodies have.
private let body: ByteBuffer = {
    let lines = [
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n",
        "incididunt ut labore et dolore magna aliqua.  Ut enim ad minim veniam, quis \r\n",
        "nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.\r\n",
        "\r\n",
        "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore\r\n",
        "eu fugiat nulla pariatur.\tExcepteur sint occaecat cupidatat non proident, sunt\r\n",
    ]
    var buffer = ByteBuffer()
    var index = 0
    while buffer.readableBytes < 1 << 20 {
        buffer.writeString(lines[index % lines.count])
        index += 1
    }
    return buffer.getSlice(at: 0, length: 1 << 20)!
}()

/// The body as a relay sees it: 16 KiB chunks (slices, no copies).
private let chunks: [ByteBuffer] = stride(from: 0, to: body.readableBytes, by: 16_384).map {
    body.getSlice(at: $0, length: min(16_384, body.readableBytes - $0))!
}

private let header = try! MessageHeader.parse(
    ByteBuffer(
        string: """
            Received: from client.example.net (client.example.net [192.0.2.10])\r
            \tby relay.example.com with ESMTPS id 4Xyz; Tue, 24 Nov 2026 09:00:00 +0000\r
            From: "Alice Example" <alice@example.com>\r
            To: Bob <bob@example.org>, carol@example.org\r
            Cc: dave@example.net\r
            Subject: Quarterly report for the board, with the figures we discussed\r
            Date: Tue, 24 Nov 2026 09:00:00 +0000\r
            Message-ID: <20261124090000.12345@example.com>\r
            MIME-Version: 1.0\r
            Content-Type: text/plain; charset=utf-8\r
            Content-Transfer-Encoding: 8bit\r
            List-Unsubscribe: <mailto:leave@example.com>\r

            """
    )
)

private let digest = SHA256.hash(Array("benchmark digest".utf8))

/// Bytes per second, in MB/s (10^6 bytes), measured per iteration: package-benchmark's own throughput counts
/// iterations, which for the 1 MiB cases is MiB/s rounded to an integer.
private let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)

/// Runs `body` once per scaled iteration and records its speed over `bytes` bytes as `megabytesPerSecond`.
@inline(__always)
private func measuringBytes(_ benchmark: Benchmark, _ bytes: Int, _ body: () -> Void) {
    let clock = ContinuousClock()
    for _ in benchmark.scaledIterations {
        let elapsed = clock.measure(body)
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        if nanoseconds > 0 { benchmark.measurement(megabytesPerSecond, bytes * 1_000 / Int(nanoseconds)) }
    }
}

let benchmarks: @Sendable () -> Void = {
    let megabytes = [
        megabytesPerSecond, BenchmarkMetric.throughput, .wallClock, .cpuTotal, .mallocCountTotal, .instructions,
    ]
    let mib = Benchmark.Configuration(metrics: megabytes, scalingFactor: .one, maxDuration: .seconds(3), maxIterations: 2_000)

    // What the harness itself allocates per measured iteration, to subtract from the counts below.
    Benchmark("empty iteration (harness floor)", configuration: mib) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(benchmark) }
    }

    // The reference point for the canonicalize+hash aim: OpenSSL's SHA-256 (our Keys.SHA256) over the same bytes.
    Benchmark("SHA-256 (OpenSSL) 1 MiB", configuration: mib) { benchmark in
        let hasher = SHA256()
        measuringBytes(benchmark, body.readableBytes) {
            hasher.reset()
            for chunk in chunks {
                chunk.withUnsafeReadableBytes { hasher.update($0) }
            }
            blackHole(hasher.finalize())
        }
    }

    for canonicalization in Canonicalization.allCases {
        Benchmark("\(canonicalization) body canonicalization + SHA-256 1 MiB", configuration: mib) { benchmark in
            measuringBytes(benchmark, body.readableBytes) {
                var hasher = BodyHasher(canonicalization)
                for chunk in chunks { hasher.update(chunk) }
                blackHole(hasher.finalize())
            }
        }
        Benchmark("\(canonicalization) body canonicalization only 1 MiB", configuration: mib) { benchmark in
            measuringBytes(benchmark, body.readableBytes) {
                var canonicalizer = BodyCanonicalizer(canonicalization)
                var sink = DiscardingSink()
                for chunk in chunks { canonicalizer.update(chunk, into: &sink) }
                canonicalizer.finish(into: &sink)
                blackHole(sink.count)
            }
        }
    }

    let perOperation = Benchmark.Configuration(
        metrics: [.throughput, .wallClock, .cpuTotal, .mallocCountTotal],
        scalingFactor: .one,
        maxDuration: .seconds(3),
        maxIterations: 100_000
    )
    let signer = try! DKIMSigner(domain: "example.com", selector: "bench", key: PrivateKey.generateEd25519())
    let bodyHash: BodyHasher.Result = {
        var hasher = BodyHasher(.relaxed)
        for chunk in chunks { hasher.update(chunk) }
        return hasher.finalize()
    }()
    // Header canonicalization + hash alone: the fields `h=` selects (10 of the 12) and the signature field.
    let names = signer.headerList(for: header)
    let signedFields = HeaderHasher.select(names, from: header)
    let signatureField = ByteBuffer(
        string: "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.com; s=bench;\r\n"
            + "\tt=1800000000; h=" + names.joined(separator: ":") + ";\r\n"
            + "\tbh=" + Base64.encode(bodyHash.hash) + ";\r\n\tb="
    )
    for canonicalization in Canonicalization.allCases {
        Benchmark("\(canonicalization) header canonicalization + SHA-256 (\(signedFields.compactMap { $0 }.count) fields)", configuration: perOperation) {
            benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(
                    HeaderHasher.digest(
                        signedFields: signedFields, signatureField: signatureField, canonicalization: canonicalization)
                )
            }
        }
    }
    Benchmark("header selection + relaxed canonicalization + SHA-256 (12 fields)", configuration: perOperation) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(signer.prepare(header: header, bodyHash: bodyHash, now: 1_800_000_000).digest)
        }
    }

    let rsa = try! PrivateKey.generateRSA(bits: 2048)
    Benchmark("RSA-2048 signature", configuration: perOperation) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try rsa.signature(forSHA256Digest: digest))
        }
    }
    let ed = try! PrivateKey.generateEd25519()
    Benchmark("Ed25519 signature", configuration: perOperation) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try ed.signature(forSHA256Digest: digest))
        }
    }
}
