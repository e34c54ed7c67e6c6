import Foundation
import Keys
import Testing

/// Test keys, made fresh each run and shared by the tests of this file.
enum TestKeys {
    static let rsa1024 = try! PrivateKey.generateRSA(bits: 1024)  // generation only fails on a broken OpenSSL
    static let rsa2048 = try! PrivateKey.generateRSA(bits: 2048)
    static let rsa4096 = try! PrivateKey.generateRSA(bits: 4096)
    static let ed25519 = try! PrivateKey.generateEd25519()

    static func named(_ name: String) -> PrivateKey {
        switch name {
        case "rsa1024": return rsa1024
        case "rsa2048": return rsa2048
        case "rsa4096": return rsa4096
        default: return ed25519
        }
    }
}

@Suite("Signing and verification")
struct SignatureTests {
    static let keyNames = ["rsa1024", "rsa2048", "rsa4096", "ed25519"]

    @Test("sign and verify round trip; wrong digests and altered signatures fail", arguments: keyNames)
    func roundTrip(name: String) throws {
        let key = TestKeys.named(name)
        let digest = SHA256.hash(Array("a message for \(name)".utf8))
        let signature = try key.signature(forSHA256Digest: digest)
        let expectedLength = key.algorithm == .rsa ? key.bits / 8 : 64
        #expect(signature.count == expectedLength)
        // Both schemes are deterministic.
        #expect(try key.signature(forSHA256Digest: digest) == signature)

        let publicKey = key.publicKey
        #expect(publicKey.isValidSignature(signature, forSHA256Digest: digest))
        // The key as a verifier would build it from the DNS record.
        let published = try PublicKey(dkimKeyData: publicKey.dkimKeyData, algorithm: key.algorithm)
        #expect(published.isValidSignature(signature, forSHA256Digest: digest))

        var otherDigest = digest
        otherDigest[31] ^= 1
        #expect(!publicKey.isValidSignature(signature, forSHA256Digest: otherDigest))
        for index in [0, signature.count / 2, signature.count - 1] {
            var altered = signature
            altered[index] ^= 0x80
            #expect(!publicKey.isValidSignature(altered, forSHA256Digest: digest))
        }
        #expect(!publicKey.isValidSignature(Array(signature.dropLast()), forSHA256Digest: digest))
        #expect(!publicKey.isValidSignature(signature + [0], forSHA256Digest: digest))
        #expect(!publicKey.isValidSignature([], forSHA256Digest: digest))
        #expect(!publicKey.isValidSignature(signature, forSHA256Digest: Array(digest.dropLast())))
        #expect(!publicKey.isValidSignature(signature, forSHA256Digest: []))
    }

    @Test("a signature does not verify under another key or algorithm")
    func otherKeys() throws {
        let digest = SHA256.hash(Array("x".utf8))
        let rsaSignature = try TestKeys.rsa2048.signature(forSHA256Digest: digest)
        let edSignature = try TestKeys.ed25519.signature(forSHA256Digest: digest)
        #expect(!TestKeys.rsa4096.publicKey.isValidSignature(rsaSignature, forSHA256Digest: digest))
        #expect(!TestKeys.rsa1024.publicKey.isValidSignature(rsaSignature, forSHA256Digest: digest))
        #expect(!TestKeys.rsa2048.publicKey.isValidSignature(edSignature, forSHA256Digest: digest))
        #expect(!TestKeys.ed25519.publicKey.isValidSignature(rsaSignature, forSHA256Digest: digest))
        #expect(!(try PrivateKey.generateEd25519()).publicKey.isValidSignature(edSignature, forSHA256Digest: digest))
    }

    @Test("a digest that is not 32 bytes is refused", arguments: [0, 20, 31, 33, 64])
    func digestLength(count: Int) {
        for key in [TestKeys.rsa1024, TestKeys.ed25519] {
            let error = expectKeysError(.signingFailed) {
                _ = try key.signature(forSHA256Digest: [UInt8](repeating: 1, count: count))
            }
            #expect(error?.reason.contains("\(count)") == true)
        }
    }

