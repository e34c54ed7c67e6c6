import NIOCore

/// A small seeded generator (SplitMix64), so that a failing random case can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A buffer holding the UTF-8 of `text`.
func buffer(_ text: String) -> ByteBuffer {
    ByteBuffer(string: text)
}

/// A buffer holding `bytes`.
func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    ByteBuffer(bytes: bytes)
}

extension ByteBuffer {
    /// The readable bytes as an array.
    var bytes: [UInt8] { Array(readableBytesView) }
    /// The readable bytes as (lossy) UTF-8 text.
    var text: String { String(decoding: readableBytesView, as: UTF8.self) }
    /// Address of the first readable byte, to check that a result is a slice of an input (no copy).
    var firstByteAddress: UInt? {
        withUnsafeReadableBytes { $0.baseAddress.map { UInt(bitPattern: $0) } }
    }
}

/// Cuts `whole` into slices at random places: some 1-byte, some empty, some long.
func randomChunks(of whole: ByteBuffer, using rng: inout SplitMix64) -> [ByteBuffer] {
    var chunks: [ByteBuffer] = []
    var remaining = whole
    while remaining.readableBytes > 0 {
        let length: Int
        switch rng.next() % 4 {
        case 0: length = 1
        case 1: length = 0
        case 2: length = Int(rng.next() % 4) + 1
        default: length = Int(rng.next() % UInt64(remaining.readableBytes)) + 1
        }
        // The length is at most what is readable, so the slice exists.
        chunks.append(remaining.readSlice(length: min(length, remaining.readableBytes))!)
    }
    return chunks
}

/// Every byte as its own chunk.
func byteChunks(of whole: ByteBuffer) -> [ByteBuffer] {
    var remaining = whole
    var chunks: [ByteBuffer] = []
    while let chunk = remaining.readSlice(length: 1) { chunks.append(chunk) }
    return chunks
}

/// Random bytes, biased toward the ones the scanners care about.
func randomMailBytes(count: Int, using rng: inout SplitMix64) -> [UInt8] {
    let interesting: [UInt8] = [0x0D, 0x0A, 0x20, 0x09, 0x3A, 0x00, 0x0D, 0x0A, 0x0D, 0x0A]
    return (0..<count).map { _ in
        switch rng.next() % 8 {
        case 0, 1: interesting[Int(rng.next() % UInt64(interesting.count))]
        case 2: UInt8(truncatingIfNeeded: rng.next())
        default: UInt8(truncatingIfNeeded: 0x41 + rng.next() % 26)
        }
    }
}
