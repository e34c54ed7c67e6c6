import DKIMCore
import NIOCore
import Testing

@Suite("Header canonicalization")
struct HeaderCanonicalizerTests {
    static func canonical(_ field: String, _ algorithm: Canonicalization, signature: Bool = false) -> String {
        var sink = ByteArraySink()
        if signature {
            HeaderCanonicalizer.canonicalizeSignatureField(field: ByteBuffer(string: field), algorithm, into: &sink)
        } else {
            HeaderCanonicalizer.canonicalize(field: ByteBuffer(string: field), algorithm, into: &sink)
        }
        return String(decoding: sink.bytes, as: UTF8.self)
    }

    // RFC 6376 §3.4.5.
    @Test func rfcExample() {
        #expect(Self.canonical("A: X\r\n", .relaxed) == "a:X\r\n")
        #expect(Self.canonical("B : Y\t\r\n\tZ  \r\n", .relaxed) == "b:Y Z\r\n")
        #expect(Self.canonical("B : Y\t\r\n\tZ  \r\n", .simple) == "B : Y\t\r\n\tZ  \r\n")
    }

    @Test func missingCRLFIsAdded() {
        #expect(Self.canonical("Subject: hi", .simple) == "Subject: hi\r\n")
        #expect(Self.canonical("Subject: hi", .relaxed) == "subject:hi\r\n")
    }

    @Test func emptyValueAndUTF8() {
        #expect(Self.canonical("X-Empty:   \r\n", .relaxed) == "x-empty:\r\n")
        #expect(Self.canonical("Subject: Grüße \t aus  Köln\r\n", .relaxed) == "subject:Grüße aus Köln\r\n")
    }

    @Test func signatureFieldHasNoTrailingCRLF() {
        #expect(Self.canonical("DKIM-Signature: v=1; b=\r\n", .simple, signature: true) == "DKIM-Signature: v=1; b=")
        #expect(Self.canonical("DKIM-Signature: v=1;\r\n\tb=\r\n", .relaxed, signature: true) == "dkim-signature:v=1; b=")
    }
}