    @Test("one key signs from many tasks at once")
    func concurrentSigning() async throws {
        let digests = (0..<16).map { SHA256.hash(Array("message \($0)".utf8)) }
        for key in [TestKeys.rsa2048, TestKeys.ed25519] {
            let expected = try digests.map { try key.signature(forSHA256Digest: $0) }
            let publicKey = key.publicKey
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        var ok = true
                        for round in 0..<25 {
                            let index = (task * 7 + round) % digests.count
                            let signature = try key.signature(forSHA256Digest: digests[index])
                            ok =
                                ok && signature == expected[index]
                                && publicKey.isValidSignature(signature, forSHA256Digest: digests[index])
                        }
                        return ok
                    }
                }
                for try await ok in group { #expect(ok) }
            }
        }
    }
}

/// Our signatures against the openssl command line, in both directions.
@Suite("Interoperability with openssl pkeyutl", .enabled(if: OpenSSLTool.isAvailable))
struct PkeyutlTests {
    @Test("openssl verifies our signatures", arguments: ["rsa1024", "rsa2048", "rsa4096", "ed25519"])
    func opensslVerifiesOurs(name: String) throws {
        let key = TestKeys.named(name)
        let directory = try TemporaryDirectory()
        let digest = SHA256.hash(Array("interop \(name)".utf8))
        let digestFile = try directory.write("digest.bin", digest)
        let signatureFile = try directory.write("sig.bin", try key.signature(forSHA256Digest: digest))
        let keyFile = try directory.write("key.pem", Array(try key.pemRepresentation().utf8))

        var arguments = ["pkeyutl", "-verify", "-in", digestFile, "-sigfile", signatureFile]
        switch key.algorithm {
        case .rsa:
            // Our exported SubjectPublicKeyInfo, so the DNS form is checked as well.
            let publicFile = try directory.write("pub.der", key.publicKey.dkimKeyData)
            arguments += ["-pubin", "-keyform", "DER", "-inkey", publicFile, "-pkeyopt", "digest:sha256"]
        case .ed25519:
            arguments += ["-inkey", keyFile, "-rawin"]
        }
        let result = try OpenSSLTool.status(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(String(decoding: result.stdout, as: UTF8.self).contains("Signature Verified Successfully"))

        // And a signature over another digest is rejected by openssl too (the check is not vacuous).
        var other = digest
        other[0] ^= 1
        try directory.write("digest.bin", other)
        #expect(try OpenSSLTool.status(arguments).status != 0)
    }

    @Test("we verify openssl's signatures and produce the same bytes", arguments: ["RSA", "ED25519"])
    func weVerifyOpenSSL(algorithm: String) throws {
        let directory = try TemporaryDirectory()
        let keyFile = directory.path("key.pem")
        try OpenSSLTool.generateKey(
            keyFile, algorithm: algorithm, options: algorithm == "RSA" ? ["rsa_keygen_bits:2048"] : [])
        let digest = SHA256.hash(Array("reverse \(algorithm)".utf8))
        let digestFile = try directory.write("digest.bin", digest)
        let signatureFile = directory.path("sig.bin")
        var arguments = ["pkeyutl", "-sign", "-inkey", keyFile, "-in", digestFile, "-out", signatureFile]
        arguments += algorithm == "RSA" ? ["-pkeyopt", "digest:sha256"] : ["-rawin"]
        try OpenSSLTool.run(arguments)
        let theirs = try directory.read("sig.bin")

        let key = try PrivateKey(contentsOfFile: keyFile)
        #expect(key.publicKey.isValidSignature(theirs, forSHA256Digest: digest))
        #expect(try key.signature(forSHA256Digest: digest) == theirs)
        // A verifier that only has the DNS form of the key.
        let published = try PublicKey(dkimKeyData: key.publicKey.dkimKeyData, algorithm: key.algorithm)
        #expect(published.isValidSignature(theirs, forSHA256Digest: digest))
    }
}
