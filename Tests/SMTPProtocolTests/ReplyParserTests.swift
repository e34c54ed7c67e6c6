import NIOCore
import NIOEmbedded
import NIOTestUtils
import Testing

@testable import SMTPProtocol

@Suite("Reply parsing and the NIO reply decoder")
struct ReplyParserTests {
    static let ehlo = "250-mx.example.com Hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 CHUNKING\r\n"

    @Test func roundTrips() throws {
        let replies = [
            SMTPReply(code: 250, EnhancedStatusCode(2, 1, 0), ["first", "second"]),
            SMTPReply(code: 220, nil, "mx ESMTP"), SMTPReply(code: 554, EnhancedStatusCode(5, 7, 1), ""),
            SMTPReply(code: 250, nil, ["mx", "PIPELINING", "8BITMIME"]),
        ]
        var buffer = ByteBuffer()
        for reply in replies { reply.write(into: &buffer) }
        var parser = SMTPReplyParser()
        for reply in replies { #expect(try parser.parse(&buffer) == reply) }
        #expect(buffer.readableBytes == 0)
        #expect(try parser.parse(&buffer) == nil)
    }

    /// A reply split anywhere is returned once, complete, and nothing is consumed before that.
    @Test func splitAtEveryPosition() throws {
        let bytes = Array(Self.ehlo.utf8)
        for cut in 0...bytes.count {
            var parser = SMTPReplyParser()
            var buffer = ByteBuffer(bytes: bytes[..<cut])
            let early = try parser.parse(&buffer)
            if cut < bytes.count {
                #expect(early == nil)
                #expect(buffer.readableBytes == cut)
                buffer.writeBytes(bytes[cut...])
                let reply = try #require(try parser.parse(&buffer))
                #expect(reply.lines == ["mx.example.com Hello", "PIPELINING", "SIZE 1000", "CHUNKING"])
            } else {
                #expect(early?.lines.count == 4)
            }
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func oneByteAtATime() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer()
        var replies: [SMTPReply] = []
        for byte in (Self.ehlo + "221 2.0.0 bye\r\n").utf8 {
            buffer.writeInteger(byte)
            if let reply = try parser.parse(&buffer) { replies.append(reply) }
        }
        #expect(replies.count == 2)
        #expect(replies[1] == SMTPReply(code: 221, EnhancedStatusCode(2, 0, 0), "bye"))
    }

    @Test(
        arguments: [
            ("250 2.1.0 Ok\r\n", EnhancedStatusCode(2, 1, 0), ["Ok"]),
            ("250 Ok\r\n", nil, ["Ok"]),
            // Another class than the reply code's: not an enhanced code of this reply.
            ("250 5.1.0 odd\r\n", nil, ["5.1.0 odd"]),
            // Only the first line decides; a later different code stays in the text, so writing back loses nothing.
            ("550-5.1.1 a\r\n550 5.1.1 b\r\n", EnhancedStatusCode(5, 1, 1), ["a", "b"]),
            ("550-5.1.1 a\r\n550 5.7.1 b\r\n", EnhancedStatusCode(5, 1, 1), ["a", "5.7.1 b"]),
            ("550-a\r\n550 5.7.1 b\r\n", nil, ["a", "5.7.1 b"]),
            ("250\r\n", nil, [""]),
            ("250 \r\n", nil, [""]),
            ("250-\r\n250 x\r\n", nil, ["", "x"]),
            ("250 bare LF\n", nil, ["bare LF"]),
        ] as [(String, EnhancedStatusCode?, [String])])
    func enhancedCodes(input: String, code: EnhancedStatusCode?, lines: [String]) throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(string: input)
        let reply = try #require(try parser.parse(&buffer))
        #expect(reply.enhancedCode == code)
        #expect(reply.lines == lines)
    }

    @Test(arguments: [
        ("hello\r\n", SMTPReplyError.Code.malformedLine), ("25\r\n", .malformedLine), ("2500 x\r\n", .malformedLine),
        ("099 x\r\n", .malformedLine), ("600 x\r\n", .malformedLine), ("25a x\r\n", .malformedLine),
        ("250_x\r\n", .malformedLine), ("\r\n", .malformedLine), ("250-a\r\n251 b\r\n", .inconsistentCodes),
        ("250-a\r\nxyz\r\n", .malformedLine),
    ])
    func garbage(input: String, code: SMTPReplyError.Code) {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(string: input)
        #expect(throws: SMTPReplyError(code)) { try parser.parse(&buffer) }
    }

    @Test func lineLimits() throws {
        var parser = SMTPReplyParser()
        var endless = ByteBuffer(string: "250 " + String(repeating: "x", count: 4093))
        #expect(try parser.parse(&endless) == nil)  // 4097 bytes: could still be 4096 + CR
        endless.writeString("x")
        #expect(throws: SMTPReplyError(.lineTooLong)) { try parser.parse(&endless) }

        var complete = ByteBuffer(string: "250 " + String(repeating: "x", count: 5000) + "\r\n")
        #expect(throws: SMTPReplyError(.lineTooLong)) { try SMTPReplyParser().parseCopy(&complete) }

        var atLimit = ByteBuffer(string: "250 " + String(repeating: "x", count: 4092) + "\r\n")
        #expect(try SMTPReplyParser().parseCopy(&atLimit)?.lines.first?.count == 4092)

        var many = ByteBuffer(string: String(repeating: "250-x\r\n", count: 20))
        var small = SMTPReplyParser(maximumLineLength: 100, maximumLineCount: 10)
        #expect(throws: SMTPReplyError(.tooManyLines)) { try small.parse(&many) }
    }

    @Test func decoderVerifier() throws {
        let pairs: [(String, [SMTPReply])] = [
            (Self.ehlo, [SMTPReply(code: 250, nil, ["mx.example.com Hello", "PIPELINING", "SIZE 1000", "CHUNKING"])]),
            ("220 mx ESMTP\r\n250 2.0.0 Ok\r\n", [SMTPReply(code: 220, nil, "mx ESMTP"), .ok()]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(stringInputOutputPairs: pairs) { SMTPReplyDecoder() }
    }

    @Test func decoderInAChannel() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(SMTPReplyDecoder()))
        try channel.writeInbound(ByteBuffer(string: "250-a\r\n"))
        #expect(try channel.readInbound(as: SMTPReply.self) == nil)
        try channel.writeInbound(ByteBuffer(string: "250 b\r\n354 go\r\n"))
        #expect(try channel.readInbound(as: SMTPReply.self) == SMTPReply(code: 250, nil, ["a", "b"]))
        #expect(try channel.readInbound(as: SMTPReply.self) == SMTPReply(code: 354, nil, "go"))
        #expect(throws: (any Error).self) { try channel.writeInbound(ByteBuffer(string: "garbage\r\n")) }
        _ = try? channel.finish()
    }
}

extension SMTPReplyParser {
    /// Parses with a fresh copy of the parser, for one-off checks.
    func parseCopy(_ buffer: inout ByteBuffer) throws(SMTPReplyError) -> SMTPReply? {
        var copy = self
        return try copy.parse(&buffer)
    }
}
