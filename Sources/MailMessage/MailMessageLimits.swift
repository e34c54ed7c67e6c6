/// Size limits that keep header scanning bounded on untrusted input.
public struct MailMessageLimits: Sendable {
    /// The largest header section accepted, in bytes (fields plus their line ends).
    public var maxHeaderBytes: Int
    /// The largest number of header fields accepted.
    public var maxHeaderFields: Int

    /// 1 MiB of header and 1000 fields: far above real mail, far below what could exhaust memory.
    public static let `default` = MailMessageLimits(maxHeaderBytes: 1 << 20, maxHeaderFields: 1000)

    public init(maxHeaderBytes: Int, maxHeaderFields: Int) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderFields = maxHeaderFields
    }
}
