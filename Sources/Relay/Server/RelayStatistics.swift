import NIOConcurrencyHelpers

/// Counters the relay keeps; the metrics endpoint (a later issue) exports them.
public final class RelayStatistics: Sendable {
    /// A monotonically increasing count.
    public final class Counter: Sendable {
        private let value = NIOLockedValueBox(0)
        public func increment(by amount: Int = 1) { value.withLockedValue { $0 += amount } }
        public var count: Int { value.withLockedValue { $0 } }
    }

    public let connectionsAccepted = Counter()
    public let connectionsRefused = Counter()
    public let messagesSigned = Counter()
    public let messagesUnsigned = Counter()
    public let messagesRefused = Counter()
    public let nextHopFailures = Counter()
    public let tlsHandshakes = Counter()
    public let tlsHandshakeFailures = Counter()
    public let authSuccesses = Counter()
    public let authFailures = Counter()
    /// Envelope rewriting by SRS.
    public let srs = SRSStatistics()

    public init() {}
}
