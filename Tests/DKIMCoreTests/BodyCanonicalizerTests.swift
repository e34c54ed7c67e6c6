import DKIMCore
import NIOCore
import Testing

@Suite("Body canonicalization")
struct BodyCanonicalizerTests {
    static func stream(_ body: [UInt8], _ algorithm: Canonicalization, chunks: [Int], limit: Int? = nil) -> ([UInt8], Int)
    {
        var canonicalizer = BodyCanonicalizer(algorithm, lengthLimit: limit)
        var sink = ByteArraySink()
        var offset = 0
        var sizes = chunks.makeIterator()
        while offset < body.count {
            let size = min(max(1, sizes.next() ?? body.count), body.count - offset)
            canonicalizer.update(ByteBuffer(bytes: body[offset..<offset + size]), into: &sink)
            offset += size
        }
        canonicalizer.finish(into: &sink)
        return (sink.bytes, canonicalizer.canonicalLength)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    // RFC 6376 §3.4.5.
    @Test func rfcExample() {
        let body = Self.bytes(" C \r\nD \t E\r\n\r\n\r\n")
        #expect(Self.stream(body, .relaxed, chunks: []).0 == Self.bytes(" C\r\nD E\r\n"))
        #expect(Self.stream(body, .simple, chunks: []).0 == Self.bytes(" C \r\nD \t E\r\n"))
    }

    @Test(arguments: [
        ("", "\r\n", ""),
        ("\r\n", "\r\n", ""),
        ("\r\n\r\n\r\n", "\r\n", ""),
        (" \r\n\t\r\n", " \r\n\t\r\n", ""),
        ("abc", "abc\r\n", "abc\r\n"),
        ("abc  ", "abc  \r\n", "abc\r\n"),
        ("a\r\n\r\nb\r\n\r\n", "a\r\n\r\nb\r\n", "a\r\n\r\nb\r\n"),
        ("a \r\n \r\nb", "a \r\n \r\nb\r\n", "a\r\n\r\nb\r\n"),
        ("a\rb\nc\r\n", "a\rb\nc\r\n", "a\rb\nc\r\n"),
        ("a \r", "a \r\r\n", "a \r\r\n"),
        ("\t x\t\ty \r\n", "\t x\t\ty \r\n", " x y\r\n"),
    ])
    func edgeCases(body: String, simple: String, relaxed: String) {
        for chunk in [1, 2, 3, 1000] {
            #expect(Self.stream(Self.bytes(body), .simple, chunks: [chunk]).0 == Self.bytes(simple), "chunk \(chunk)")
            #expect(Self.stream(Self.bytes(body), .relaxed, chunks: [chunk]).0 == Self.bytes(relaxed), "chunk \(chunk)")
        }
        #expect(BodyCanonicalizer.canonicalizeWhole(Self.bytes(body), .simple) == Self.bytes(simple))
        #expect(BodyCanonicalizer.canonicalizeWhole(Self.bytes(body), .relaxed) == Self.bytes(relaxed))
    }

    /// Bodies built from the bytes that matter (CR, LF, SP, TAB) cut at random places, against the reference.
    @Test(arguments: Canonicalization.allCases)
    func randomChunkingsMatchReference(algorithm: Canonicalization) {
        var random = SplitMix64(seed: 0x5167_6E65_7421 &+ UInt64(algorithm == .simple ? 1 : 2))
        let alphabet: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x20, 0x20, 0x09, 0x61, 0x62, 0xC3, 0xA9, 0x01]
        for round in 0..<3000 {
            let length = Int(random.next() % 120)
            let body = (0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            let expected = BodyCanonicalizer.canonicalizeWhole(body, algorithm)
            var chunks: [Int] = []
            for _ in 0..<8 { chunks.append(1 + Int(random.next() % 9)) }
            let (streamed, length2) = Self.stream(body, algorithm, chunks: chunks)
            #expect(streamed == expected, "round \(round): \(body) chunks \(chunks)")
            #expect(length2 == expected.count)
        }
    }

    /// Long bodies of mostly ordinary text, cut into chunks of up to a few hundred bytes, so the sixteen-byte
    /// scan meets every special byte at every lane and across chunk ends.
    @Test(arguments: Canonicalization.allCases)
    func longBodiesLargeChunksMatchReference(algorithm: Canonicalization) {
        var random = SplitMix64(seed: 0x16_B17E + UInt64(algorithm == .simple ? 1 : 2))
        let pieces: [[UInt8]] = [
            "Lorem", "ipsum", "dolor-sit-amet,", "consectetur", "x", "\u{E9}t\u{E9}", " ", " ", " ", "  ", "\t", " \t",
            "\r\n", "\r\n", "\r\n", "\r\n\r\n", " \r\n", "\r\n ", "\r\n\t", "\r", "\n", "\r\r\n", "\r\n\r",
        ].map { Array($0.utf8) }
        for round in 0..<600 {
            var body: [UInt8] = []
            let target = Int(random.next() % 3000)
            while body.count < target { body += pieces[Int(random.next() % UInt64(pieces.count))] }
            let expected = BodyCanonicalizer.canonicalizeWhole(body, algorithm)
            let chunks = (0..<64).map { _ in 1 + Int(random.next() % 400) }
            let (streamed, length) = Self.stream(body, algorithm, chunks: chunks)
            #expect(streamed == expected, "round \(round): \(body) chunks \(chunks)")
            #expect(length == expected.count)
        }
    }

    /// Relaxed output is gathered in a 4 KiB stack buffer per update: bodies many times that size in one chunk or
    /// a few large ones, with the bytes that make the vector scan stop for nothing (SP before LF or a control byte)
    /// and runs of empty lines longer than the buffer, against the reference, with and without `l=`.
    @Test(arguments: Canonicalization.allCases)
    func bodiesLargerThanTheStagingBuffer(algorithm: Canonicalization) {
        var random = SplitMix64(seed: 0x57A6 + UInt64(algorithm == .simple ? 1 : 2))
        let pieces: [[UInt8]] = [
            "The quick brown fox jumps over the lazy dog, again and again and again.\r\n", "word", " ", "  ", "\t",
            "\r\n", "\r\n\r\n", " \r\n", "\r\n ", "\r", "\n", " \n", " \u{01}", "\u{0B} ", "\u{7F}", "\u{E9}",
        ].map { Array($0.utf8) }
        let emptyLines = Array(String(repeating: "\r\n", count: 3000).utf8)
        for round in 0..<60 {
            var body: [UInt8] = []
            let target = Int(random.next() % 30_000)
            while body.count < target {
                let pick = random.next() % 200
                if pick == 0 {
                    body += emptyLines
                } else {
                    body += pieces[Int(pick % UInt64(pieces.count))]
                }
            }
            let expected = BodyCanonicalizer.canonicalizeWhole(body, algorithm)
            let sizes = [1, 17, 18, 63, 64, 65, 4095, 4096, 4097, 10_000, 40_000]
            let chunks = (0..<64).map { _ in sizes[Int(random.next() % UInt64(sizes.count))] }
            #expect(Self.stream(body, algorithm, chunks: []).0 == expected, "round \(round), one chunk")
            let (streamed, length) = Self.stream(body, algorithm, chunks: chunks)
            #expect(streamed == expected, "round \(round), chunks \(chunks)")
            #expect(length == expected.count)
            let limit = Int(random.next() % UInt64(expected.count + 2))
            let (cut, fullLength) = Self.stream(body, algorithm, chunks: chunks, limit: limit)
            #expect(cut == Array(expected.prefix(limit)), "round \(round), l=\(limit)")
            #expect(fullLength == expected.count)
        }
    }

    @Test func lengthLimitCutsCanonicalBytes() {
        let body = Self.bytes("Hello  world\r\n\r\nsecond line\r\n\r\n")
        let full = BodyCanonicalizer.canonicalizeWhole(body, .relaxed)
        for limit in [0, 1, 5, 13, full.count, full.count + 10] {
            let (cut, length) = Self.stream(body, .relaxed, chunks: [3], limit: limit)
            #expect(cut == Array(full.prefix(limit)))
            #expect(length == full.count)
        }
    }

    @Test func manyTrailingAndInnerEmptyLines() {
        let body = Self.bytes("x\r\n" + String(repeating: "\r\n", count: 100) + "y\r\n" + String(repeating: "\r\n", count: 50))
        let expected = Self.bytes("x\r\n" + String(repeating: "\r\n", count: 100) + "y\r\n")
        #expect(Self.stream(body, .simple, chunks: [7]).0 == expected)
        #expect(Self.stream(body, .relaxed, chunks: [100_000]).0 == expected)
    }
}

/// A small deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
