import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Command parsing")
struct CommandParserTests {
    static func parse(_ line: String, utf8: Bool = false) throws(SMTPCommandError) -> SMTPCommand {
        try SMTPCommandParser.parse(ByteBuffer(string: line), allowUTF8: utf8)
    }

    static func reply(_ line: String, utf8: Bool = false) -> String? {
        do {
            _ = try parse(line, utf8: utf8)
            return nil
        } catch {
            return "\(error.reply.code) \(error.reply.enhancedCode.map { "\($0)" } ?? "-")"
        }
    }

    @Test(arguments: [
        ("EHLO client.example", SMTPCommand.ehlo("client.example")),
        ("ehlo [192.0.2.1]", .ehlo("[192.0.2.1]")),
        ("HeLo client", .helo("client")),
        ("EHLO  spaced  out ", .ehlo("spaced  out")),
        ("MAIL FROM:<a@example.com>", .mail(from: "a@example.com", parameters: [])),
        ("mail from:<>", .mail(from: "", parameters: [])),
        ("MAIL FROM: <a@example.com>", .mail(from: "a@example.com", parameters: [])),
        (
            "MAIL FROM:<a@example.com> size=100 BODY=8BITMIME",
            .mail(from: "a@example.com", parameters: [SMTPParameter("SIZE", "100"), SMTPParameter("BODY", "8BITMIME")])
        ),
        ("MAIL FROM:<@relay.example,@b.example:user@example.com>", .mail(from: "user@example.com", parameters: [])),
        ("MAIL FROM:<\"odd > local\"@example.com>", .mail(from: "\"odd > local\"@example.com", parameters: [])),
        ("MAIL FROM:<\"q\\\"uote\"@example.com>", .mail(from: "\"q\\\"uote\"@example.com", parameters: [])),
        ("MAIL FROM:<a@[IPv6:2001:db8::1]>", .mail(from: "a@[IPv6:2001:db8::1]", parameters: [])),
        (
            "MAIL FROM:<a@\(String(repeating: "l", count: 63)).x_y-z.example>",
            .mail(from: "a@\(String(repeating: "l", count: 63)).x_y-z.example", parameters: [])
        ),
        ("MAIL FROM:<first..last.@example.com>", .mail(from: "first..last.@example.com", parameters: [])),
        ("MAIL FROM:<a@b> SMTPUTF8", .mail(from: "a@b", parameters: [SMTPParameter("SMTPUTF8")])),
        (
            "MAIL FROM:<ü@bücher.example> SMTPUTF8",
            .mail(from: "ü@bücher.example", parameters: [SMTPParameter("SMTPUTF8")])
        ),
        ("RCPT TO:<b@example.org>", .rcpt(to: "b@example.org", parameters: [])),
        ("RCPT TO:<Postmaster>", .rcpt(to: "Postmaster", parameters: [])),
        ("rcpt to:<postmaster>", .rcpt(to: "postmaster", parameters: [])),
        (
            "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org",
            .rcpt(
                to: "b@example.org",
                parameters: [
                    SMTPParameter("NOTIFY", "SUCCESS,FAILURE"), SMTPParameter("ORCPT", "rfc822;b@example.org"),
                ])
        ),
        ("DATA", .data), ("data ", .data), ("RSET", .rset), ("QUIT", .quit), ("STARTTLS", .starttls),
        ("NOOP", .noop), ("NOOP anything at all", .noop),
        ("BDAT 0 LAST", .bdat(size: 0, last: true)), ("bdat 1048576", .bdat(size: 1_048_576, last: false)),
        ("BDAT 10 last", .bdat(size: 10, last: true)),
        ("BDAT 999999999999999999", .bdat(size: 999_999_999_999_999_999, last: false)),
        ("VRFY postmaster", .vrfy("postmaster")), ("EXPN list", .expn("list")),
        ("HELP", .help(nil)), ("HELP MAIL", .help("MAIL")),
        ("AUTH plain", .auth(mechanism: "PLAIN", initialResponse: nil)),
        ("AUTH PLAIN AGFsaWNlAHNlY3JldA==", .auth(mechanism: "PLAIN", initialResponse: "AGFsaWNlAHNlY3JldA==")),
        ("AUTH EXTERNAL =", .auth(mechanism: "EXTERNAL", initialResponse: "=")),
        (
            "XCLIENT NAME=mx.example ADDR=192.0.2.1",
            .xclient([SMTPParameter("NAME", "mx.example"), SMTPParameter("ADDR", "192.0.2.1")])
        ),
        ("xforward proto=ESMTP", .xforward([SMTPParameter("PROTO", "ESMTP")])),
    ])
    func valid(line: String, expected: SMTPCommand) throws {
        #expect(try Self.parse(line) == expected)
    }

