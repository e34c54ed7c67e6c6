import NIOCore

/// Splits what a client sends into commands, DATA content (dot-unstuffed) and BDAT chunks.
///
/// The caller appends each read to one buffer and calls `next(from:)` until it returns nil. Data frames are slices
/// of that buffer, never copies; a cut happens only where a stuffed dot is removed. Bytes that cannot be decided
/// yet (a "." or ".\r" at the start of a line at the end of the input) stay in the buffer until more arrive, so the
/// end-of-data mark may be split across reads anywhere.
public struct SMTPServerFramer: Sendable {
    /// One unit of what the client sent.
    public enum Frame: Sendable, Hashable {
        case command(SMTPCommand)
        /// A line that is not a valid command; answer with the error's reply, commands continue.
        case invalidCommand(SMTPCommandError)
        /// A command line over the limit; the framer skips to its end (reply 500 5.5.6).
        case lineTooLong
        /// DATA content, dot-unstuffed, line endings as received (bare LF and NUL passed through).
        /// The CRLF that ends the last line is content; only the final ".CRLF" is not.
        case messageData(ByteBuffer)
        /// The CRLF.CRLF that ends DATA has been seen.
        case messageEnd
        /// BDAT payload, as sent; one chunk may come as several frames.
        case chunkData(ByteBuffer)
        /// All bytes of the current BDAT chunk have been delivered.
        case chunkEnd(last: Bool)
        /// The client's answer to a 334 AUTH challenge (RFC 4954 §4): base64 text or `*`, without its line ending.
        case authenticationResponse(String)
    }

    /// What the framer expects next.
    public enum Mode: Sendable, Hashable {
        case command
        /// After DATA: waiting for `startMessageData()` or `rejectMessageData()`.
        case awaitingDataDecision
        case messageData
        /// Inside a BDAT chunk.
        case chunk(remaining: Int)
        /// After STARTTLS: waiting for `startTLS(discarding:)` or `resumeCommands()`.
        case awaitingTLSDecision
        /// After a 334 challenge: the next line is an AUTH response, not a command.
        case authenticationResponse
    }

    public private(set) var mode = Mode.command
    /// Whether the transaction uses SMTPUTF8: longer command lines and UTF-8 addresses are allowed. The framer
    /// follows MAIL ... SMTPUTF8 and the end of the transaction itself; the session may set it too.
    public var isSMTPUTF8 = false

    private let maximumLineLength: Int
    private let maximumUTF8LineLength: Int
    /// Skipping the rest of an overlong command line.
    private var isDiscardingLine = false
    /// Bytes after the reader index known to hold no LF (command mode), so a slowly arriving line is scanned once.
    private var searchedBytes = 0
    private var chunkIsLast = false
    var unstuffer = DataUnstuffer()

    /// RFC 4954 §4: an AUTH line, command or response, may be up to 12288 octets.
    public static let maximumAuthenticationLineLength = 12288

    /// Line limits include the line ending (RFC 5321 §4.5.3.1.4 gives 512).
    public init(maximumLineLength: Int = 512, maximumUTF8LineLength: Int = 4096) {
        self.maximumLineLength = maximumLineLength
        self.maximumUTF8LineLength = max(maximumLineLength, maximumUTF8LineLength)
    }

    /// The server answered 354: the following bytes are message content.
    public mutating func startMessageData() {
        guard mode == .awaitingDataDecision else { return }
        mode = .messageData
        unstuffer = DataUnstuffer()
    }

    /// The server refused DATA: back to commands.
    public mutating func rejectMessageData() {
        if mode == .awaitingDataDecision { mode = .command }
    }

    /// The TLS handshake starts. Returns, and removes from `buffer`, whatever plaintext was pipelined after
    /// STARTTLS: it must not be read as commands of the encrypted session (CVE-2011-0411).
    @discardableResult
    public mutating func startTLS(discarding buffer: inout ByteBuffer) -> ByteBuffer {
        let dropped = buffer.readSlice(length: buffer.readableBytes) ?? ByteBuffer()
        self = SMTPServerFramer(maximumLineLength: maximumLineLength, maximumUTF8LineLength: maximumUTF8LineLength)
        return dropped
    }

    /// STARTTLS was refused: back to commands.
    public mutating func resumeCommands() {
        if mode == .awaitingTLSDecision { mode = .command }
    }

    /// The server sent a 334 challenge: the next line is the client's response, not a command.
    public mutating func expectAuthenticationResponse() {
        if mode == .command { mode = .authenticationResponse }
    }

