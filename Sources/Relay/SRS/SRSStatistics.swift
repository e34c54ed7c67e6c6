import NIOConcurrencyHelpers

/// What SRS did to envelopes: counts of its own (for tests and logs) that also feed
/// `signet_srs_rewrites_total{direction,result}`.
public final class SRSStatistics: Sendable {
    /// A monotonically increasing count that reports each step to the metrics.
    public final class Counter: Sendable {
        private let value = NIOLockedValueBox(0)
        private let report: @Sendable () -> Void

        init(_ report: @escaping @Sendable () -> Void) {
            self.report = report
        }

        public func increment() {
            value.withLockedValue { $0 += 1 }
            report()
        }

        public var count: Int { value.withLockedValue { $0 } }
    }

    /// MAIL FROM rewritten to an SRS address.
    public let sendersRewritten: Counter
    /// MAIL FROM left alone: the null sender or a local domain.
    public let sendersNotRewritten: Counter
    /// MAIL FROM whose rewrite would exceed 64 octets of local part (then passed or tempfailed, as configured).
    public let sendersTooLong: Counter
    /// MAIL FROM that SRS could not parse (passed unchanged).
    public let sendersMalformed: Counter
    /// RCPT TO of one of our SRS addresses reversed to the original.
    public let recipientsReversed: Counter
    /// RCPT TO of our SRS domain refused: hash wrong (forged or retired secret).
    public let recipientsForged: Counter
    /// RCPT TO of our SRS domain refused: timestamp expired or from the future.
    public let recipientsExpired: Counter
    /// RCPT TO of our SRS domain refused: not a well-formed SRS address.
    public let recipientsMalformed: Counter

    /// Counts that also go to `metrics` when given.
    public init(metrics: RelayMetrics? = nil) {
        func counter(_ direction: String, _ result: String) -> Counter {
            Counter { metrics?.srsRewrite(direction: direction, result: result) }
        }
        sendersRewritten = counter("forward", "rewritten")
        sendersNotRewritten = counter("forward", "unchanged")
        sendersTooLong = counter("forward", "too_long")
        sendersMalformed = counter("forward", "malformed")
        recipientsReversed = counter("reverse", "reversed")
        recipientsForged = counter("reverse", "forged")
        recipientsExpired = counter("reverse", "expired")
        recipientsMalformed = counter("reverse", "malformed")
    }
}
