import Foundation
import Keys
import Testing

@Suite("PrivateKey: generation, PEM and loading errors")
struct PrivateKeyTests {
    @Test("generated keys report their type and size, and survive a PEM round trip", arguments: [1024, 2048])
    func generatedRSA(bits: Int) throws {
        let key = try PrivateKey.generateRSA(bits: bits)
        #expect(key.algorithm == .rsa)
        #expect(key.bits == bits)
        #expect(key.publicKey.bits == bits)
        let pem = try key.pemRepresentation()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        #expect(pem.hasSuffix("-----END PRIVATE KEY-----\n"))
        let reloaded = try PrivateKey(pemRepresentation: pem)
        #expect(reloaded.bits == bits)
        #expect(reloaded.publicKey.dkimKeyData == key.publicKey.dkimKeyData)
    }

    @Test("generated Ed25519 keys survive a PEM round trip and are all different")
    func generatedEd25519() throws {
        let key = try PrivateKey.generateEd25519()
        #expect(key.algorithm == .ed25519)
        #expect(key.bits == 256)
        #expect(key.publicKey.dkimKeyData.count == 32)
        let reloaded = try PrivateKey(pemRepresentation: try key.pemRepresentation())
        #expect(reloaded.algorithm == .ed25519)
        #expect(reloaded.publicKey.dkimKeyData == key.publicKey.dkimKeyData)
        #expect(try PrivateKey.generateEd25519().publicKey.dkimKeyData != key.publicKey.dkimKeyData)
    }

    @Test("generateRSA refuses sizes outside 1024...4096 without generating")
    func generateRSASizeLimits() {
        let short = expectKeysError(.keyTooShort) { _ = try PrivateKey.generateRSA(bits: 512) }
        #expect(short?.reason.contains("512") == true)
        expectKeysError(.keyTooShort) { _ = try PrivateKey.generateRSA(bits: 0) }
        expectKeysError(.keyTooShort) { _ = try PrivateKey.generateRSA(bits: -5) }
        let long = expectKeysError(.keyTooLong) { _ = try PrivateKey.generateRSA(bits: 8192) }
        #expect(long?.reason.contains("8192") == true)
        expectKeysError(.keyTooLong) { _ = try PrivateKey.generateRSA(bits: .max) }
    }

    @Test("keys written by openssl load from PKCS#1 and PKCS#8 files", .enabled(if: OpenSSLTool.isAvailable))
    func loadsOpenSSLKeys() throws {
        let directory = try TemporaryDirectory()
        let pkcs8 = directory.path("rsa8.pem")
        try OpenSSLTool.generateKey(pkcs8, algorithm: "RSA", options: ["rsa_keygen_bits:1024"])
        let pkcs1 = directory.path("rsa1.pem")
        try OpenSSLTool.run(["rsa", "-in", pkcs8, "-traditional", "-out", pkcs1])
        #expect(try String(contentsOfFile: pkcs1, encoding: .utf8).hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        let ed = directory.path("ed.pem")
        try OpenSSLTool.generateKey(ed, algorithm: "ED25519")

        let fromPKCS8 = try PrivateKey(contentsOfFile: pkcs8)
        let fromPKCS1 = try PrivateKey(contentsOfFile: pkcs1)
        #expect(fromPKCS8.bits == 1024 && fromPKCS1.bits == 1024)
        #expect(fromPKCS8.publicKey.dkimKeyData == fromPKCS1.publicKey.dkimKeyData)
        let spki = try OpenSSLTool.run(["pkey", "-in", pkcs8, "-pubout", "-outform", "DER"])
        #expect(fromPKCS8.publicKey.dkimKeyData == Array(spki))

        let edKey = try PrivateKey(contentsOfFile: ed)
        #expect(edKey.algorithm == .ed25519)
        // An Ed25519 SubjectPublicKeyInfo is a 12-byte prefix and the raw key (RFC 8410).
        let edSPKI = try OpenSSLTool.run(["pkey", "-in", ed, "-pubout", "-outform", "DER"])
        #expect(edKey.publicKey.dkimKeyData == Array(edSPKI.suffix(32)))
    }

