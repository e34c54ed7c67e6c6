import NIOCore

/// A reply that is not SMTP.
public struct SMTPReplyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Parses replies from a byte stream, one complete (multi-line) reply at a time.
public struct SMTPReplyParser: Sendable {
    /// Longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512; real servers send longer).
    public var maximumLineLength = 4096

    public init() {}

    /// The next complete reply, consuming its bytes; nil (consuming nothing) until all its lines arrived.
    public mutating func parse(_ buffer: inout ByteBuffer) throws(SMTPReplyError) -> SMTPReply? {
        var offset = buffer.readerIndex
        var lines: [String] = []
        var code: Int?
        var enhanced: EnhancedStatusCode?
        while true {
            let view = buffer.readableBytesView[offset...]
            guard let lf = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > maximumLineLength { throw SMTPReplyError("reply line longer than \(maximumLineLength) bytes") }
                return nil
            }
            var end = lf
            if end > offset, buffer.getInteger(at: end - 1, as: UInt8.self) == UInt8(ascii: "\r") { end -= 1 }
            let line = buffer.getBytes(at: offset, length: end - offset) ?? []
            guard line.count >= 3, line[0].isASCIIDigit, line[1].isASCIIDigit, line[2].isASCIIDigit,
                line.count == 3 || line[3] == UInt8(ascii: " ") || line[3] == UInt8(ascii: "-")
            else {
                throw SMTPReplyError("not an SMTP reply line: \(String(decoding: line.prefix(80), as: UTF8.self))")
            }
            let lineCode = Int(line[0] - 0x30) * 100 + Int(line[1] - 0x30) * 10 + Int(line[2] - 0x30)
            guard (100...599).contains(lineCode) else { throw SMTPReplyError("reply code \(lineCode) out of range") }
            if let code, code != lineCode { throw SMTPReplyError("reply lines with codes \(code) and \(lineCode)") }
            code = lineCode
            var text = Substring(String(decoding: line.dropFirst(4), as: UTF8.self))
            // The enhanced code is split off when it matches the reply's class, as RFC 2034 writes it.
            let first = text.prefix { $0 != " " }
            if let parsed = EnhancedStatusCode(first), parsed.klass == lineCode / 100, lines.isEmpty || enhanced == parsed {
                if lines.isEmpty { enhanced = parsed }
                text = text.dropFirst(first.count).drop { $0 == " " }
            }
            lines.append(String(text))
            offset = lf + 1
            if line.count == 3 || line[3] == UInt8(ascii: " ") { break }
        }
        buffer.moveReaderIndex(to: offset)
        return SMTPReply(code: code!, enhanced, lines)
    }
}

/// A NIO decoder producing `SMTPReply` values (the client side of a connection).
public struct SMTPReplyDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = SMTPReply
    private var parser = SMTPReplyParser()

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> SMTPReply? {
        try parser.parse(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> SMTPReply? {
        try decode(buffer: &buffer)
    }
}
