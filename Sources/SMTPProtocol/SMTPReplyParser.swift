import NIOCore

/// Parses replies from a byte stream, one complete (multi-line) reply at a time.
///
/// Call `parse` again with the same stream (more bytes appended) after it returned nil: the parser remembers the
/// lines it already read, relative to the buffer's reader index, so no byte is scanned twice.
public struct SMTPReplyParser: Sendable {
    /// Longest reply line accepted without its line ending. RFC 5321 §4.5.3.1.5 says 512; real servers send longer.
    public var maximumLineLength: Int
    /// Most lines in one reply; an EHLO reply has a few dozen at most.
    public var maximumLineCount: Int

    private var lines: [String] = []
    private var code = 0
    private var enhancedCode: EnhancedStatusCode?
    /// Bytes after the reader index that hold the complete lines in `lines`.
    private var parsedBytes = 0
    /// Bytes after the reader index known to hold no LF.
    private var searchedBytes = 0

    public init(maximumLineLength: Int = 4096, maximumLineCount: Int = 1000) {
        self.maximumLineLength = maximumLineLength
        self.maximumLineCount = maximumLineCount
    }

    /// The next complete reply, consuming its bytes; nil (consuming nothing) until all its lines have arrived.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(SMTPReplyError) -> SMTPReply? {
        do {
            return try parseLines(&buffer)
        } catch {
            self = SMTPReplyParser(maximumLineLength: maximumLineLength, maximumLineCount: maximumLineCount)
            throw error
        }
    }

    private mutating func parseLines(_ buffer: inout ByteBuffer) throws(SMTPReplyError) -> SMTPReply? {
        let view = buffer.readableBytesView
        // A caller that handed in fewer bytes than before restarts the reply from scratch rather than trusting offsets.
        if parsedBytes > view.count || searchedBytes > view.count {
            self = SMTPReplyParser(maximumLineLength: maximumLineLength, maximumLineCount: maximumLineCount)
        }
        while true {
            let lineStart = view.startIndex + parsedBytes
            let searchStart = view.startIndex + max(parsedBytes, searchedBytes)
            guard let lf = view[searchStart...].firstIndex(of: .lf) else {
                searchedBytes = view.count
                // One more byte than the limit may be the CR of a line that is just at the limit.
                if view.endIndex - lineStart > maximumLineLength + 1 {
                    throw SMTPReplyError(.lineTooLong, "more than \(maximumLineLength) bytes without a line end")
                }
                return nil
            }
            var end = lf
            if end > lineStart && view[end - 1] == .cr { end -= 1 }
            let line = view[lineStart..<end]
            guard line.count <= maximumLineLength else {
                throw SMTPReplyError(.lineTooLong, "\(line.count) bytes")
            }
            let isLast = try buffer.withUnsafeReadableBytes { bytes throws(SMTPReplyError) in
                try addLine(
                    UnsafeRawBufferPointer(rebasing: bytes[(lineStart - view.startIndex)..<(end - view.startIndex)]))
            }
            parsedBytes = lf + 1 - view.startIndex
            searchedBytes = parsedBytes
            if isLast {
                let reply = SMTPReply(code: code, enhancedCode, lines)
                buffer.moveReaderIndex(forwardBy: parsedBytes)
                self = SMTPReplyParser(maximumLineLength: maximumLineLength, maximumLineCount: maximumLineCount)
                return reply
            }
            guard lines.count < maximumLineCount else {
                throw SMTPReplyError(.tooManyLines, "more than \(maximumLineCount)")
            }
        }
    }

    /// Adds one line (without its line ending); returns whether it ends the reply.
    private mutating func addLine(_ bytes: UnsafeRawBufferPointer) throws(SMTPReplyError) -> Bool {
        guard bytes.count >= 3, bytes[0] >= UInt8(ascii: "1"), bytes[0] <= UInt8(ascii: "5"), bytes[1].isASCIIDigit,
            bytes[2].isASCIIDigit, bytes.count == 3 || bytes[3] == .space || bytes[3] == UInt8(ascii: "-")
        else {
            throw SMTPReplyError(.malformedLine, String(decoding: bytes.prefix(80), as: UTF8.self))
        }
        let lineCode = Int(bytes[0] - 0x30) * 100 + Int(bytes[1] - 0x30) * 10 + Int(bytes[2] - 0x30)
        if !lines.isEmpty && lineCode != code {
            throw SMTPReplyError(.inconsistentCodes, "\(code) then \(lineCode)")
        }
        code = lineCode
        let rest = UnsafeRawBufferPointer(rebasing: bytes[min(4, bytes.count)...])
        // A bare CR inside a line is dropped here as `SMTPReply.write` drops it, so a reply passed on reads the same
        // as the one received (found by SMTPReplyFuzzer's round trip). Rare: only then is the line copied.
        if rest.contains(.cr) {
            Array(rest.filter { $0 != .cr }).withUnsafeBytes { addText($0, lineCode: lineCode) }
        } else {
            addText(rest, lineCode: lineCode)
        }
        return bytes.count == 3 || bytes[3] == .space
    }

    /// The text after the code and its separator.
    private mutating func addText(_ text: UnsafeRawBufferPointer, lineCode: Int) {
        var start = 0
        // RFC 2034 puts the enhanced code on every line. It is split off when it belongs to this reply: same class as
        // the code, and the same code as the first line had, so that writing the reply back loses nothing.
        let wordEnd = text.firstIndex(of: .space) ?? text.count
        if let parsed = EnhancedStatusCode(ascii: text[0..<wordEnd]), parsed.klass == lineCode / 100,
            lines.isEmpty || parsed == enhancedCode
        {
            if lines.isEmpty { enhancedCode = parsed }
            // One space separates the code from the text, as the writer puts it; more are the text's own
            // (SMTPReplyFuzzer: dropping them all changed a reply passed on).
            start = wordEnd
            if start < text.count && text[start] == .space { start += 1 }
        }
        lines.append(String(decoding: UnsafeRawBufferPointer(rebasing: text[start...]), as: UTF8.self))
    }
}
