/// A reply stream that is not SMTP; equality compares the code only, so tests can match on it.
public struct SMTPReplyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What was wrong, as a code that can grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let description: String
        private init(_ description: String) { self.description = description }

        /// A line that does not start with three digits followed by space, hyphen or the line end.
        public static let malformedLine = Code("malformed reply line")
        /// The lines of one multi-line reply carry different codes.
        public static let inconsistentCodes = Code("inconsistent codes in a multi-line reply")
        /// A line longer than the parser's limit.
        public static let lineTooLong = Code("reply line too long")
        /// A multi-line reply with more lines than the parser's limit.
        public static let tooManyLines = Code("too many reply lines")
    }

    public var code: Code
    /// The offending text or numbers, for logs.
    public var detail: String

    public init(_ code: Code, _ detail: String = "") {
        self.code = code
        self.detail = detail
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String { detail.isEmpty ? code.description : "\(code): \(detail)" }
}
