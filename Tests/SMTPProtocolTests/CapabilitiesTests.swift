import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("EHLO capabilities")
struct CapabilitiesTests {
    static let postfix = SMTPReply(
        code: 250, nil,
        [
            "mx.example.com", "PIPELINING", "SIZE 10240000", "VRFY", "ETRN", "STARTTLS", "AUTH PLAIN LOGIN",
            "AUTH=PLAIN LOGIN",
            "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING", "XCLIENT NAME ADDR PROTO HELO",
            "XFORWARD NAME ADDR",
        ])

    @Test func parsesAPostfixEHLO() {
        let capabilities = SMTPCapabilities(ehloReply: Self.postfix)
        #expect(capabilities.pipelining && capabilities.startTLS && capabilities.enhancedStatusCodes)
        #expect(capabilities.eightBitMIME && capabilities.dsn && capabilities.smtpUTF8 && capabilities.chunking)
        #expect(!capabilities.binaryMIME)
        #expect(capabilities.size == 10_240_000)
        #expect(capabilities.auth == ["PLAIN", "LOGIN"])
        #expect(capabilities.xclient == ["NAME", "ADDR", "PROTO", "HELO"])
        #expect(capabilities.xforward == ["NAME", "ADDR"])
        #expect(capabilities.other == ["VRFY", "ETRN", "AUTH=PLAIN LOGIN"])
    }

    @Test func greetingLineIsNotAnExtension() {
        let capabilities = SMTPCapabilities(ehloReply: SMTPReply(code: 250, nil, "PIPELINING"))
        #expect(capabilities == SMTPCapabilities())
    }

    @Test(arguments: [
        ("SIZE", 0), ("SIZE 0", 0), ("size 512", 512), ("SIZE 99999999999999999999999", 0), ("SIZE x", 0),
    ])
    func sizes(line: String, size: Int) {
        #expect(SMTPCapabilities(ehloReply: SMTPReply(code: 250, nil, ["mx", line])).size == size)
    }

    @Test func writesAndReadsBack() throws {
        var capabilities = SMTPCapabilities()
        capabilities.pipelining = true
        capabilities.chunking = true
        capabilities.size = 0
        capabilities.auth = ["PLAIN"]
        capabilities.xclient = ["ADDR"]
        capabilities.other = ["VRFY"]
        let reply = capabilities.ehloReply(domain: "signet.example", greeting: "hello")
        #expect(
            String(buffer: reply.encoded())
                == "250-signet.example hello\r\n250-PIPELINING\r\n250-SIZE\r\n250-AUTH PLAIN\r\n250-CHUNKING\r\n250-XCLIENT ADDR\r\n250 VRFY\r\n"
        )
        #expect(capabilities.ehloReply(domain: "d", greeting: "").lines.first == "d")
        var encoded = reply.encoded()
        var parser = SMTPReplyParser()
        #expect(SMTPCapabilities(ehloReply: try #require(try parser.parse(&encoded))) == capabilities)
        #expect(SMTPCapabilities().ehloReply(domain: "d", greeting: "g") == SMTPReply(code: 250, nil, "d g"))
    }

    @Test func intersection() {
        var ours = SMTPCapabilities()
        ours.pipelining = true
        ours.chunking = true
        ours.smtpUTF8 = true
        ours.size = 1000
        ours.auth = ["PLAIN", "LOGIN"]
        ours.xclient = ["ADDR", "NAME"]
        ours.other = ["VRFY"]
        let theirs = SMTPCapabilities(ehloReply: Self.postfix)
        let both = ours.intersection(theirs)
        #expect(both.pipelining && both.chunking && both.smtpUTF8)
        #expect(!both.startTLS && !both.dsn)
        #expect(both.size == 1000)
        #expect(both.auth == ["PLAIN", "LOGIN"])
        #expect(both.xclient == ["ADDR", "NAME"])
        #expect(both.xforward == nil)
        #expect(both.other == ["VRFY"])
        var unlimited = SMTPCapabilities()
        unlimited.size = 0
        var limited = SMTPCapabilities()
        limited.size = 50
        #expect(unlimited.intersection(limited).size == 50)
        #expect(limited.intersection(unlimited).size == 50)
        #expect(unlimited.intersection(unlimited).size == 0)
        #expect(limited.intersection(SMTPCapabilities()).size == nil)
    }
}
