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
}
