import NIOCore
import SMTPProtocol
import Testing

/// Inputs the fuzzers found, kept as tests.
@Suite struct ReplyFuzzFindingsTests {
    /// A bare CR inside a reply line: the parser drops it as the writer does, so a reply passed on to the client
    /// is the reply received (SMTPReplyFuzzer's round trip).
    @Test func bareCRInsideAReplyLineRoundTrips() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(bytes: Array("100-A@10\r200\n100\n".utf8))
        let reply = try #require(try parser.parse(&buffer))
        #expect(reply.lines == ["A@10200", ""])
        var again = reply.encoded()
        var second = SMTPReplyParser()
        #expect(try second.parse(&again) == reply)
    }

    /// A line whose text starts with a space, in a reply with an enhanced code: the writer puts the code and one
    /// space before it, so the parser removes only that one space (it used to remove all of them).
    @Test func leadingSpaceOfTheTextSurvivesTheEnhancedCode() throws {
        var parser = SMTPReplyParser()
        var buffer = ByteBuffer(bytes: Array("250-2.0.0\r\n250-  indented\r\n250 2.0.0  two spaces\r\n".utf8))
        let reply = try #require(try parser.parse(&buffer))
        #expect(reply.lines == ["", "  indented", " two spaces"])
        var again = reply.encoded()
        var second = SMTPReplyParser()
        #expect(try second.parse(&again) == reply)
    }
}
