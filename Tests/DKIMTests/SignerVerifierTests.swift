import DKIM
import DKIMCore
import Foundation
import Keys
import MailMessage
import NIOCore
import Testing

@Suite("Signing and verifying")
struct SignerVerifierTests {
    static let rsa = try! PrivateKey.generateRSA(bits: 2048)  // a test key, made fresh each run
    static let ed = try! PrivateKey.generateEd25519()
    static let now = 1_800_000_000

    static let message = """
        From: Alice <alice@example.com>\r
        To: bob@example.org\r
        Subject: hello\r
        Date: Tue, 24 Nov 2026 09:00:00 +0000\r
        \r
        Body  text \r
        \r
        \r

        """

    static func table(_ keys: [(String, PrivateKey)], flags: String = "") -> DKIMKeyTable {
        var records: [String: String] = [:]
        for (selector, key) in keys {
            var record = DKIMKeyRecord(keyType: key.algorithm.rawValue, publicKeyData: key.publicKey.dkimKeyData)
            if !flags.isEmpty { record.flags = [flags] }
            records["\(selector)._domainkey.example.com"] = record.text
        }
        return DKIMKeyTable(records: records)
    }

    static func signed(_ text: String = message, signers: [DKIMSigner]) throws -> WholeMessage {
        let message = try WholeMessage(ByteBuffer(string: text))
        let fields = try message.sign(with: signers, now: now)
        return try WholeMessage(message.bytes(prepending: fields))
    }

