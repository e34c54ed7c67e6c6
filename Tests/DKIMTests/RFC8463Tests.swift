import DKIM
import DKIMCore
import Foundation
import Keys
import NIOCore
import Testing

/// RFC 8463 Appendix A: with its keys, message and tags, both signatures must come out byte for byte.
@Suite("RFC 8463 Appendix A")
struct RFC8463Tests {
    static let timestamp = 1_528_637_909

    static func options() -> DKIMSignerOptions {
        var options = DKIMSignerOptions()
        options.canonicalization = CanonicalizationPair(header: .relaxed, body: .relaxed)
        options.explicitHeaderList = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"]
        options.headerListSeparator = " : "
        options.identity = "@football.example.com"
        options.includeQueryMethod = true
        options.expiration = nil
        return options
    }

    /// The expected fields, unfolded, as tag lists.
    static func expected() throws -> [String: TagList] {
        let text = try TestData.text("rfc8463/expected-signatures.txt")
        var result: [String: TagList] = [:]
        for field in text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "DKIM-Signature:").dropFirst() {
            let unfolded = field.replacingOccurrences(of: "\n", with: "")
            let tags = try TagList(parsing: unfolded)
            result[try #require(tags["a"])] = tags
        }
        return result
    }

    static func message() throws -> WholeMessage {
        try WholeMessage(ByteBuffer(bytes: try TestData.bytes("rfc8463/message.eml")))
    }

    @Test("ed25519-sha256 and rsa-sha256 signatures are reproduced exactly", arguments: ["ed25519-sha256", "rsa-sha256"])
    func reproduces(algorithm: String) throws {
        let key: PrivateKey
        let selector: String
        if algorithm == "ed25519-sha256" {
            let seed = try #require(Base64.decode(try TestData.text("rfc8463/ed25519.key").trimmingCharacters(in: .whitespacesAndNewlines)))
            key = try PrivateKey(ed25519Seed: seed)
            selector = "brisbane"
        } else {
            key = try PrivateKey(pemRepresentation: try TestData.text("rfc8463/rsa.key"))
            selector = "test"
        }
        let signer = try DKIMSigner(domain: "football.example.com", selector: selector, key: key, options: Self.options())
        let message = try Self.message()
        let field = try #require(try message.sign(with: [signer], now: Self.timestamp).first)

        #expect(field.hasPrefix("DKIM-Signature: "))
        let value = String(field.dropFirst("DKIM-Signature:".count)).replacingOccurrences(of: "\r\n", with: "")
        let ours = try TagList(parsing: value)
        let theirs = try #require(try Self.expected()[algorithm])
        // Every tag value equal once white space is removed (folding is free), b= and bh= included.
        func squeeze(_ s: String) -> String { s.filter { !$0.isWhitespace } }
        #expect(ours.tags.map(\.name) == theirs.tags.map(\.name))
        for tag in theirs.tags {
            #expect(squeeze(ours[tag.name] ?? "<missing>") == squeeze(tag.value), "tag \(tag.name)")
        }
    }

    @Test("the RFC's signed message verifies with both keys")
    func verifiesRFCMessage() throws {
        let table = try DKIMKeyTable(parsing: try TestData.text("rfc8463/dns.txt").replacingOccurrences(of: "(\n", with: "(").replacingOccurrences(of: "\"\n", with: "\" "))
        let message = try WholeMessage(ByteBuffer(bytes: try TestData.bytes("rfc8463/signed-message.eml")))
        let results = DKIMVerifier(keyTable: table).verify(message, now: Self.timestamp)
        #expect(results.count == 2)
        #expect(results.allSatisfy { $0.status == .pass }, "\(results)")
    }
}
