import FuzzSupport
import NIOCore
import SMTPProtocol

/// The next hop's replies: parsed whole or as they trickle in, the replies (or the error) must be the same, and
/// a parsed reply written out and parsed again is itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = replies([input.whole])
    let chunked = replies(input.chunks())
    fuzzCheck(
        whole.replies == chunked.replies && whole.failed == chunked.failed, "whole \(whole) != chunked \(chunked)")
    for reply in whole.replies {
        let again = replies([reply.encoded()])
        fuzzCheck(again.replies == [reply], "\(reply) re-parsed as \(again)")
    }
    return 0
}

private func replies(_ chunks: [ByteBuffer]) -> (replies: [SMTPReply], failed: Bool) {
    var parser = SMTPReplyParser()
    var buffer = ByteBuffer()
    var result: [SMTPReply] = []
    for chunk in chunks {
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        do {
            while let reply = try parser.parse(&buffer) { result.append(reply) }
        } catch {
            return (result, true)
        }
    }
    return (result, false)
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzSMTPReply(data, size) }