    @Test("dual signature verifies, and each field stays within 78 columns")
    func dualSigning() throws {
        let signers = [
            try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa),
            try DKIMSigner(domain: "example.com", selector: "e", key: Self.ed),
        ]
        let message = try Self.signed(signers: signers)
        let results = DKIMVerifier(keyTable: Self.table([("r", Self.rsa), ("e", Self.ed)])).verify(
            message, now: Self.now)
        #expect(results.map(\.status) == [.pass, .pass], "\(results)")
        #expect(results.map(\.algorithm) == ["rsa-sha256", "ed25519-sha256"])
        for field in message.header.fields(named: "dkim-signature") {
            for line in String(buffer: field.raw).split(separator: "\r\n") {
                #expect(line.utf8.count <= 78)
            }
        }
    }

    @Test("h= signs each present field and oversigns one more of every name")
    func oversigning() throws {
        let signer = try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa)
        let header = try WholeMessage(ByteBuffer(string: Self.message)).header
        let names = signer.headerList(for: header)
        #expect(names.filter { $0 == "from" }.count == 2)
        #expect(names.filter { $0 == "subject" }.count == 2)
        #expect(names.filter { $0 == "cc" }.count == 1)  // absent: signed as absent
        #expect(names.first == "from")

        var options = DKIMSignerOptions()
        options.signedHeaders = ["from", "subject"]
        options.oversign = false
        let plain = try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa, options: options)
        #expect(plain.headerList(for: header) == ["from", "subject"])
    }

    @Test("the one-pass h= selection picks what HeaderHasher.select picks for the same names")
    func selectionMatchesSelect() throws {
        let header = try WholeMessage(
            ByteBuffer(
                string: "Received: x\r\nFROM: a@example.com\r\nSubject: one\r\nTo: b@example.com\r\n"
                    + "subject: two\r\nto: c@example.com\r\nX-Other: y\r\n\r\nbody\r\n")
        ).header
        for oversign in [true, false] {
            var options = DKIMSignerOptions()
            options.oversign = oversign
            options.signedHeaders = ["Subject", "from", "to", "cc", "subject"]
            let signer = try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa, options: options)
            let selection = signer.signedFieldSelection(for: header)
            let reference = HeaderHasher.select(selection.names, from: header)
            #expect(selection.fields == reference)
            let expected = ["subject", "subject", "from", "to", "to"]
            #expect(
                selection.names
                    == (oversign
                        ? ["subject", "subject", "subject", "from", "from", "to", "to", "to", "cc"] : expected))
        }
    }

    @Test("an added From after signing breaks an oversigned signature")
    func oversigningProtects() throws {
        let signer = try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa)
        let signed = try Self.signed(signers: [signer])
        var bytes = ByteBuffer(string: "From: mallory@example.net\r\n")
        var rest = signed.bytes()
        bytes.writeBuffer(&rest)
        let results = DKIMVerifier(keyTable: Self.table([("r", Self.rsa)])).verify(
            try WholeMessage(bytes), now: Self.now)
        #expect(results.map(\.status) == [.fail])
    }

    @Test("t= and x= are written, l= only when asked")
    func timestamps() throws {
        var options = DKIMSignerOptions()
        let signer = try DKIMSigner(domain: "example.com", selector: "r", key: Self.ed, options: options)
        let field = try #require(
            try WholeMessage(ByteBuffer(string: Self.message)).sign(with: [signer], now: Self.now).first)
        let tags = try DKIMSignatureTags(
            parsing: String(field.dropFirst("DKIM-Signature:".count)).replacingOccurrences(of: "\r\n", with: ""))
        #expect(tags.timestamp == Self.now)
        #expect(tags.expiration == Self.now + 604_800)
        #expect(tags.bodyLength == nil)
        options.includeBodyLength = true
        let withLength = try DKIMSigner(domain: "example.com", selector: "r", key: Self.ed, options: options)
        let field2 = try #require(
            try WholeMessage(ByteBuffer(string: Self.message)).sign(with: [withLength], now: Self.now).first)
        #expect(field2.contains("l=11;"))  // relaxed: "Body text\r\n"
    }

    @Test("configuration mistakes are refused with a reason")
    func refusals() throws {
        #expect(throws: DKIMError.self) { try DKIMSigner(domain: "not a domain", selector: "s", key: Self.rsa) }
        #expect(throws: DKIMError.self) {
            try DKIMSigner(domain: "example.com", selector: "bad selector", key: Self.rsa)
        }
        #expect(throws: DKIMError.self) {
            try DKIMSigner(domain: "example.com", selector: "s", key: Self.rsa, algorithm: .ed25519SHA256)
        }
        var options = DKIMSignerOptions()
        options.identity = "@evil.example"
        #expect(throws: DKIMError.self) {
            try DKIMSigner(domain: "example.com", selector: "s", key: Self.rsa, options: options)
        }
        options.identity = "user@mail.example.com"
        #expect(throws: Never.self) {
            try DKIMSigner(domain: "example.com", selector: "s", key: Self.rsa, options: options)
        }
    }

    @Test("verifier outcomes: tampered, expired, revoked, wrong key type, missing key, rsa-sha1, too many")
    func verifierOutcomes() throws {
        let signer = try DKIMSigner(domain: "example.com", selector: "r", key: Self.rsa)
        let signed = try Self.signed(signers: [signer])
        let good = DKIMVerifier(keyTable: Self.table([("r", Self.rsa)]))
        #expect(good.verify(signed, now: Self.now).map(\.status) == [.pass])

        var text = String(buffer: signed.bytes())
        text = text.replacingOccurrences(of: "Body  text", with: "Body  texT")
        #expect(
            good.verify(try WholeMessage(ByteBuffer(string: text)), now: Self.now).first?.reason
                == "body hash did not verify")

        let expired = good.verify(signed, now: Self.now + 604_801)
        #expect(expired.first?.status == .permerror)
        #expect(expired.first?.reason.contains("expired") == true)

        let revoked = DKIMVerifier(keyTable: DKIMKeyTable(records: ["r._domainkey.example.com": "v=DKIM1; p="]))
        #expect(revoked.verify(signed, now: Self.now).first?.reason.contains("revoked") == true)

        let wrongType = DKIMVerifier(
            keyTable: DKIMKeyTable(records: [
                "r._domainkey.example.com": "v=DKIM1; k=ed25519; p=" + Base64.encode(Self.ed.publicKey.dkimKeyData)
            ]))
        #expect(wrongType.verify(signed, now: Self.now).first?.status == .permerror)

        let missing = DKIMVerifier(keyTable: DKIMKeyTable())
        #expect(missing.verify(signed, now: Self.now).first?.reason.contains("no key record") == true)

        struct Timeout: Error {}
        let failing = DKIMVerifier { _ in throw Timeout() }
        #expect(failing.verify(signed, now: Self.now).first?.status == .temperror)

        let sha1 = String(buffer: signed.bytes()).replacingOccurrences(of: "a=rsa-sha256", with: "a=rsa-sha1")
        #expect(good.verify(try WholeMessage(ByteBuffer(string: sha1)), now: Self.now).first?.status == .permerror)

        // A message with many signatures costs at most `maximumSignatures` checks.
        let field = String(buffer: signed.header.fields(named: "dkim-signature")[0].raw)
        let rest = String(decoding: Array(signed.bytes().readableBytesView).dropFirst(field.utf8.count), as: UTF8.self)
        let many = String(repeating: field, count: 50) + rest
        let results = good.verify(try WholeMessage(ByteBuffer(string: String(many))), now: Self.now)
        #expect(results.count == 50)
        #expect(results.prefix(10).allSatisfy { $0.status == .pass }, "\(results.prefix(10).map(\.reason))")
        #expect(results.dropFirst(10).allSatisfy { $0.status == .policy })
    }
}