    /// The next frame, consuming its bytes from `buffer`; nil when more input (or a decision) is needed.
    public mutating func next(from buffer: inout ByteBuffer) -> Frame? {
        switch mode {
        case .awaitingDataDecision, .awaitingTLSDecision:
            return nil
        case .command:
            return nextCommand(&buffer)
        case .authenticationResponse:
            return nextAuthenticationResponse(&buffer)
        case .chunk(let remaining):
            return nextChunkData(&buffer, remaining: remaining)
        case .messageData:
            guard let frame = unstuffer.next(from: &buffer) else { return nil }
            if frame == .messageEnd {
                mode = .command
                isSMTPUTF8 = false
            }
            return frame
        }
    }

    private var lineLimit: Int { isSMTPUTF8 ? maximumUTF8LineLength : maximumLineLength }

    private mutating func nextCommand(_ buffer: inout ByteBuffer) -> Frame? {
        while true {
            let view = buffer.readableBytesView
            let searchStart = view.startIndex + min(searchedBytes, view.count)
            guard let lf = view[searchStart...].firstIndex(of: .lf) else {
                if isDiscardingLine {
                    buffer.moveReaderIndex(forwardBy: view.count)
                    searchedBytes = 0
                    return nil
                }
                // With its line ending still to come, the line will be longer than what is here.
                if view.count >= lineLimit {
                    buffer.moveReaderIndex(forwardBy: view.count)
                    searchedBytes = 0
                    isDiscardingLine = true
                    return .lineTooLong
                }
                searchedBytes = view.count
                return nil
            }
            let length = lf + 1 - view.startIndex
            searchedBytes = 0
            if isDiscardingLine || length > lineLimit {
                buffer.moveReaderIndex(forwardBy: length)
                if isDiscardingLine {
                    isDiscardingLine = false
                    continue
                }
                return .lineTooLong
            }
            // Postfix accepts a bare LF at the end of a command line, and so do we; in DATA only CRLF counts.
            let ending = lf > view.startIndex && view[lf - 1] == .cr ? 2 : 1
            guard let line = buffer.readSlice(length: length - ending) else { return nil }
            buffer.moveReaderIndex(forwardBy: ending)
            return parsed(line)
        }
    }

    private mutating func nextAuthenticationResponse(_ buffer: inout ByteBuffer) -> Frame? {
        let view = buffer.readableBytesView
        guard let lf = view.firstIndex(of: .lf) else {
            guard view.count >= Self.maximumAuthenticationLineLength else { return nil }
            // Too long to be an answer: skip the rest of the line as for an overlong command.
            mode = .command
            buffer.moveReaderIndex(forwardBy: view.count)
            isDiscardingLine = true
            return .lineTooLong
        }
        mode = .command
        let length = lf + 1 - view.startIndex
        if length > Self.maximumAuthenticationLineLength {
            buffer.moveReaderIndex(forwardBy: length)
            return .lineTooLong
        }
        let ending = lf > view.startIndex && view[lf - 1] == .cr ? 2 : 1
        let line = buffer.readString(length: length - ending) ?? ""
        buffer.moveReaderIndex(forwardBy: ending)
        return .authenticationResponse(line)
    }

    private mutating func parsed(_ line: ByteBuffer) -> Frame {
        let command: SMTPCommand
        do {
            command = try SMTPCommandParser.parse(line, allowUTF8: isSMTPUTF8)
        } catch {
            return .invalidCommand(error)
        }
        switch command {
        case .data:
            mode = .awaitingDataDecision
        case .bdat(let size, let last):
            // RFC 3030 §2: the chunk is read even when the command is refused, so the framer never waits to be told.
            mode = .chunk(remaining: size)
            chunkIsLast = last
        case .starttls:
            mode = .awaitingTLSDecision
        case .mail(_, let parameters):
            isSMTPUTF8 = parameters[keyword: "SMTPUTF8"] != nil
        case .rset, .ehlo, .helo:
            isSMTPUTF8 = false
        default:
            break
        }
        return .command(command)
    }

    private mutating func nextChunkData(_ buffer: inout ByteBuffer, remaining: Int) -> Frame? {
        if remaining <= 0 {
            mode = .command
            if chunkIsLast { isSMTPUTF8 = false }
            return .chunkEnd(last: chunkIsLast)
        }
        let take = min(remaining, buffer.readableBytes)
        guard take > 0, let slice = buffer.readSlice(length: take) else { return nil }
        mode = .chunk(remaining: remaining - take)
        return .chunkData(slice)
    }
}
