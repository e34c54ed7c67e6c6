import NIOCore

/// Finds the end of DATA content and removes stuffed dots (RFC 5321 §4.5.2), keeping state across reads.
///
/// Only CRLF starts a line: a bare LF followed by "." is content, never the end mark, so that a message cannot end
/// earlier here than at a next hop that reads it differently (SMTP smuggling).
struct DataUnstuffer: Sendable {
    /// The next byte starts a line (DATA's own CRLF counts).
    private var atLineStart = true
    /// The last byte handed out was a CR, so an LF first in the next read ends a line.
    private var afterCR = false

    /// The next `.messageData` or `.messageEnd`, or nil when more bytes are needed to decide.
    mutating func next(from buffer: inout ByteBuffer) -> SMTPServerFramer.Frame? {
        while buffer.readableBytes > 0 {
            let (length, dotFollows) = scan(buffer)
            if length > 0 {
                guard let content = buffer.readSlice(length: length) else { return nil }
                return .messageData(content)
            }
            // A dot starts the line at the reader index. ".\r\n" ends the content; any other dot is removed.
            guard dotFollows else { return nil }
            let view = buffer.readableBytesView
            let start = view.startIndex
            if view.count >= 2 && view[start + 1] == .cr {
                guard view.count >= 3 else { return nil }
                if view[start + 2] == .lf {
                    buffer.moveReaderIndex(forwardBy: 3)
                    self = DataUnstuffer()
                    return .messageEnd
                }
            } else if view.count < 2 {
                return nil
            }
            buffer.moveReaderIndex(forwardBy: 1)
            atLineStart = false
            afterCR = false
        }
        return nil
    }

    /// How many bytes from the reader index are plain content, and whether a line-start dot follows them.
    /// Updates the line state to the position after those bytes.
    private mutating func scan(_ buffer: ByteBuffer) -> (length: Int, dotFollows: Bool) {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < bytes.count {
                if atLineStart {
                    if bytes[index] == .dot {
                        return (index, true)
                    }
                    atLineStart = false
                }
                guard let lf = bytes.firstLineFeed(from: index) else {
                    afterCR = bytes[bytes.count - 1] == .cr
                    return (bytes.count, false)
                }
                atLineStart = lf > index ? bytes[lf - 1] == .cr : afterCR
                afterCR = false
                index = lf + 1
            }
            return (bytes.count, false)
        }
    }
}
