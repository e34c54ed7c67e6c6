import DKIMCore
import Keys
import NIOCore
import Testing

@testable import DKIM

/// The hash of a body must not depend on how it was cut into chunks (issue 2's property test).
@Suite("Incremental body hashing")
struct BodyHasherTests {
    static let pieces: [String] = [
        "word", "other", " ", "  ", "\t", " \t ", "\r\n", "\r\n\r\n", "\r\n  \r\n", "ü", "日本", ".", "\r\n\r\n\r\n", "x",
    ]

    static func randomBody(_ rng: inout SplitMix64) -> [UInt8] {
        let count = Int(rng.next() % 60)
        var text = ""
        for _ in 0..<count { text += pieces[Int(rng.next() % UInt64(pieces.count))] }
        return Array(text.utf8)
    }

    static func hash(_ body: [UInt8], _ canonicalization: Canonicalization, chunks: [Int]) -> BodyHasher.Result {
        var hasher = BodyHasher(canonicalization)
        var offset = 0
        for size in chunks where offset < body.count {
            let end = min(body.count, offset + size)
            hasher.update(ByteBuffer(bytes: body[offset..<end]))
            offset = end
        }
        if offset < body.count { hasher.update(ByteBuffer(bytes: body[offset...])) }
        return hasher.finalize()
    }

    @Test("random chunkings give the one-shot hash", arguments: Canonicalization.allCases)
    func randomChunkings(canonicalization: Canonicalization) {
        var rng = SplitMix64(seed: canonicalization == .relaxed ? 0xD1C1 : 0x5EED)
        for _ in 0..<400 {
            let body = Self.randomBody(&rng)
            let whole = SHA256.hash(BodyCanonicalizer.canonicalizeWhole(body, canonicalization))
            let oneShot = Self.hash(body, canonicalization, chunks: [body.count + 1])
            #expect(oneShot.hash == whole)
            var chunks: [Int] = []
            var covered = 0
            while covered < body.count {
                let size = 1 + Int(rng.next() % 7)
                chunks.append(size)
                covered += size
            }
            let chunked = Self.hash(body, canonicalization, chunks: chunks)
            #expect(chunked == oneShot, "body \(Array(body)) chunks \(chunks)")
            let bytewise = Self.hash(body, canonicalization, chunks: Array(repeating: 1, count: body.count))
            #expect(bytewise == oneShot)
        }
    }

    /// Bodies larger than the sink's buffer, in chunks small and large, so writes fill it exactly, overflow it,
    /// and pass whole blocks straight to OpenSSL.
    @Test("bodies larger than the hash buffer", arguments: Canonicalization.allCases)
    func largeBodies(canonicalization: Canonicalization) {
        var rng = SplitMix64(seed: canonicalization == .relaxed ? 0xB16 : 0xB17)
        let line = Array("The quick brown fox jumps over the lazy dog, again and again and again.\r\n".utf8)
        for round in 0..<40 {
            var body: [UInt8] = []
            let target = Int(rng.next() % 40_000)
            while body.count < target {
                if rng.next() % 4 == 0 {
                    body += line
                } else {
                    body += Array(Self.pieces[Int(rng.next() % UInt64(Self.pieces.count))].utf8)
                }
            }
            let whole = SHA256.hash(BodyCanonicalizer.canonicalizeWhole(body, canonicalization))
            let sizes: [Int] = [1, 63, 64, 65, 4095, 4096, 4097, 8192, 20_000]
            var chunks: [Int] = []
            var covered = 0
            while covered < body.count {
                let size = sizes[Int(rng.next() % UInt64(sizes.count))]
                chunks.append(size)
                covered += size
            }
            let result = Self.hash(body, canonicalization, chunks: chunks)
            #expect(result.hash == whole, "round \(round), \(body.count) bytes, chunks \(chunks)")
            #expect(Self.hash(body, canonicalization, chunks: [body.count + 1]).hash == whole)
        }
    }

    /// The sink buffers short writes and passes long ones to OpenSSL directly: sequences of writes just below, at
    /// and above the direct threshold and the buffer size must hash as their concatenation.
    @Test("hash sink writes around its buffer and direct-write thresholds")
    func sinkThresholds() {
        var rng = SplitMix64(seed: 0x51_4B)
        let sizes = [
            0, 1, 63, 64, 65, SHA256Sink.directThreshold - 1, SHA256Sink.directThreshold,
            SHA256Sink.directThreshold + 1, SHA256Sink.bufferCapacity - 1, SHA256Sink.bufferCapacity,
            SHA256Sink.bufferCapacity + 1, 3 * SHA256Sink.bufferCapacity + 7,
        ]
        let source = (0..<(4 * SHA256Sink.bufferCapacity)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        for round in 0..<200 {
            var sink = SHA256Sink()
            var written: [UInt8] = []
            for _ in 0..<(1 + Int(rng.next() % 12)) {
                let size = sizes[Int(rng.next() % UInt64(sizes.count))]
                let start = Int(rng.next() % UInt64(source.count - size + 1))
                source[start..<start + size].withUnsafeBytes { sink.write($0) }
                written += source[start..<start + size]
            }
            #expect(sink.finalize() == SHA256.hash(written), "round \(round)")
        }
    }

    @Test("known body hashes (RFC 6376 §3.4.3/§3.4.4 empty-body rules)")
    func emptyBodies() {
        // Simple: an empty body is one CRLF. Relaxed: an empty body hashes as nothing at all.
        #expect(Base64.encode(Self.hash([], .simple, chunks: [1]).hash) == "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=")
        #expect(Base64.encode(Self.hash([], .relaxed, chunks: [1]).hash) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(Self.hash(Array("\r\n\r\n".utf8), .simple, chunks: [1]).hash == Self.hash([], .simple, chunks: [1]).hash)
    }

    @Test("dual signing shares one pass per body canonicalization")
    func hasherSetDeduplicates() {
        let keys = [
            BodyHasher.Key(canonicalization: .relaxed), BodyHasher.Key(canonicalization: .relaxed),
            BodyHasher.Key(canonicalization: .simple),
        ]
        var set = BodyHasherSet(keys: keys)
        set.update(ByteBuffer(string: "a  b \r\n\r\n"))
        let results = set.finalize()
        #expect(results.count == 2)
        #expect(results[BodyHasher.Key(canonicalization: .relaxed)]?.hash == SHA256.hash(Array("a b\r\n".utf8)))
        #expect(results[BodyHasher.Key(canonicalization: .simple)]?.hash == SHA256.hash(Array("a  b \r\n".utf8)))
    }
}
