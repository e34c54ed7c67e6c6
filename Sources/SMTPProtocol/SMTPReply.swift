import NIOCore

/// One SMTP reply, possibly several lines (RFC 5321 §4.2).
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible {
    /// The three-digit code, 100...599.
    public var code: Int
    /// Written at the start of every line's text when present (RFC 2034).
    public var enhancedCode: EnhancedStatusCode?
    /// Each line's text without code or enhanced code; at least one line, possibly "".
    public var lines: [String]

    /// A reply of several lines; an empty list becomes one empty line.
    public init(code: Int, _ enhancedCode: EnhancedStatusCode? = nil, _ lines: [String]) {
        self.code = code
        self.enhancedCode = enhancedCode
        self.lines = lines.isEmpty ? [""] : lines
    }

    /// A one-line reply.
    public init(code: Int, _ enhancedCode: EnhancedStatusCode?, _ text: String) {
        self.init(code: code, enhancedCode, [text])
    }

    /// 2xx or 3xx: the command was accepted (3xx asks for more).
    public var isPositive: Bool { (200..<400).contains(code) }
    /// 4xx: try again later.
    public var isTransientFailure: Bool { (400..<500).contains(code) }
    /// 5xx: do not repeat as is.
    public var isPermanentFailure: Bool { (500..<600).contains(code) }

    /// Appends the wire form, e.g. `250-2.1.0 first\r\n250 2.1.0 last\r\n`.
    public func write(into buffer: inout ByteBuffer) {
        let codeText = String(code)
        let enhancedText = enhancedCode?.description
        for (index, line) in lines.enumerated() {
            buffer.writeString(codeText)
            buffer.writeInteger(index == lines.count - 1 ? UInt8.space : UInt8(ascii: "-"))
            if let enhancedText {
                buffer.writeString(enhancedText)
                if !line.isEmpty { buffer.writeInteger(UInt8.space) }
            }
            // Text can come from elsewhere (the next hop, a client's EHLO name); a CR or LF in it would end the reply
            // early and let the rest pass for a reply of its own.
            if line.utf8.contains(where: { $0 == .cr || $0 == .lf }) {
                buffer.writeString(String(line.filter { $0 != "\r" && $0 != "\n" && $0 != "\r\n" }))
            } else {
                buffer.writeString(line)
            }
            buffer.writeStaticString("\r\n")
        }
    }

    /// The wire form in a new buffer.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        write(into: &buffer)
        return buffer
    }

    public var description: String {
        let prefix = "\(code)" + (enhancedCode.map { " \($0)" } ?? "")
        return prefix + " " + lines.joined(separator: " / ")
    }
}
