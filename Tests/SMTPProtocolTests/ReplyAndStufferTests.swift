import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Replies, commands and dot-stuffing")
struct ReplyAndStufferTests {
    @Test func replyRoundTrip() throws {
        let reply = SMTPReply(code: 250, EnhancedStatusCode(2, 1, 0), ["first", "second"])
        #expect(String(buffer: reply.encoded()) == "250-2.1.0 first\r\n250 2.1.0 second\r\n")
        var buffer = reply.encoded()
        var parser = SMTPReplyParser()
        #expect(try parser.parse(&buffer) == reply)
        #expect(buffer.readableBytes == 0)
    }

    @Test func partialAndGarbageReplies() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(string: "250-mx.example\r\n250-PIPE")
        #expect(try parser.parse(&buffer) == nil)
        buffer.writeString("LINING\r\n250 CHUNKING\r\n")
        let ehlo = try #require(try parser.parse(&buffer))
        let capabilities = SMTPCapabilities(ehloReply: ehlo)
        #expect(capabilities.pipelining && capabilities.chunking && !capabilities.smtpUTF8)
        var bad = ByteBuffer(string: "hello\r\n")
        #expect(throws: SMTPReplyError.self) { try parser.parse(&bad) }
    }

    @Test func commandsWriteAndParseBack() throws {
        let commands: [SMTPCommand] = [
            .ehlo("a.example"), .mail(from: "", parameters: [SMTPParameter("BODY", "8BITMIME")]),
            .mail(from: "\"odd local\"@example.com", parameters: []), .rcpt(to: "b@example.org", parameters: []),
            .data, .bdat(size: 10, last: true), .rset, .quit,
        ]
        for command in commands {
            var buffer = ByteBuffer()
            command.write(into: &buffer)
            buffer.moveWriterIndex(to: buffer.writerIndex - 2)
            #expect(try SMTPCommandParser.parse(buffer, allowUTF8: false) == command)
        }
        #expect(
            try SMTPCommandParser.parse(ByteBuffer(string: "mail from: <@relay:user@example.com>"), allowUTF8: false)
                == .mail(from: "user@example.com", parameters: []))
        #expect(throws: SMTPCommandError.self) {
            try SMTPCommandParser.parse(ByteBuffer(string: "RCPT TO:<bü@example.com>"), allowUTF8: false)
        }
    }

    /// Stuffing then unstuffing gives back the content, whatever the chunking.
    @Test func stuffingRoundTrips() {
        var random = SplitMix64(seed: 5)
        let alphabet: [UInt8] = Array(".\r\n.a\r\n".utf8)
        for _ in 0..<300 {
            var content = (0..<Int(random.next() % 60)).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] }
            content += [0x0D, 0x0A]
            var stuffer = DotStuffer()
            var out: [ByteBuffer] = []
            var offset = 0
            while offset < content.count {
                let size = min(content.count - offset, 1 + Int(random.next() % 5))
                stuffer.stuff(ByteBuffer(bytes: content[offset..<offset + size]), into: &out)
                offset += size
            }
            stuffer.finish(into: &out)
            var wire = Array("DATA\r\n".utf8)
            for piece in out { wire += Array(piece.readableBytesView) }
            let frames = FramerTests.merged(FramerTests.frames(wire, chunks: [3]))
            let expected: [SMTPServerFramer.Frame] =
                content.isEmpty ? [.command(.data), .messageEnd] : [.command(.data), .messageData(ByteBuffer(bytes: content)), .messageEnd]
            #expect(frames == expected, "\(content)")
        }
    }
}