    @Test(arguments: [
        ("", "500 5.5.2"), ("FOO", "500 5.5.2"), ("MAIL", "501 5.5.4"), ("HELO", "501 5.5.4"), ("EHLO   ", "501 5.5.4"),
        ("ETRN example.com", "502 5.5.1"), ("TURN", "502 5.5.1"), ("GET / HTTP/1.1", "500 5.5.2"),
        ("NOOP\0", "500 5.5.2"), ("NOOP\u{1B}", "500 5.5.2"), ("MA\rIL FROM:<a@b>", "500 5.5.2"),
        ("MAIL FROM:a@b", "501 5.5.4"), ("MAIL FROM:<a@b", "501 5.5.4"), ("MAIL TO:<a@b>", "501 5.5.4"),
        ("MAIL FROM:<a@b>SIZE=1", "501 5.5.4"), ("MAIL FROM:<a@b> SIZE=", "501 5.5.4"),
        ("MAIL FROM:<a@b> =1", "501 5.5.4"), ("MAIL FROM:<a@b> SIZE=1 size=2", "501 5.5.4"),
        ("MAIL FROM:<a@b> -X", "501 5.5.4"), ("MAIL FROM:<a@b> X=a=b", "501 5.5.4"),
        ("MAIL FROM:<user>", "501 5.1.7"), ("MAIL FROM:<a b@c>", "501 5.1.7"), ("MAIL FROM:<@a:>", "501 5.1.7"),
        ("MAIL FROM:<@a b:u@c>", "501 5.1.7"), ("MAIL FROM:<a@>", "501 5.1.7"), ("MAIL FROM:<a@b..c>", "501 5.1.7"),
        ("MAIL FROM:<a@[]>", "501 5.1.7"), ("MAIL FROM:<a@b.>", "501 5.1.7"), ("MAIL FROM:<a@.b>", "501 5.1.7"),
        ("MAIL FROM:<a@\(String(repeating: "l", count: 64)).example>", "501 5.1.7"),
        ("MAIL FROM:<\"open@b>", "501 5.5.4"), ("MAIL FROM:<a<b@c>", "501 5.1.7"),
        ("MAIL FROM:<ü@example.com>", "501 5.6.7"), ("RCPT TO:<b@bücher.example>", "501 5.6.7"),
        ("RCPT TO:<>", "501 5.1.3"), ("RCPT TO:<user>", "501 5.1.3"), ("RCPT FROM:<a@b>", "501 5.5.4"),
        ("DATA now", "501 5.5.4"), ("QUIT please", "501 5.5.4"), ("STARTTLS x", "501 5.5.4"),
        ("BDAT", "501 5.5.4"), ("BDAT -1", "501 5.5.4"), ("BDAT 1x", "501 5.5.4"), ("BDAT 10 FIRST", "501 5.5.4"),
        ("BDAT 1000000000000000000", "501 5.5.4"), ("BDAT 1 LAST more", "501 5.5.4"),
        ("VRFY", "501 5.5.4"), ("AUTH", "501 5.5.4"), ("AUTH PLAIN a b", "501 5.5.4"), ("AUTH PLAIN a:b", "501 5.5.2"),
        ("XCLIENT", "501 5.5.4"), ("XCLIENT NAME", "501 5.5.4"),
    ])
    func invalid(line: String, expected: String) {
        #expect(Self.reply(line) == expected)
    }

    @Test func malformedUTF8IsRefusedEvenWhenUTF8IsAllowed() {
        var line = ByteBuffer(string: "MAIL FROM:<")
        line.writeBytes([0xC3, 0x28])
        line.writeString("@example.com> SMTPUTF8")
        #expect(throws: SMTPCommandError.self) { try SMTPCommandParser.parse(line, allowUTF8: true) }
    }

    @Test func utf8AddressesFollowTheSessionState() throws {
        #expect(
            try Self.parse("RCPT TO:<ü@bücher.example>", utf8: true) == .rcpt(to: "ü@bücher.example", parameters: []))
        #expect(Self.reply("MAIL FROM:<a@b> X=ü") == "501 5.5.4")
        #expect(
            try Self.parse("MAIL FROM:<a@b> X=ü", utf8: true)
                == .mail(from: "a@b", parameters: [SMTPParameter("X", "ü")]))
    }

    @Test func malformedBDATClosesTheConnection() {
        do {
            _ = try Self.parse("BDAT lots")
            Issue.record("BDAT lots parsed")
        } catch {
            #expect(error.closesConnection)
        }
        #expect(throws: SMTPCommandError.self) { try Self.parse("FOO") }
    }

    /// Random bytes never crash the parser, and whatever parses writes back as something that parses the same.
    @Test func randomLinesNeverCrash() {
        var random = SplitMix64(seed: 7)
        let pieces = [
            "MAIL FROM:", "RCPT TO:", "<", ">", "@", "\"", "\\", " ", "BDAT ", "1", "LAST", "=", "a", ".", "ü", "\u{0}",
            ":", ",", "SIZE",
        ]
        for _ in 0..<5000 {
            var line = ByteBuffer()
            for _ in 0..<Int.random(in: 0..<12, using: &random) {
                if Int.random(in: 0..<10, using: &random) == 0 {
                    line.writeInteger(UInt8.random(in: 0...255, using: &random))
                } else {
                    line.writeString(pieces[Int.random(in: 0..<pieces.count, using: &random)])
                }
            }
            let allowUTF8 = Bool.random(using: &random)
            guard let command = try? SMTPCommandParser.parse(line, allowUTF8: allowUTF8) else { continue }
            var written = command.encoded()
            written.moveWriterIndex(to: written.writerIndex - 2)
            #expect((try? SMTPCommandParser.parse(written, allowUTF8: allowUTF8)) == command, "\(String(buffer: line))")
        }
    }
}