    @Test("text around the PEM block is ignored; large files are read whole")
    func surroundingText() throws {
        let pem = try TestData.text("rfc8463/ed25519.pem")
        let comment = String(repeating: "# a comment line that is not part of the key\n", count: 1000)  // 46 KB
        let directory = try TemporaryDirectory()
        let file = try directory.write("commented.pem", Array((comment + pem + "trailing words\n").utf8))
        let key = try PrivateKey(contentsOfFile: file)
        #expect(key.publicKey.dkimKeyData == (try base64(RFC8463Tests.ed25519PublicKey)))
        #expect(try PrivateKey(pemRepresentation: comment + pem).algorithm == .ed25519)
    }

    @Test("an RSA key below 1024 bits is refused, naming its size", .enabled(if: OpenSSLTool.isAvailable))
    func tooShortFile() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("short.pem")
        try OpenSSLTool.generateKey(file, algorithm: "RSA", options: ["rsa_keygen_bits:512"])
        let error = expectKeysError(.keyTooShort) { _ = try PrivateKey(contentsOfFile: file) }
        #expect(error?.reason.contains("512") == true)
        #expect(error?.reason.contains(file) == true)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        expectKeysError(.keyTooShort) { _ = try PrivateKey(pemRepresentation: text) }
    }

    @Test("an RSA key above 4096 bits is refused", .enabled(if: OpenSSLTool.isAvailable))
    func tooLongFile() throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("long.pem")
        try OpenSSLTool.generateKey(file, algorithm: "RSA", options: ["rsa_keygen_bits:4104"])
        let error = expectKeysError(.keyTooLong) { _ = try PrivateKey(contentsOfFile: file) }
        #expect(error?.reason.contains("4104") == true)
    }

    @Test(
        "keys of other types are unsupported",
        .enabled(if: OpenSSLTool.isAvailable),
        arguments: [
            ("EC", ["ec_paramgen_curve:P-256"], "EC"),
            ("ED448", [], "ED448"),
            ("X25519", [], "X25519"),
            ("RSA-PSS", ["rsa_keygen_bits:1024"], "RSA-PSS"),
        ]
    )
    func unsupportedTypes(algorithm: String, options: [String], typeName: String) throws {
        let directory = try TemporaryDirectory()
        let file = directory.path("key.pem")
        try OpenSSLTool.generateKey(file, algorithm: algorithm, options: options)
        let error = expectKeysError(.unsupportedKeyType) { _ = try PrivateKey(contentsOfFile: file) }
        #expect(error?.reason.contains(typeName) == true, "\(String(describing: error))")
    }

    @Test("a traditional \"EC PRIVATE KEY\" PEM is unsupported", .enabled(if: OpenSSLTool.isAvailable))
    func traditionalEC() throws {
        let pem = try OpenSSLTool.run(["ecparam", "-name", "prime256v1", "-genkey", "-noout"])
        let text = String(decoding: pem, as: UTF8.self)
        #expect(text.contains("BEGIN EC PRIVATE KEY"))
        expectKeysError(.unsupportedKeyType) { _ = try PrivateKey(pemRepresentation: text) }
    }

    @Test(
        "encrypted PEMs are refused with a clear reason, without asking for a passphrase",
        .enabled(if: OpenSSLTool.isAvailable))
    func encrypted() throws {
        let directory = try TemporaryDirectory()
        let pkcs8 = directory.path("enc8.pem")
        try OpenSSLTool.run([
            "genpkey", "-algorithm", "ED25519", "-aes-256-cbc", "-pass", "pass:secret", "-out", pkcs8,
        ])
        #expect(try String(contentsOfFile: pkcs8, encoding: .utf8).contains("BEGIN ENCRYPTED PRIVATE KEY"))
        let traditional = directory.path("enc1.pem")
        let plain = directory.path("plain.pem")
        try OpenSSLTool.generateKey(plain, algorithm: "RSA", options: ["rsa_keygen_bits:1024"])
        try OpenSSLTool.run([
            "rsa", "-in", plain, "-traditional", "-aes256", "-passout", "pass:secret", "-out", traditional,
        ])
        #expect(try String(contentsOfFile: traditional, encoding: .utf8).contains("Proc-Type: 4,ENCRYPTED"))
        for file in [pkcs8, traditional] {
            let error = expectKeysError(.malformedKey) { _ = try PrivateKey(contentsOfFile: file) }
            #expect(error?.reason.contains("encrypted") == true)
            #expect(error?.reason.contains(file) == true)
        }
    }

    static let garbage: [String] = [
        "",
        "hello",
        String(repeating: "\u{0}", count: 100),
        "-----BEGIN PRIVATE KEY-----\n!!!! not base64 !!!!\n-----END PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v\n-----END PRIVATE KEY-----\n",  // truncated DER
        "-----BEGIN RSA PRIVATE KEY-----\nMIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3\n-----END RSA PRIVATE KEY-----\n",
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n",  // no END
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
            + "-----END PUBLIC KEY-----\n",
    ]

    @Test("garbage is a malformed key", arguments: garbage)
    func garbageText(text: String) throws {
        let error = expectKeysError(.malformedKey) { _ = try PrivateKey(pemRepresentation: text) }
        #expect(error?.reason.isEmpty == false)
        let directory = try TemporaryDirectory()
        let file = try directory.write("garbage.pem", Array(text.utf8))
        let fromFile = expectKeysError(.malformedKey) { _ = try PrivateKey(contentsOfFile: file) }
        #expect(fromFile?.reason.contains(file) == true)
    }

    @Test("random binary files are malformed keys")
    func randomBytes() throws {
        var random = SplitMix64(state: 42)
        let directory = try TemporaryDirectory()
        for round in 0..<20 {
            let bytes = (0..<Int.random(in: 1...3000, using: &random)).map { _ in
                UInt8.random(in: 0...255, using: &random)
            }
            let file = try directory.write("random\(round).bin", bytes)
            expectKeysError(.malformedKey) { _ = try PrivateKey(contentsOfFile: file) }
        }
    }

    @Test("a file above 1 MiB is refused before parsing")
    func hugeFile() throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write("huge.pem", [UInt8](repeating: UInt8(ascii: "#"), count: (1 << 20) + 1))
        let error = expectKeysError(.malformedKey) { _ = try PrivateKey(contentsOfFile: file) }
        #expect(error?.reason.contains("larger") == true)
    }

    @Test("missing files and directories are unreadable, with the path and the system's reason")
    func unreadable() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.path("does-not-exist.pem")
        let error = expectKeysError(.unreadableKeyFile) { _ = try PrivateKey(contentsOfFile: missing) }
        #expect(error?.reason.contains(missing) == true)
        #expect(error?.reason.contains("No such file or directory") == true)
        let isDirectory = expectKeysError(.unreadableKeyFile) { _ = try PrivateKey(contentsOfFile: directory.url.path) }
        #expect(isDirectory?.reason.contains("Is a directory") == true)
        expectKeysError(.unreadableKeyFile) { _ = try PrivateKey(contentsOfFile: "") }
    }

    @Test("an Ed25519 seed must be 32 bytes", arguments: [0, 1, 31, 33, 64])
    func seedLength(count: Int) {
        let error = expectKeysError(.invalidSeed) {
            _ = try PrivateKey(ed25519Seed: [UInt8](repeating: 7, count: count))
        }
        #expect(error?.reason.contains("\(count)") == true)
    }

    @Test("errors compare by code and describe code and reason")
    func errorShape() {
        let a = KeysError(.malformedKey, "one reason")
        let b = KeysError(.malformedKey, "another reason")
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(a != KeysError(.keyTooShort, "one reason"))
        #expect(a.description == "malformedKey: one reason")
        let withQueue = KeysError(
            .signingFailed, "x", openSSLError: OpenSSLError(operation: "EVP_PKEY_sign", queue: ["e1"]))
        #expect(withQueue.description.contains("EVP_PKEY_sign"))
        #expect(withQueue.description.contains("e1"))
    }

    @Test("a failed load carries OpenSSL's own messages, and none left from earlier failures")
    func openSSLQueue() throws {
        let verifier = try PublicKey(dkimKeyData: try base64(RFC8463Tests.rsaPublicKey), algorithm: .rsa)
        for _ in 0..<20 {
            #expect(
                !verifier.isValidSignature(
                    [UInt8](repeating: 1, count: 128), forSHA256Digest: [UInt8](repeating: 0, count: 32)))
        }
        let text = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ1hsZ3v\n-----END PRIVATE KEY-----\n"
        let error = expectKeysError(.malformedKey) { _ = try PrivateKey(pemRepresentation: text) }
        let queue = try #require(error?.openSSLError?.queue)
        #expect(!queue.isEmpty)
        #expect(queue.count < 16)
        #expect(!queue.contains { $0.lowercased().contains("rsa") }, "\(queue)")
    }
}
