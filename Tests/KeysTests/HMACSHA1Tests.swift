import Keys
import Testing

@Suite("HMAC-SHA1")
struct HMACSHA1Tests {
    // RFC 2202 §3 test cases 1-7 (key, data, digest).
    static let vectors: [([UInt8], [UInt8], String)] = [
        ([UInt8](repeating: 0x0b, count: 20), Array("Hi There".utf8), "b617318655057264e28bc0b6fb378c8ef146be00"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (
            [UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3"
        ),
        (Array(1...25), [UInt8](repeating: 0xcd, count: 50), "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
        (
            [UInt8](repeating: 0x0c, count: 20), Array("Test With Truncation".utf8),
            "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"
        ),
        (
            [UInt8](repeating: 0xaa, count: 80), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        ),
        (
            [UInt8](repeating: 0xaa, count: 80),
            Array("Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".utf8),
            "e8e99d0f45237d786d6bbaa7965c7808bbff1a91"
        ),
    ]

    @Test("RFC 2202 vectors", arguments: 0..<vectors.count)
    func rfc2202(index: Int) {
        let (key, data, expected) = Self.vectors[index]
        let code = HMACSHA1Key(key: key).code(data)
        #expect(code.map { String($0, radix: 16).leftPadded() }.joined() == expected)
    }

    @Test("one key, many codes, several threads")
    func reusableAcrossThreads() async {
        let key = HMACSHA1Key(secret: "Jefe")
        let expected = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        let results = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (0..<200).allSatisfy { _ in
                        key.code(Array("what do ya want for nothing?".utf8)).map { String($0, radix: 16).leftPadded() }
                            .joined() == expected
                    }
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results == Array(repeating: true, count: 8))
    }

    @Test("empty key and empty message")
    func emptyKey() {
        // openssl dgst -sha1 -hmac '' < /dev/null
        #expect(HMACSHA1Key(key: []).code([]).count == 20)
        #expect(
            HMACSHA1Key(key: []).code([]).map { String($0, radix: 16).leftPadded() }.joined()
                == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d")
    }
}

extension String {
    fileprivate func leftPadded() -> String { count == 1 ? "0" + self : self }
}
