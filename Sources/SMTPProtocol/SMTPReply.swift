import NIOCore

/// An RFC 3463 enhanced status code, class.subject.detail (e.g. 5.7.1).
public struct EnhancedStatusCode: Hashable, Sendable, CustomStringConvertible {
    public var klass: Int
    public var subject: Int
    public var detail: Int

    /// A code from its three parts.
    public init(_ klass: Int, _ subject: Int, _ detail: Int) {
        self.klass = klass
        self.subject = subject
        self.detail = detail
    }

    /// Parses `2.1.0`; nil unless class is 2, 4 or 5 and the parts are at most 3 digits.
    public init?(_ text: Substring) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) }),
            let klass = Int(parts[0]), [2, 4, 5].contains(klass), let subject = Int(parts[1]), let detail = Int(parts[2])
        else { return nil }
        self.init(klass, subject, detail)
    }

    public var description: String { "\(klass).\(subject).\(detail)" }
}

/// One SMTP reply, possibly several lines (RFC 5321 §4.2).
public struct SMTPReply: Hashable, Sendable, CustomStringConvertible {
    /// The three-digit code.
    public var code: Int
    /// Written at the start of every line when present (RFC 2034).
    public var enhancedCode: EnhancedStatusCode?
    /// Each line's text without code or enhanced code; never empty.
    public var lines: [String]

    /// A reply with several lines.
    public init(code: Int, _ enhancedCode: EnhancedStatusCode? = nil, _ lines: [String]) {
        self.code = code
        self.enhancedCode = enhancedCode
        self.lines = lines.isEmpty ? [""] : lines
    }

    /// A one-line reply.
    public init(code: Int, _ enhancedCode: EnhancedStatusCode?, _ text: String) {
        self.init(code: code, enhancedCode, [text])
    }

    public var isPositive: Bool { (200..<400).contains(code) }
    public var isTransientFailure: Bool { (400..<500).contains(code) }
    public var isPermanentFailure: Bool { (500..<600).contains(code) }

    /// Appends the wire form: `250-first\r\n250 last\r\n`.
    public func write(into buffer: inout ByteBuffer) {
        for (index, line) in lines.enumerated() {
            buffer.writeString(String(code))
            buffer.writeInteger(index == lines.count - 1 ? UInt8(ascii: " ") : UInt8(ascii: "-"))
            if let enhancedCode {
                buffer.writeString(enhancedCode.description)
                if !line.isEmpty { buffer.writeInteger(UInt8(ascii: " ")) }
            }
            // A CR or LF inside the text would end the reply early; replies carry text from elsewhere (next hop).
            buffer.writeString(line.contains(where: { $0 == "\r" || $0 == "\n" }) ? line.filter { $0 != "\r" && $0 != "\n" } : line)
            buffer.writeStaticString("\r\n")
        }
    }

    /// The wire form in a new buffer.
    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        write(into: &buffer)
        return buffer
    }

    public var description: String {
        let prefix = "\(code)" + (enhancedCode.map { " \($0)" } ?? "")
        return prefix + " " + lines.joined(separator: " / ")
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension UInt8 {
    var isASCIIDigit: Bool { self >= 0x30 && self <= 0x39 }
}
