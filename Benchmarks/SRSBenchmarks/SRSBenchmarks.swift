import Benchmark
import Keys
import SRS

/// A fixed clock so every iteration writes the same timestamp.
private let now = 1_700_000_000

private let scheme = try! SRSScheme(secrets: ["bench-secret-1"])
/// Three secrets with the signing one last on verify: the worst case of a rotation (three HMACs per reverse).
private let rotated = try! SRSScheme(secrets: ["bench-secret-new", "bench-secret-mid", "bench-secret-1"])
private let sender = "Alice.Smith+list@orig.example.org"
private let srs0 = try! scheme.forward(sender, domain: "fwd.example", now: now)
/// A first hop's SRS0 (short enough that our SRS1 of it stays within 64 octets).
private let srs1Input = try! SRSScheme(secrets: ["bench-first-hop"]).forward("alice@orig.example", domain: "first.example", now: now)
private let hmacKey = HMACSHA1Key(secret: "bench-secret-1")
private let hmacInput = Array("ggorig.example.orgalice.smith+list".utf8)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration.maxDuration = .seconds(3)
    Benchmark.defaultConfiguration.maxIterations = 1_000_000
    Benchmark.defaultConfiguration.metrics = [.wallClock, .throughput, .mallocCountTotal]
    Benchmark.defaultConfiguration.scalingFactor = .kilo

    Benchmark("SRS forward+reverse pair (SRS0, one secret)") { benchmark in
        for _ in benchmark.scaledIterations {
            let address = try scheme.forward(sender, domain: "fwd.example", now: now)
            blackHole(try scheme.reverse(address, now: now))
        }
    }

    Benchmark("SRS forward (SRS0)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try scheme.forward(sender, domain: "fwd.example", now: now))
        }
    }

    Benchmark("SRS reverse (SRS0, one secret)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try scheme.reverse(srs0, now: now))
        }
    }

    Benchmark("SRS reverse (SRS0, third of three secrets)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try rotated.reverse(srs0, now: now))
        }
    }

    Benchmark("SRS forward+reverse pair (SRS1 re-forwarding)") { benchmark in
        for _ in benchmark.scaledIterations {
            let address = try scheme.forward(srs1Input, domain: "fwd.example", now: now)
            blackHole(try scheme.reverse(address, now: now))
        }
    }

    Benchmark("HMAC-SHA1 of 34 bytes (Keys.HMACSHA1Key)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(hmacKey.code(hmacInput))
        }
    }
}
