import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Command writing")
struct CommandWriterTests {
    @Test(arguments: [
        (SMTPCommand.ehlo("signet.example"), "EHLO signet.example\r\n"),
        (.helo("signet.example"), "HELO signet.example\r\n"),
        (.mail(from: "a@b", parameters: [SMTPParameter("size", "10")]), "MAIL FROM:<a@b> SIZE=10\r\n"),
        (
            .mail(from: "", parameters: [SMTPParameter("BODY", "8BITMIME"), SMTPParameter("SMTPUTF8")]),
            "MAIL FROM:<> BODY=8BITMIME SMTPUTF8\r\n"
        ),
        (.rcpt(to: "b@c", parameters: []), "RCPT TO:<b@c>\r\n"),
        (.data, "DATA\r\n"), (.bdat(size: 42, last: false), "BDAT 42\r\n"),
        (.bdat(size: 0, last: true), "BDAT 0 LAST\r\n"),
        (.rset, "RSET\r\n"), (.noop, "NOOP\r\n"), (.quit, "QUIT\r\n"), (.starttls, "STARTTLS\r\n"),
        (.vrfy("x"), "VRFY x\r\n"), (.expn("y"), "EXPN y\r\n"), (.help(nil), "HELP\r\n"),
        (.help("DATA"), "HELP DATA\r\n"),
        (.auth(mechanism: "PLAIN", initialResponse: "AGEAYg=="), "AUTH PLAIN AGEAYg==\r\n"),
        (.auth(mechanism: "LOGIN", initialResponse: nil), "AUTH LOGIN\r\n"),
        (.xclient([SMTPParameter("ADDR", "192.0.2.1")]), "XCLIENT ADDR=192.0.2.1\r\n"),
        (.xforward([SMTPParameter("NAME", "x"), SMTPParameter("PROTO", "ESMTP")]), "XFORWARD NAME=x PROTO=ESMTP\r\n"),
    ])
    func writes(command: SMTPCommand, expected: String) throws {
        #expect(String(buffer: command.encoded()) == expected)
        var line = command.encoded()
        line.moveWriterIndex(to: line.writerIndex - 2)
        #expect(try SMTPCommandParser.parse(line, allowUTF8: true) == command)
    }

    @Test func lineBreaksCannotInjectCommands() {
        let command = SMTPCommand.mail(from: "a@b>\r\nRCPT TO:<evil@x", parameters: [SMTPParameter("X", "1\r\nQUIT")])
        #expect(String(buffer: command.encoded()) == "MAIL FROM:<a@b>RCPT TO:<evil@x> X=1QUIT\r\n")
    }
}
