import SMTPProtocol
import Testing

@Suite("xtext (RFC 3461 §4)")
struct XTextTests {
    @Test func encodesOutsidePrintableAndPlusAndEquals() {
        #expect(XText.encode("mx.example") == "mx.example")
        #expect(XText.encode("a b+c=d") == "a+20b+2Bc+3Dd")
        #expect(XText.encode("é") == "+C3+A9")
        #expect(XText.encode("[UNAVAILABLE]") == "[UNAVAILABLE]")
    }

    @Test func decodesEitherCaseAndRefusesBrokenEscapes() {
        #expect(XText.decode("a+20b+2bc") == "a b+c")
        #expect(XText.decode("+C3+A9") == "é")
        #expect(XText.decode("a+2") == nil)
        #expect(XText.decode("a+ZZ") == nil)
    }

    @Test func roundTripsEveryByteValue() {
        let text = String(decoding: (1...255).map { UInt8($0) }.filter { $0 < 0x80 }, as: UTF8.self) + "ünïcödé"
        #expect(XText.decode(XText.encode(text)) == text)
    }
}
