import NIOCore

/// Dot-stuffs message content for DATA (RFC 5321 §4.5.2) chunk by chunk, with slices of the input and one-byte
/// "." buffers; `finish` writes the end-of-data mark, completing a last line that lacks its CRLF.
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var lastWasCR = false
    private var wroteAnything = false
    private static let dot = ByteBuffer(string: ".")

    public init() {}

    public mutating func stuff(_ chunk: ByteBuffer, into out: inout [ByteBuffer]) {
        var rest = chunk
        while rest.readableBytes > 0 {
            wroteAnything = true
            if atLineStart && rest.getInteger(at: rest.readerIndex, as: UInt8.self) == UInt8(ascii: ".") {
                out.append(Self.dot)
            }
            atLineStart = false
            // The next line start is after the next CRLF (the CR may have ended the previous piece).
            let view = rest.readableBytesView
            var cut = rest.readableBytes
            var searchFrom = view.startIndex
            while let lf = view[searchFrom...].firstIndex(of: UInt8(ascii: "\n")) {
                let crBefore = lf > view.startIndex ? view[lf - 1] == UInt8(ascii: "\r") : lastWasCR
                if crBefore {
                    cut = lf + 1 - view.startIndex
                    atLineStart = true
                    break
                }
                searchFrom = lf + 1
            }
            let piece = rest.readSlice(length: cut)!
            lastWasCR = piece.getInteger(at: piece.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r")
            out.append(piece)
        }
    }

    public mutating func finish(into out: inout [ByteBuffer]) {
        out.append(ByteBuffer(string: atLineStart || !wroteAnything ? ".\r\n" : "\r\n.\r\n"))
        atLineStart = true
        lastWasCR = false
        wroteAnything = false
    }
}
