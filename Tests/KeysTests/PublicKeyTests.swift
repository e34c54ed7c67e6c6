import Foundation
import Keys
import Testing

@Suite("PublicKey import and export")
struct PublicKeyTests {
    static func rfcSPKI() throws -> [UInt8] { try base64(RFC8463Tests.rsaPublicKey) }

    /// The PKCS#1 RSAPublicKey inside a 1024-bit SubjectPublicKeyInfo: the BIT STRING's content after its
    /// unused-bits byte, at offset 22 (30 81 9f | 30 0d <rsaEncryption, NULL> | 03 81 8d 00 | 30 81 89 ...).
    static func rfcPKCS1() throws -> [UInt8] {
        let spki = try rfcSPKI()
        try #require(spki.count == 162 && spki[18] == 0x03 && spki[21] == 0x00 && spki[22] == 0x30)
        return Array(spki[22...])
    }

    @Test("RSA SubjectPublicKeyInfo imports and exports unchanged")
    func spki() throws {
        let key = try PublicKey(dkimKeyData: try Self.rfcSPKI(), algorithm: .rsa)
        #expect(key.algorithm == .rsa)
        #expect(key.bits == 1024)
        #expect(key.dkimKeyData == (try Self.rfcSPKI()))
    }

    @Test("bare PKCS#1 RSAPublicKey imports and exports as SubjectPublicKeyInfo")
    func pkcs1() throws {
        let key = try PublicKey(dkimKeyData: try Self.rfcPKCS1(), algorithm: .rsa)
        #expect(key.bits == 1024)
        #expect(key.dkimKeyData == (try Self.rfcSPKI()))
        let digest = SHA256.hash(RFC8463Tests.signedHeaderData(algorithm: "rsa-sha256", selector: "test"))
        #expect(key.isValidSignature(try base64(RFC8463Tests.rsaSignature), forSHA256Digest: digest))
    }

    @Test("PKCS#1 from openssl -RSAPublicKey_out imports", .enabled(if: OpenSSLTool.isAvailable))
    func pkcs1FromOpenSSL() throws {
        let der = try OpenSSLTool.run([
            "rsa", "-in", TestData.path("rfc8463/rsa.key"), "-RSAPublicKey_out", "-outform", "DER",
        ])
        #expect(Array(der) == (try Self.rfcPKCS1()))
    }

    @Test("Ed25519 takes exactly 32 raw bytes")
    func ed25519() throws {
        let raw = try base64(RFC8463Tests.ed25519PublicKey)
        let key = try PublicKey(dkimKeyData: raw, algorithm: .ed25519)
        #expect(key.algorithm == .ed25519)
        #expect(key.bits == 256)
        #expect(key.dkimKeyData == raw)
        for bad in [Array(raw.dropLast()), raw + [0], [], [UInt8](repeating: 0, count: 64)] {
            expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: bad, algorithm: .ed25519) }
        }
        // The SubjectPublicKeyInfo form is not what RFC 8463 publishes.
        let spki: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00] + raw
        expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: spki, algorithm: .ed25519) }
        // ... nor is it an RSA key.
        let asRSA = expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: spki, algorithm: .rsa) }
        #expect(asRSA?.reason.contains("ED25519") == true)
    }

    @Test("bad RSA key data is an invalid public key")
    func badRSA() throws {
        let spki = try Self.rfcSPKI()
        let cases: [[UInt8]] = [
            [],
            [0],
            Array("not a key".utf8),
            Array(spki.dropLast()),
            Array(spki.prefix(40)),
            spki + [0],  // trailing bytes
            try Self.rfcPKCS1() + [0, 0],
            Array(RFC8463Tests.rsaPublicKey.utf8),  // still base64
            [UInt8](repeating: 0x30, count: 300),
        ]
        for data in cases {
            expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: data, algorithm: .rsa) }
        }
        var random = SplitMix64(state: 7)
        for _ in 0..<200 {
            let data = (0..<Int.random(in: 1...600, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: data, algorithm: .rsa) }
        }
        // Random corruption of a real key: must either import or throw, never crash.
        for _ in 0..<200 {
            var data = spki
            data[Int.random(in: 0..<data.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            _ = try? PublicKey(dkimKeyData: data, algorithm: .rsa)
        }
    }

    @Test("an EC SubjectPublicKeyInfo is not an RSA key", .enabled(if: OpenSSLTool.isAvailable))
    func ecSPKI() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("ec.pem")
        try OpenSSLTool.generateKey(file, algorithm: "EC", options: ["ec_paramgen_curve:P-256"])
        let der = try OpenSSLTool.run(["pkey", "-in", file, "-pubout", "-outform", "DER"])
        let error = expectKeysError(.invalidPublicKey) { _ = try PublicKey(dkimKeyData: Array(der), algorithm: .rsa) }
        #expect(error?.reason.contains("EC") == true)
    }

    @Test(
        "short RSA public keys import; the verifier applies the RFC 8301 minimum", .enabled(if: OpenSSLTool.isAvailable)
    )
    func shortPublicKey() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("short.pem")
        try OpenSSLTool.generateKey(file, algorithm: "RSA", options: ["rsa_keygen_bits:512"])
        let der = try OpenSSLTool.run(["pkey", "-in", file, "-pubout", "-outform", "DER"])
        let key = try PublicKey(dkimKeyData: Array(der), algorithm: .rsa)
        #expect(key.bits == 512)
    }
}
