import MailMessage
import NIOCore
import Testing

@Suite("HeaderField")
struct HeaderFieldTests {
    @Test("a simple field: name, raw value, unfolded value")
    func simple() throws {
        let field = try HeaderField(raw: buffer("Subject: Hello\r\n"))
        #expect(field.name == "Subject")
        #expect(field.nameLength == 7)
        #expect(field.valueOffset == 8)
        #expect(field.rawValue.text == " Hello")
        #expect(field.unfoldedValue == " Hello")
        #expect(field.raw.text == "Subject: Hello\r\n")
    }

    @Test("folding is kept in rawValue and removed by unfoldedValue")
    func folded() throws {
        let field = try HeaderField(raw: buffer("To: a@x.test,\r\n\tb@y.test,\r\n  c@z.test\r\n"))
        #expect(field.rawValue.text == " a@x.test,\r\n\tb@y.test,\r\n  c@z.test")
        #expect(field.unfoldedValue == " a@x.test,\tb@y.test,  c@z.test")
    }

    @Test("white space before the colon is tolerated and not part of the name")
    func obsWhiteSpaceBeforeColon() throws {
        let field = try HeaderField(raw: buffer("Subject \t: hi\r\n"))
        #expect(field.name == "Subject")
        #expect(field.nameLength == 7)
        #expect(field.valueOffset == 10)
        #expect(field.rawValue.text == " hi")
        #expect(field.hasName("subject"))
    }

    @Test("a field without its final CRLF")
    func noFinalCRLF() throws {
        let field = try HeaderField(raw: buffer("X-A: b"))
        #expect(field.rawValue.text == " b")
        #expect(field.unfoldedValue == " b")
    }

    @Test("empty values, with and without CRLF")
    func emptyValues() throws {
        for raw in ["X-Empty:\r\n", "X-Empty:"] {
            let field = try HeaderField(raw: buffer(raw))
            #expect(field.rawValue.readableBytes == 0)
            #expect(field.unfoldedValue == "")
            #expect(field.name == "X-Empty")
        }
    }

    @Test("hasName compares ASCII case-insensitively and by length")
    func hasName() throws {
        let field = try HeaderField(raw: buffer("DKIM-Signature: v=1\r\n"))
        #expect(field.hasName("dkim-signature"))
        #expect(field.hasName("DKIM-SIGNATURE"))
        #expect(!field.hasName("dkim-signatur"))
        #expect(!field.hasName("dkim-signaturee"))
        #expect(!field.hasName("dkim_signature"))
        #expect(!field.hasName(""))
        // Only ASCII letters fold: '@' (0x40) and '`' (0x60) differ by the same bit but are not letters.
        let odd = try HeaderField(raw: buffer("X@: 1\r\n"))
        #expect(odd.hasName("x@"))
        #expect(!odd.hasName("x`"))
    }

    @Test("8-bit UTF-8 in a value is allowed and decoded; invalid UTF-8 is replaced, not fatal")
    func utf8Values() throws {
        let field = try HeaderField(raw: buffer("Subject: Grüße\r\n"))
        #expect(field.unfoldedValue == " Grüße")
        let broken = try HeaderField(raw: buffer([0x58, 0x3A, 0x20, 0xFF, 0x0D, 0x0A]))
        #expect(broken.unfoldedValue == " \u{FFFD}")
    }

    @Test("the name is the bytes up to the colon, colons in the value are value")
    func colonsInValue() throws {
        let field = try HeaderField(raw: buffer("Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"))
        #expect(field.name == "Date")
        #expect(field.unfoldedValue == " Mon, 1 Jan 2024 10:00:00 +0000")
    }

    @Test("a bare CR inside the value is value, not a line end")
    func bareCRInValue() throws {
        let field = try HeaderField(raw: buffer("X: a\rb\r\n"))
        #expect(field.rawValue.text == " a\rb")
        #expect(field.unfoldedValue == " a\rb")
    }

    @Test("rawValue and raw are slices of the input (no copy)")
    func zeroCopy() throws {
        var input = buffer("PADDING")
        input.writeString("Subject: zero copy\r\n")
        input.moveReaderIndex(forwardBy: 7)
        let field = try HeaderField(raw: input)
        #expect(field.raw.firstByteAddress == input.firstByteAddress)
        #expect(field.rawValue.firstByteAddress == input.firstByteAddress.map { $0 + 8 })
    }

    @Test(
        "invalid single fields are refused with the right code",
        arguments: [
            ("", MailMessageError.headerWithoutColon),
            ("\r\n", .headerWithoutColon),
            ("No colon here\r\n", .headerWithoutColon),
            (": empty name\r\n", .invalidHeaderName),
            ("Two Words: x\r\n", .invalidHeaderName),
            ("Naïve: x\r\n", .invalidHeaderName),
            (" Folded: x\r\n", .continuationWithoutField),
            ("\tX: y\r\n", .continuationWithoutField),
            ("A: b\r\nB: c\r\n", .tooManyHeaderFields),
            ("A: b\r\n\r\n", .headerWithoutColon),
            ("A: b\u{0}c\r\n", .nulByte),
            ("A\u{0}: b\r\n", .nulByte),
        ]
    )
    func invalid(raw: String, expected: MailMessageError) {
        #expect(throws: expected) { try HeaderField(raw: buffer(raw)) }
    }

    @Test("error reasons name the problem")
    func reasons() {
        do {
            _ = try HeaderField(raw: buffer("A: b\u{0}\r\n"))
            Issue.record("expected an error")
        } catch {
            #expect(error.reason.contains("offset 4"))
            #expect(error.description.hasPrefix("nulByte: "))
        }
    }

    @Test("errors compare by code and print code and reason")
    func errorValues() {
        let error = MailMessageError(.invalidAddress, "no '@' in \"joe\"")
        #expect(error == MailMessageError.invalidAddress)
        #expect(error != MailMessageError.noFromHeader)
        #expect(error.description == "invalidAddress: no '@' in \"joe\"")
        #expect(MailMessageError.Code.headerTooLarge.description == "headerTooLarge")
        #expect(Set([error, MailMessageError.invalidAddress]).count == 1)
    }

    @Test("fields are equal when their bytes are")
    func hashable() throws {
        let a = try HeaderField(raw: buffer("X: 1\r\n"))
        var padded = buffer("zzX: 1\r\n")
        padded.moveReaderIndex(forwardBy: 2)
        let b = try HeaderField(raw: padded)
        #expect(a == b)
        #expect(Set([a, b]).count == 1)
    }
}
