/// A seeded generator, so a failing property test reproduces from its seed.
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

    /// Random chunk sizes (1...maximum) that add up to at least `total`.
    mutating func chunking(total: Int, maximum: Int) -> [Int] {
        var sizes: [Int] = []
        var sum = 0
        while sum < total {
            let size = Int.random(in: 1...maximum, using: &self)
            sizes.append(size)
            sum += size
        }
        return sizes
    }
}
