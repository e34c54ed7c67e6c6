import NIOCore

/// Splits what a client sends into commands, DATA content (dot-unstuffed) and BDAT chunks.
///
/// Data frames are slices of the input buffer, never copies; a cut happens only where a stuffed dot is removed.
/// Bytes that cannot be decided yet (a "." or ".\r" at the start of a line at the end of the input) stay in the
/// buffer until more arrive, so the end-of-data mark may be split across reads anywhere.
public struct SMTPServerFramer: Sendable {
    /// What the client sent.
    public enum Frame: Sendable, Hashable {
        case command(SMTPCommand)
        /// A line that is not a valid command; answer with the error's reply, keep reading commands.
        case invalidCommand(SMTPCommandError)
        /// A command line over the limit; it is discarded up to its end.
        case lineTooLong
        /// DATA content, dot-unstuffed, line endings as received.
        case messageData(ByteBuffer)
        /// The CRLF.CRLF that ends DATA (not part of the content).
        case messageEnd
        /// BDAT payload; one chunk may come as several frames.
        case chunkData(ByteBuffer)
        /// All bytes of the current BDAT chunk have been delivered.
        case chunkEnd(last: Bool)
    }

    /// What the framer expects next.
    public enum Mode: Sendable, Hashable {
        case command
        /// After DATA: waiting for `startMessageData()` or `rejectMessageData()`.
        case awaitingDataDecision
        case messageData
        case chunk(remaining: Int, last: Bool)
        /// After STARTTLS: waiting for `startTLS()` or `resumeCommands()`.
        case awaitingTLSDecision
        /// Skipping the rest of an overlong line.
        case discardingLine
    }

    public private(set) var mode = Mode.command
    /// Set by the session while a transaction uses SMTPUTF8: longer lines and UTF-8 addresses are allowed.
    public var isSMTPUTF8 = false
    private let maximumLineLength: Int
    private let maximumUTF8LineLength: Int
    private var atLineStart = true
    private var lastWasCR = false

    /// Line limits include the CRLF (RFC 5321 §4.5.3.1.4).
    public init(maximumLineLength: Int = 512, maximumUTF8LineLength: Int = 4096) {
        self.maximumLineLength = maximumLineLength
        self.maximumUTF8LineLength = maximumUTF8LineLength
    }

    /// The server answered 354: the following bytes are message content.
    public mutating func startMessageData() {
        guard mode == .awaitingDataDecision else { return }
        mode = .messageData
        atLineStart = true
        lastWasCR = false
    }

    /// The server refused DATA: back to commands.
    public mutating func rejectMessageData() {
        if mode == .awaitingDataDecision { mode = .command }
    }

    /// The TLS handshake starts: returns and drops whatever plaintext was pipelined after STARTTLS, which must
    /// not be read as commands of the encrypted session (CVE-2011-0411).
    public mutating func startTLS(discarding buffer: inout ByteBuffer) -> Int {
        let dropped = buffer.readableBytes
        buffer.moveReaderIndex(forwardBy: dropped)
        mode = .command
        return dropped
    }

    /// STARTTLS was refused: back to commands.
    public mutating func resumeCommands() {
        if mode == .awaitingTLSDecision { mode = .command }
    }

    /// The next frame, consuming its bytes from `buffer`; nil when more input is needed (or a decision).
    public mutating func next(from buffer: inout ByteBuffer) -> Frame? {
        while true {
            switch mode {
            case .awaitingDataDecision, .awaitingTLSDecision:
                return nil
            case .command:
                return nextCommand(&buffer)
            case .discardingLine:
                guard let lf = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
                    buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                    return nil
                }
                buffer.moveReaderIndex(to: lf + 1)
                mode = .command
            case .chunk(let remaining, let last):
                if remaining == 0 {
                    mode = .command
                    return .chunkEnd(last: last)
                }
                guard buffer.readableBytes > 0 else { return nil }
                let take = min(remaining, buffer.readableBytes)
                mode = .chunk(remaining: remaining - take, last: last)
                return .chunkData(buffer.readSlice(length: take)!)
            case .messageData:
                switch nextData(&buffer) {
                case .frame(let frame): return frame
                case .needMore: return nil
                case .again: continue
                }
            }
        }
    }

    private var lineLimit: Int { isSMTPUTF8 ? maximumUTF8LineLength : maximumLineLength }

    private mutating func nextCommand(_ buffer: inout ByteBuffer) -> Frame? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > lineLimit {
                buffer.moveReaderIndex(forwardBy: view.count)
                mode = .discardingLine
                return .lineTooLong
            }
            return nil
        }
        let length = lf + 1 - buffer.readerIndex
        var line = buffer.readSlice(length: length)!
        if length > lineLimit { return .lineTooLong }
        // Postfix accepts a bare LF at the end of a command line; so do we (only for commands, never for data).
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytes > 0 && line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        guard line.readableBytes > 0 else {
            return .invalidCommand(SMTPCommandError(SMTPReply(code: 500, EnhancedStatusCode(5, 5, 2), "empty command")))
        }
        do {
            let command = try SMTPCommandParser.parse(line, allowUTF8: true)
            switch command {
            case .data: mode = .awaitingDataDecision
            case .bdat(let size, let last): mode = .chunk(remaining: size, last: last)
            case .starttls: mode = .awaitingTLSDecision
            default: break
            }
            return .command(command)
        } catch {
            return .invalidCommand(error)
        }
    }

    private enum DataStep {
        case frame(Frame)
        case needMore
        case again
    }

    private mutating func nextData(_ buffer: inout ByteBuffer) -> DataStep {
        let count = buffer.readableBytes
        guard count > 0 else { return .needMore }
        var lineStart = atLineStart
        var previousCR = lastWasCR
        // Scan until a cut is needed: returns (bytes of content before the cut, what happens at the cut).
        enum Cut { case end, stuffedDot, undecided, exhausted }
        let (length, cut): (Int, Cut) = buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while index < count {
                if lineStart {
                    if bytes[index] == UInt8(ascii: ".") {
                        guard index + 1 < count else { return (index, .undecided) }
                        if bytes[index + 1] == UInt8(ascii: "\r") {
                            guard index + 2 < count else { return (index, .undecided) }
                            if bytes[index + 2] == UInt8(ascii: "\n") { return (index, .end) }
                        }
                        return (index, .stuffedDot)
                    }
                    lineStart = false
                }
                guard let lf = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) else {
                    previousCR = bytes[count - 1] == UInt8(ascii: "\r")
                    return (count, .exhausted)
                }
                lineStart = lf > index ? bytes[lf - 1] == UInt8(ascii: "\r") : previousCR
                previousCR = false
                index = lf + 1
            }
            return (count, .exhausted)
        }
        if length > 0 {
            // Content first; the cut itself is handled on the next call, from the start of the buffer.
            atLineStart = cut == .exhausted ? lineStart : true
            lastWasCR = cut == .exhausted ? previousCR : false
            return .frame(.messageData(buffer.readSlice(length: length)!))
        }
        switch cut {
        case .end:
            buffer.moveReaderIndex(forwardBy: 3)
            mode = .command
            atLineStart = true
            return .frame(.messageEnd)
        case .stuffedDot:
            buffer.moveReaderIndex(forwardBy: 1)
            atLineStart = false
            lastWasCR = false
            return .again
        case .undecided:
            return .needMore
        case .exhausted:
            return .needMore
        }
    }
}
