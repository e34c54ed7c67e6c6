import Foundation
import NIOCore

/// Shared test data lives in ../shared/testdata beside the repository (the team's shared folder).
enum TestData {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The team folder when it is beside the repository, else the copy of the RFC's public test keys.
    static let shared: URL = {
        let team = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata")
        return FileManager.default.fileExists(atPath: team.path) ? team : packageRoot.appendingPathComponent("Tests/Fixtures")
    }()

    static func bytes(_ relativePath: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: shared.appendingPathComponent(relativePath)))
    }

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: shared.appendingPathComponent(relativePath), encoding: .utf8)
    }
}

/// A small seeded generator (SplitMix64) so every random test is reproducible from its seed.
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

extension ByteBuffer {
    init(_ text: String) { self.init(string: text) }
}
