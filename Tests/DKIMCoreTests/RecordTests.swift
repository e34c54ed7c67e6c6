import DKIMCore
import Testing

@Suite("Signature tags, key records, base64")
struct RecordTests {
    static let valid =
        "v=1; a=rsa-sha256; c=relaxed; d=example.com; s=sel; h=From:To; bh=AAAA; b=AAAA; i=@mail.example.com; t=10; x=20; l=5"

    @Test func parsesSignature() throws {
        let tags = try DKIMSignatureTags(parsing: Self.valid)
        #expect(tags.algorithm == "rsa-sha256")
        #expect(tags.canonicalization == CanonicalizationPair(header: .relaxed, body: .simple))
        #expect(tags.signedHeaders == ["from", "to"])
        #expect(tags.identity == "@mail.example.com")
        #expect(tags.timestamp == 10 && tags.expiration == 20 && tags.bodyLength == 5)
        #expect(tags.bodyHash == [0, 0, 0])
    }

    @Test(arguments: [
        ("v=2;", DKIMCoreError.Code.unsupportedVersion, "v"),
        ("a=;", .missingTag, "a"),
        ("h=To;", .invalidTagValue, "h"),
        ("i=@other.com;", .invalidTagValue, "i"),
        ("x=5;", .invalidTagValue, "x"),
        ("l=-1;", .invalidTagValue, "l"),
        ("b=!!;", .invalidTagValue, "b"),
        ("c=fancy;", .invalidTagValue, "c"),
    ])
    func rejectsBadSignatures(override: String, code: DKIMCoreError.Code, tag: String) {
        // Replace one tag of the valid signature; "a=;" stands for removing a=.
        var tags = Self.valid.split(separator: ";").map { $0.trimmingPrefix(" ") }
        let name = override.prefix { $0 != "=" }
        tags.removeAll { $0.hasPrefix(name + "=") }
        if override != "a=;" { tags.append(Substring(override.dropLast())) }
        do {
            _ = try DKIMSignatureTags(parsing: tags.joined(separator: "; "))
            Issue.record("accepted \(override)")
        } catch {
            #expect(error.code == code)
            #expect(error.tag == tag)
        }
    }

    @Test func keyRecordRoundTrip() throws {
        var record = DKIMKeyRecord(keyType: "ed25519", publicKeyData: Array(0..<32))
        record.flags = ["y"]
        let parsed = try DKIMKeyRecord(parsing: record.text)
        #expect(parsed == record)
        #expect(record.text.hasPrefix("v=DKIM1; k=ed25519; t=y; p="))
        let defaults = try DKIMKeyRecord(parsing: "p=AAAA")
        #expect(defaults.keyType == "rsa" && defaults.hashAlgorithms == nil && defaults.flags.isEmpty)
        #expect(try DKIMKeyRecord(parsing: "v=DKIM1; p=").publicKeyData.isEmpty)
        #expect(throws: DKIMCoreError.self) { try DKIMKeyRecord(parsing: "k=rsa; v=DKIM1; p=AAAA") }
        #expect(throws: DKIMCoreError.self) { try DKIMKeyRecord(parsing: "v=DKIM1; k=rsa") }
    }

    @Test func txtStringsAreAtMost255Bytes() {
        let record = DKIMKeyRecord(keyType: "rsa", publicKeyData: Array(repeating: 7, count: 550))  // a 4096-bit key's size
        let strings = record.txtStrings
        #expect(strings.count == (record.text.utf8.count + 254) / 255 && strings.count > 2)
        #expect(strings.allSatisfy { $0.utf8.count <= 255 })
        #expect(strings.joined() == record.text)
        let line = record.zoneFileLine(selector: "s1", domain: "example.com")
        #expect(line.hasPrefix("s1._domainkey.example.com. IN TXT ( \"v=DKIM1; k=rsa; p="))
        #expect(line.hasSuffix("\" )"))
    }

    @Test func base64() {
        var random = SplitMix64(seed: 42)
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let text = Base64.encode(bytes)
            #expect(Base64.decode(text) == bytes)
            #expect(Base64.decode(text.map { "\($0)\r\n\t" }.joined()) == bytes)
        }
        #expect(Base64.encode(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(Base64.encode(Array("fo".utf8)) == "Zm8=")
        #expect(Base64.decode("Zm8") == Array("fo".utf8))
        #expect(Base64.decode("Z") == nil)
        #expect(Base64.decode("Zm8=x") == nil)
        #expect(Base64.decode("Zm 8=", ignoringWhitespace: false) == nil)
    }
}
