import Foundation
import Keys
import Testing

/// RFC 8463 Appendix A: its keys, its DNS records and its two signatures, which are deterministic.
@Suite("RFC 8463 keys and signatures")
struct RFC8463Tests {
    static let ed25519PublicKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    static let rsaPublicKey =
        "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/"
        + "byYzCNb3W91"
        + "y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"

    /// The relaxed-canonicalized signed header fields of Appendix A, followed by the signature field with an empty
    /// b= and no trailing CRLF (RFC 6376 §3.7), written out by hand.
    static func signedHeaderData(algorithm: String, selector: String) -> [UInt8] {
        let fields =
            "from:Joe SixPack <joe@football.example.com>\r\n"
            + "to:Suzie Q <suzie@shopping.example.net>\r\n"
            + "subject:Is dinner ready?\r\n"
            + "date:Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
            + "message-id:<20030712040037.46341.5F8J@football.example.com>\r\n"
            + "dkim-signature:v=1; a=\(algorithm); c=relaxed/relaxed; d=football.example.com; "
            + "i=@football.example.com; q=dns/txt; s=\(selector); t=1528637909; "
            + "h=from : to : subject : date : message-id : from : subject : date; "
            + "bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=; b="
        return Array(fields.utf8)
    }

    static let ed25519Signature =
        "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
    static let rsaSignature =
        "F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGd"
        + "aSGsgeefOsk2Jz"
        + "dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="

    static func seedKey() throws -> PrivateKey {
        let seedText = try TestData.text("rfc8463/ed25519.key").trimmingCharacters(in: .whitespacesAndNewlines)
        return try PrivateKey(ed25519Seed: try base64(seedText))
    }

    @Test("the Ed25519 seed and the PKCS#8 PEM give the RFC's public key")
    func ed25519Forms() throws {
        let fromSeed = try Self.seedKey()
        let fromPEM = try PrivateKey(contentsOfFile: TestData.path("rfc8463/ed25519.pem"))
        let expected = try base64(Self.ed25519PublicKey)
        for key in [fromSeed, fromPEM] {
            #expect(key.algorithm == .ed25519)
            #expect(key.bits == 256)
            #expect(key.publicKey.algorithm == .ed25519)
            #expect(key.publicKey.dkimKeyData == expected)
        }
    }

    @Test("the PKCS#1 RSA key is 1024 bits and matches the published SubjectPublicKeyInfo")
    func rsaKey() throws {
        let key = try PrivateKey(contentsOfFile: TestData.path("rfc8463/rsa.key"))
        #expect(key.algorithm == .rsa)
        #expect(key.bits == 1024)
        #expect(key.publicKey.bits == 1024)
        #expect(key.publicKey.dkimKeyData == (try base64(Self.rsaPublicKey)))
        // The same through init(pemRepresentation:).
        let again = try PrivateKey(pemRepresentation: try TestData.text("rfc8463/rsa.key"))
        #expect(again.publicKey.dkimKeyData == key.publicKey.dkimKeyData)
    }

    @Test("signing the Appendix A header digest reproduces the RFC's Ed25519 b= byte for byte")
    func ed25519Signature() throws {
        let digest = SHA256.hash(Self.signedHeaderData(algorithm: "ed25519-sha256", selector: "brisbane"))
        let signature = try Self.seedKey().signature(forSHA256Digest: digest)
        #expect(signature == (try base64(Self.ed25519Signature)))
        let published = try PublicKey(dkimKeyData: try base64(Self.ed25519PublicKey), algorithm: .ed25519)
        #expect(published.isValidSignature(signature, forSHA256Digest: digest))
    }

    @Test("signing the Appendix A header digest reproduces the RFC's RSA b= byte for byte")
    func rsaSignature() throws {
        let digest = SHA256.hash(Self.signedHeaderData(algorithm: "rsa-sha256", selector: "test"))
        let key = try PrivateKey(contentsOfFile: TestData.path("rfc8463/rsa.key"))
        let signature = try key.signature(forSHA256Digest: digest)
        #expect(signature == (try base64(Self.rsaSignature)))
        let published = try PublicKey(dkimKeyData: try base64(Self.rsaPublicKey), algorithm: .rsa)
        #expect(published.isValidSignature(signature, forSHA256Digest: digest))
    }

    @Test("PEM export is PKCS#8 and identical to what openssl pkey writes", .enabled(if: OpenSSLTool.isAvailable))
    func pemExportMatchesOpenSSL() throws {
        for name in ["rfc8463/rsa.key", "rfc8463/ed25519.pem"] {
            let key = try PrivateKey(contentsOfFile: TestData.path(name))
            let pem = try key.pemRepresentation()
            #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
            let reference = String(decoding: try OpenSSLTool.run(["pkey", "-in", TestData.path(name)]), as: UTF8.self)
            #expect(pem == reference, "\(name)")
        }
        let seedPEM = try Self.seedKey().pemRepresentation()
        #expect(seedPEM == (try TestData.text("rfc8463/ed25519.pem")))
    }
}
