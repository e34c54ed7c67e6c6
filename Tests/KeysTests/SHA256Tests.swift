import Keys
import Testing

@Suite("SHA256")
struct SHA256Tests {
    // FIPS 180-2 / NIST example vectors.
    static let vectors: [(String, String)] = [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
    ]

    @Test("known vectors, one shot", arguments: vectors)
    func knownVectors(input: String, expected: String) {
        #expect(hex(SHA256.hash(Array(input.utf8))) == expected)
    }

    @Test("a million 'a'")
    func millionA() {
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        #expect(hex(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))) == expected)
        // The same in 1000 updates of 1000 bytes.
        let hasher = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(chunk) }
        #expect(hex(hasher.finalize()) == expected)
    }

    @Test("incremental updates at random split points equal the one-shot hash")
    func randomSplits() {
        var random = SplitMix64(state: 0x5167_AE70)
        for round in 0..<50 {
            let length = Int.random(in: 0...5000, using: &random)
            let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let oneShot = SHA256.hash(data)
            let hasher = SHA256()
            var start = 0
            while start < data.count {
                let end = min(data.count, start + Int.random(in: 0...700, using: &random))
                data[start..<end].withUnsafeBytes { hasher.update($0) }
                start = end
            }
            #expect(hasher.finalize() == oneShot, "round \(round), \(length) bytes")
        }
    }

    @Test("finalize returns 32 bytes and starts a new message")
    func reuseAfterFinalize() {
        let hasher = SHA256()
        hasher.update(Array("something else".utf8))
        #expect(hasher.finalize().count == 32)
        hasher.update(Array("abc".utf8))
        #expect(hex(hasher.finalize()) == Self.vectors[1].1)
        // Nothing added since: the empty message.
        #expect(hex(hasher.finalize()) == Self.vectors[0].1)
    }

    @Test("reset abandons a half-hashed message")
    func reset() {
        let hasher = SHA256()
        hasher.update(Array("garbage".utf8))
        hasher.reset()
        hasher.update(Array("ab".utf8))
        hasher.update(Array("c".utf8))
        #expect(hex(hasher.finalize()) == Self.vectors[1].1)
    }

    @Test("empty and nil-based buffers are no-ops")
    func emptyUpdates() {
        let hasher = SHA256()
        hasher.update(UnsafeRawBufferPointer(start: nil, count: 0))
        hasher.update([])
        hasher.update(Array("abc".utf8))
        hasher.update([])
        #expect(hex(hasher.finalize()) == Self.vectors[1].1)
    }

    @Test("independent hashers on many tasks")
    func concurrentHashers() async {
        let expected = SHA256.hash(Array("abc".utf8))
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let hasher = SHA256()
                    var ok = true
                    for _ in 0..<200 {
                        hasher.update(Array("a".utf8))
                        hasher.update(Array("bc".utf8))
                        ok = ok && hasher.finalize() == expected
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
