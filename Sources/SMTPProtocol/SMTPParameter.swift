/// An ESMTP parameter, `KEYWORD[=value]` (RFC 5321 §4.1.2); the keyword is stored upper-cased.
public struct SMTPParameter: Hashable, Sendable, CustomStringConvertible {
    /// Upper-cased, since keywords compare case-insensitively.
    public var keyword: String
    /// The value as sent (still xtext-encoded where the extension says so), nil for a bare keyword.
    public var value: String?

    public init(_ keyword: String, _ value: String? = nil) {
        self.keyword = keyword.uppercased()
        self.value = value
    }

    public init(keyword: String, value: String?) {
        self.init(keyword, value)
    }

    public var description: String { value.map { "\(keyword)=\($0)" } ?? keyword }
}

extension Array where Element == SMTPParameter {
    /// The first parameter with this (upper-case) keyword.
    public subscript(keyword keyword: String) -> SMTPParameter? {
        first { $0.keyword == keyword }
    }
}
