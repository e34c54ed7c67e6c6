import NIOCore

/// Dot-stuffs message content for DATA (RFC 5321 §4.5.2) chunk by chunk; `finish` writes the end-of-data mark,
/// completing a last line that lacks its CRLF.
///
/// The output is slices of the input plus shared one-byte "." buffers: the content is cut only before a line-start
/// dot. Content is expected with CRLF line endings: a bare LF does not start a line here, as in `SMTPServerFramer`,
/// so normalize bare LFs first (a next hop that treats them as line ends would otherwise see unstuffed dots).
public struct DotStuffer: Sendable {
    private var atLineStart = true
    private var afterCR = false
    private var isEmpty = true

    private static let dot = ByteBuffer(string: ".")
    private static let endMark = ByteBuffer(string: ".\r\n")
    private static let lineFeedAndEndMark = ByteBuffer(string: "\n.\r\n")
    private static let lineEndAndEndMark = ByteBuffer(string: "\r\n.\r\n")

    public init() {}

    /// Appends `chunk`, stuffed, to `out`.
    public mutating func stuff(_ chunk: ByteBuffer, into out: inout [ByteBuffer]) {
        guard chunk.readableBytes > 0 else { return }
        isEmpty = false
        let dots = lineStartDots(chunk)
        var rest = chunk
        for offset in dots {
            let length = offset - (rest.readerIndex - chunk.readerIndex)
            if length > 0, let piece = rest.readSlice(length: length) { out.append(piece) }
            out.append(Self.dot)
        }
        if rest.readableBytes > 0 { out.append(rest) }
    }

    /// Offsets in `chunk` of dots that start a line; updates the line state to the end of `chunk`.
    private mutating func lineStartDots(_ chunk: ByteBuffer) -> [Int] {
        chunk.withUnsafeReadableBytes { bytes in
            var dots: [Int] = []
            var index = 0
            while index < bytes.count {
                if atLineStart && bytes[index] == .dot { dots.append(index) }
                atLineStart = false
                guard let lf = bytes.firstLineFeed(from: index) else {
                    afterCR = bytes[bytes.count - 1] == .cr
                    return dots
                }
                atLineStart = lf > index ? bytes[lf - 1] == .cr : afterCR
                afterCR = false
                index = lf + 1
            }
            return dots
        }
    }

    /// Appends the end-of-data mark: ".\r\n" after a complete line (or no content), else the missing line end first.
    public mutating func finish(into out: inout [ByteBuffer]) {
        if isEmpty || atLineStart {
            out.append(Self.endMark)
        } else if afterCR {
            out.append(Self.lineFeedAndEndMark)
        } else {
            out.append(Self.lineEndAndEndMark)
        }
        self = DotStuffer()
    }
}
