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
        self.init(ascii: text.utf8)
    }

    /// Parses the code from its bytes, as `init?(_: Substring)` does, without allocating.
    public init?<Bytes: Sequence<UInt8>>(ascii bytes: Bytes) {
        var parts = (0, 0, 0)
        var digits = 0
        var part = 0
        for byte in bytes {
            if byte == .dot {
                guard part < 2, digits > 0 else { return nil }
                part += 1
                digits = 0
                continue
            }
            guard byte.isASCIIDigit, digits < (part == 0 ? 1 : 3) else { return nil }
            digits += 1
            let value = Int(byte - 0x30)
            switch part {
            case 0: parts.0 = value
            case 1: parts.1 = parts.1 * 10 + value
            default: parts.2 = parts.2 * 10 + value
            }
        }
        guard part == 2, digits > 0, parts.0 == 2 || parts.0 == 4 || parts.0 == 5 else { return nil }
        self.init(parts.0, parts.1, parts.2)
    }

    public var description: String { "\(klass).\(subject).\(detail)" }
}
