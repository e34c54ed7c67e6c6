/// An RFC 3463 enhanced status code, class.subject.detail (e.g. 5.7.1).
public struct EnhancedStatusCode: Hashable, Sendable, CustomStringConvertible {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    public var klass: Int
    public var subject: Int
    public var detail: Int

    /// A code from its three parts.
    public init(_ klass: Int, _ subject: Int, _ detail: Int) {
        self.klass = klass
        self.subject = subject
        self.detail = detail
    }

    /// Parses `5.7.1`: class 2, 4 or 5, subject and detail of one to three digits (RFC 3463 §2).
    public init?(_ text: Substring) {
        let parts = text.utf8.split(separator: .dot, maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 1, (1...3).contains(parts[1].count), (1...3).contains(parts[2].count),
            parts.allSatisfy({ $0.allSatisfy(\.isASCIIDigit) })
        else { return nil }
        let klass = Self.value(parts[0])
        guard klass == 2 || klass == 4 || klass == 5 else { return nil }
        self.init(klass, Self.value(parts[1]), Self.value(parts[2]))
    }

    private static func value(_ digits: Substring.UTF8View.SubSequence) -> Int {
        digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    public var description: String { "\(klass).\(subject).\(detail)" }
}
