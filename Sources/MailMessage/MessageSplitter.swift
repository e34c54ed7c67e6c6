import NIOCore

/// Separates the header section from the body as chunks arrive (input is already CRLF-normalized).
///
/// Only header bytes are ever held: a header that arrives in one chunk is a slice of it, one spread over several
/// chunks is gathered into one buffer (checked against `maxHeaderBytes` before anything is copied). Once the blank
/// line is seen, every chunk is returned as it came. The blank line itself belongs to neither part; a message that
/// begins with CRLF has an empty header and everything after that CRLF is body.
public struct MessageSplitter: Sendable {
    /// What a chunk produced.
    public enum Output: Sendable {
        /// The header is not complete yet.
        case needMoreData
        /// The header is complete; `bodyStart` is the rest of this chunk (maybe empty).
        case header(MessageHeader, bodyStart: ByteBuffer)
        /// A chunk of body, unchanged.
        case body(ByteBuffer)
    }

    private enum State {
        case header
        case body
        case finished
    }

    private let limits: MailMessageLimits
    private var state = State.header
    /// Header bytes of earlier chunks (nil until a chunk ends inside the header).
    private var gathered: ByteBuffer? = nil
    /// How many bytes of CR LF CR LF end the input so far. It starts at 2, as if a CRLF came before the message,
    /// so that a message beginning with CRLF ends its (empty) header there.
    private var matched = 2

    public init(limits: MailMessageLimits = .default) {
        self.limits = limits
    }

    /// Feeds the next chunk. After an error the rest of the input passes through as body, so a caller that relays
    /// unsigned can still forward it.
    public mutating func feed(_ chunk: ByteBuffer) throws(MailMessageError) -> Output {
        guard case .header = state else { return .body(chunk) }
        let count = chunk.readableBytes
        guard count > 0 else { return .needMoreData }
        let matchedBefore = self.matched
        let (end, matched) = chunk.withUnsafeReadableBytes { bytes in
            Self.findBlankLine(bytes, matched: matchedBefore)
        }
        let have = gathered?.readableBytes ?? 0

        guard let end else {
            // Header bytes are at least everything but a CRLF of the blank line that may come next.
            guard have + count - 2 <= limits.maxHeaderBytes else {
                state = .body
                gathered = nil
                throw MailMessageError(
                    .headerTooLarge,
                    "the header section passed \(limits.maxHeaderBytes) bytes (the limit) without ending"
                )
            }
            if var header = gathered {
                gathered = nil  // keeps `header` the only reference, so appending does not copy twice
                header.writeImmutableBuffer(chunk)
                gathered = header
            } else {
                gathered = chunk  // no copy yet: a later append copies the slice once
            }
            self.matched = matched
            return .needMoreData
        }

        state = .body
        // The blank line is the last 2 bytes before `end`; they may reach back into the gathered bytes.
        let headerLength = have + end - 2
        let headerBytes: ByteBuffer
        // Slices in range: 0 <= headerLength, and it is at most the bytes gathered plus this chunk.
        if var header = gathered {
            gathered = nil  // `header` is now the only reference: trimming or appending copies nothing more
            if headerLength <= have {
                header.moveWriterIndex(to: header.readerIndex + headerLength)
            } else {
                header.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex, length: headerLength - have)!)
            }
            headerBytes = header
        } else {
            headerBytes = chunk.getSlice(at: chunk.readerIndex, length: headerLength)!
        }
        let header = try MessageHeader.parse(headerBytes, limits: limits)
        return .header(header, bodyStart: chunk.getSlice(at: chunk.readerIndex + end, length: count - end)!)
    }

    /// At the end of input: the header of a message that never had the blank line (a message without a body),
    /// else nil.
    public mutating func finish() throws(MailMessageError) -> MessageHeader? {
        guard case .header = state else {
            state = .finished
            return nil
        }
        state = .finished
        let header = gathered ?? ByteBuffer()
        gathered = nil
        return try MessageHeader.parse(header, limits: limits)
    }

    /// Index just past the first CR LF CR LF, counting `matched` bytes of it already seen, and the new match count.
    private static func findBlankLine(_ bytes: UnsafeRawBufferPointer, matched: Int) -> (end: Int?, matched: Int) {
        guard let base = bytes.baseAddress else { return (nil, matched) }
        let count = bytes.count
        var matched = matched
        var index = 0
        while index < count {
            if matched == 0 {
                index = ByteScan.firstControl(base, from: index, to: count)
                guard index < count else { break }
            }
            switch bytes[index] {
            case ASCII.cr:
                matched = matched == 2 ? 3 : 1
            case ASCII.lf:
                if matched == 3 { return (index + 1, 4) }
                matched = matched == 1 ? 2 : 0
            default:
                matched = 0
            }
            index += 1
        }
        return (nil, matched)
    }
}
