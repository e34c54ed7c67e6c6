import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Replies and enhanced status codes")
struct ReplyTests {
    @Test(arguments: [
        ("5.7.1", EnhancedStatusCode(5, 7, 1)), ("2.0.0", EnhancedStatusCode(2, 0, 0)),
        ("4.123.999", EnhancedStatusCode(4, 123, 999)),
    ])
    func enhancedCodeParses(text: String, expected: EnhancedStatusCode) {
        #expect(EnhancedStatusCode(Substring(text)) == expected)
        #expect(expected.description == text)
    }

    @Test(arguments: [
        "", "5", "5.7", "5.7.1.2", "3.0.0", "1.2.3", "55.1.1", "5.1234.1", "5..1", "5.a.1", "+5.1.1", "5.1.1 ",
    ])
    func enhancedCodeRejects(text: String) {
        #expect(EnhancedStatusCode(Substring(text)) == nil)
    }

    @Test func writesSingleAndMultiLine() {
        #expect(String(buffer: SMTPReply(code: 250, nil, "ok").encoded()) == "250 ok\r\n")
        #expect(String(buffer: SMTPReply(code: 250, nil, ["a", "b"]).encoded()) == "250-a\r\n250 b\r\n")
        #expect(
            String(buffer: SMTPReply(code: 250, EnhancedStatusCode(2, 1, 0), ["a", "b"]).encoded())
                == "250-2.1.0 a\r\n250 2.1.0 b\r\n")
        #expect(String(buffer: SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "").encoded()) == "250 2.0.0\r\n")
        #expect(SMTPReply(code: 220, nil, []).lines == [""])
        #expect(String(buffer: SMTPReply(code: 220, nil, []).encoded()) == "220 \r\n")
    }

    @Test func lineBreaksInTextCannotStartAnotherReply() {
        let reply = SMTPReply(code: 250, nil, "hello\r\n250 injected\nx\r")
        #expect(String(buffer: reply.encoded()) == "250 hello250 injectedx\r\n")
    }

    @Test func classes() {
        #expect(SMTPReply(code: 354, nil, "").isPositive)
        #expect(SMTPReply(code: 250, nil, "").isPositive)
        #expect(SMTPReply(code: 451, nil, "").isTransientFailure && !SMTPReply(code: 451, nil, "").isPositive)
        #expect(SMTPReply(code: 554, nil, "").isPermanentFailure)
        #expect(!SMTPReply(code: 199, nil, "").isPositive)
    }

    @Test func commonReplies() {
        #expect(String(buffer: SMTPReply.ok().encoded()) == "250 2.0.0 Ok\r\n")
        #expect(SMTPReply.badSequence("x").code == 503)
        #expect(SMTPReply.lineTooLong.enhancedCode == EnhancedStatusCode(5, 5, 6))
        #expect(SMTPReply.serviceNotAvailable("bye").code == 421)
    }
}
