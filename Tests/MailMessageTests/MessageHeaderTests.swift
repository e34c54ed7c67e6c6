import MailMessage
import NIOCore
import Testing

@Suite("MessageHeader.parse")
struct MessageHeaderTests {
    static let sample =
        "Received: from a.test by b.test;\r\n\tMon, 1 Jan 2024 10:00:00 +0000\r\n"
        + "From: Joe <joe@example.com>\r\n"
        + "To: mary@x.test,\r\n  jdoe@example.org\r\n"
        + "Subject: Hi\r\n"
        + "subject: again\r\n"

    @Test("splits fields top to bottom, folded lines included, as slices of the block")
    func fields() throws {
        let block = buffer(Self.sample)
        let header = try MessageHeader.parse(block)
        #expect(header.fields.map(\.name) == ["Received", "From", "To", "Subject", "subject"])
        #expect(header.fields[0].raw.text == "Received: from a.test by b.test;\r\n\tMon, 1 Jan 2024 10:00:00 +0000\r\n")
        #expect(header.fields[2].unfoldedValue == " mary@x.test,  jdoe@example.org")
        #expect(header.bytes == block)
        // The fields tile the block exactly.
        #expect(header.fields.map(\.raw.text).joined() == Self.sample)
        var offset = 0
        for field in header.fields {
            #expect(field.raw.firstByteAddress == block.firstByteAddress.map { $0 + UInt(offset) })
            offset += field.raw.readableBytes
        }
    }

    @Test("fields(named:) and count(named:) ignore case")
    func lookup() throws {
        let header = try MessageHeader.parse(buffer(Self.sample))
        #expect(header.count(named: "subject") == 2)
        #expect(header.fields(named: "subject").map(\.unfoldedValue) == [" Hi", " again"])
        #expect(header.count(named: "cc") == 0)
        #expect(header.fields(named: "cc").isEmpty)
        #expect(header.count(named: "from") == 1)
    }

    @Test("an empty block is a header without fields")
    func empty() throws {
        let header = try MessageHeader.parse(ByteBuffer())
        #expect(header.fields.isEmpty)
        #expect(header.bytes.readableBytes == 0)
    }

    @Test("the last field may lack its CRLF")
    func lastFieldWithoutCRLF() throws {
        let header = try MessageHeader.parse(buffer("A: 1\r\nB: 2"))
        #expect(header.fields.count == 2)
        #expect(header.fields[1].raw.text == "B: 2")
        #expect(header.fields[1].rawValue.text == " 2")
    }

    @Test("a folded last field without CRLF, and a white-space-only continuation line")
    func foldedEnds() throws {
        let header = try MessageHeader.parse(buffer("A: 1\r\n \r\n\tz"))
        #expect(header.fields.count == 1)
        #expect(header.fields[0].unfoldedValue == " 1 \tz")
    }

    @Test("obs white space before the colon")
    func obsSpace() throws {
        let header = try MessageHeader.parse(buffer("From : a@b.test\r\nTo\t: c@d.test\r\n"))
        #expect(header.fields.map(\.name) == ["From", "To"])
        #expect(header.count(named: "from") == 1)
    }

    @Test("8-bit UTF-8 values (RFC 6532)")
    func utf8() throws {
        let header = try MessageHeader.parse(buffer("Subject: 日本語\r\nFrom: Jöran <j@bücher.example>\r\n"))
        #expect(header.fields[0].unfoldedValue == " 日本語")
        #expect(try header.authorMailbox().domain == "bücher.example")
    }

    @Test("a line without a colon names its line number")
    func withoutColon() {
        do {
            _ = try MessageHeader.parse(buffer("A: 1\r\nB: 2\r\n 2b\r\nnot a field\r\n"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .headerWithoutColon)
            #expect(error.reason.contains("line 4"))
        }
    }

    @Test("a continuation before any field")
    func continuationFirst() {
        #expect(throws: MailMessageError.continuationWithoutField) {
            try MessageHeader.parse(buffer(" folded: x\r\nA: b\r\n"))
        }
    }

    @Test("an empty line inside the block")
    func emptyLine() {
        do {
            _ = try MessageHeader.parse(buffer("A: 1\r\n\r\nB: 2\r\n"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .headerWithoutColon)
            #expect(error.reason.contains("line 2"))
            #expect(error.reason.contains("empty"))
        }
    }

    @Test("invalid names")
    func invalidNames() {
        for block in [": x\r\n", "A: 1\r\nBad Name: x\r\n", "A\u{7F}: x\r\n", "Ä: x\r\n"] {
            #expect(throws: MailMessageError.invalidHeaderName) { try MessageHeader.parse(buffer(block)) }
        }
    }

    @Test("NUL anywhere, with its offset")
    func nul() {
        for (block, offset) in [("A: 1\r\nB: \u{0}\r\n", 9), ("\u{0}A: 1\r\n", 0), ("A: 1\r\n \u{0}\r\n", 7)] {
            do {
                _ = try MessageHeader.parse(buffer(block))
                Issue.record("expected an error for \(block.debugDescription)")
            } catch {
                #expect(error.code == .nulByte)
                #expect(error.reason.contains("offset \(offset)"))
            }
        }
    }

    @Test("the size limit")
    func sizeLimit() throws {
        let limits = MailMessageLimits(maxHeaderBytes: 12, maxHeaderFields: 10)
        _ = try MessageHeader.parse(buffer("A: 1234567\r\n"), limits: limits)  // exactly 12 bytes
        #expect(throws: MailMessageError.headerTooLarge) {
            try MessageHeader.parse(buffer("A: 12345678\r\n"), limits: limits)
        }
    }

    @Test("the field count limit")
    func fieldLimit() throws {
        let limits = MailMessageLimits(maxHeaderBytes: 1000, maxHeaderFields: 3)
        _ = try MessageHeader.parse(buffer("A: 1\r\nB: 2\r\nC: 3\r\n"), limits: limits)
        #expect(throws: MailMessageError.tooManyHeaderFields) {
            try MessageHeader.parse(buffer("A: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n"), limits: limits)
        }
    }

    @Test("the default limits")
    func defaults() {
        #expect(MailMessageLimits.default.maxHeaderBytes == 1 << 20)
        #expect(MailMessageLimits.default.maxHeaderFields == 1000)
    }

    @Test("a 1000-field header parses, field 1001 does not")
    func manyFields() throws {
        let text = (0..<1000).map { "X-\($0): \($0)\r\n" }.joined()
        #expect(try MessageHeader.parse(buffer(text)).fields.count == 1000)
        #expect(throws: MailMessageError.tooManyHeaderFields) {
            try MessageHeader.parse(buffer(text + "Y: 1\r\n"))
        }
    }

    @Test("a parsed field equals the same bytes parsed alone")
    func sameAsSingleField() throws {
        let header = try MessageHeader.parse(buffer(Self.sample))
        for field in header.fields {
            let alone = try HeaderField(raw: field.raw)
            #expect(alone == field)
            #expect(alone.nameLength == field.nameLength)
            #expect(alone.valueOffset == field.valueOffset)
        }
    }
}
