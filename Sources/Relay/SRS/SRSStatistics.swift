/// What SRS did to envelopes; exported with the relay's other counters once metrics exist.
public final class SRSStatistics: Sendable {
    public typealias Counter = RelayStatistics.Counter

    /// MAIL FROM rewritten to an SRS address.
    public let sendersRewritten = Counter()
    /// MAIL FROM left alone: the null sender or a local domain.
    public let sendersNotRewritten = Counter()
    /// MAIL FROM whose rewrite would exceed 64 octets of local part (then passed or tempfailed, as configured).
    public let sendersTooLong = Counter()
    /// MAIL FROM that SRS could not parse (passed unchanged).
    public let sendersMalformed = Counter()
    /// RCPT TO of one of our SRS addresses reversed to the original.
    public let recipientsReversed = Counter()
    /// RCPT TO of our SRS domain refused: hash wrong (forged or retired secret).
    public let recipientsForged = Counter()
    /// RCPT TO of our SRS domain refused: timestamp expired or from the future.
    public let recipientsExpired = Counter()
    /// RCPT TO of our SRS domain refused: not a well-formed SRS address.
    public let recipientsMalformed = Counter()

    public init() {}
}
