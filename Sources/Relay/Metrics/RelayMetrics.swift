import CoreMetrics
import NIOConcurrencyHelpers

/// Every metric the relay keeps, named by Prometheus conventions (`signet_` prefix, base units, `_total` counters,
/// `_seconds` histograms), through swift-metrics so the relay does not know which backend exports them.
///
/// Labels are bounded: reasons and results are fixed sets, domains and selectors come from the signing table,
/// reply classes are `4xx`/`5xx`. No address, sender or recipient is ever a label.
public final class RelayMetrics: Sendable {
    /// A metric's name and `# HELP` text (and histogram buckets, in seconds).
    public struct Description: Sendable {
        public var name: String
        public var help: String
        public var buckets: [Double]?
    }

    /// Upper bounds for the latencies Signet adds: an Ed25519 message about 0.1–0.2 ms, an RSA signature a quarter
    /// of a millisecond or more, a slow next hop seconds.
    static let latencyBuckets = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
    ]
    /// Whole transactions include the client's upload and the next hop's queueing: wider.
    static let transactionBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

    /// Every metric the relay may create, for the exporter's help texts.
    public static let descriptions: [Description] = [
        .init(name: "signet_connections_accepted_total", help: "SMTP connections accepted."),
        .init(
            name: "signet_connections_refused_total",
            help:
                "SMTP connections refused at connect, by reason (access: not in client_networks; limit: too many; "
                + "per_client: too many from one client address)."),
        .init(
            name: "signet_limits_exceeded_total",
            help:
                "Client actions refused or ended by a configured limit, by limit (recipients, command_timeout, "
                + "data_timeout); connection limits are counted in signet_connections_refused_total, size and header "
                + "limits in signet_messages_rejected_total."),
        .init(name: "signet_connections_active", help: "SMTP client connections open now."),
        .init(name: "signet_tls_handshakes_total", help: "Inbound TLS handshakes, by result."),
        .init(name: "signet_auth_attempts_total", help: "SMTP AUTH attempts, by result (success, failure)."),
        .init(
            name: "signet_messages_received_total", help: "Messages whose end of data Signet received from a client."),
        .init(name: "signet_messages_relayed_total", help: "Messages the next hop accepted (2xx at end of data)."),
        .init(
            name: "signet_next_hop_refused_total",
            help: "Refusals by the next hop passed back to the client, by command (mail, rcpt, data) and reply class."),
        .init(
            name: "signet_messages_tempfailed_total",
            help: "Transactions Signet itself answered with a 4xx, by reason; the client keeps and retries the message."
        ),
        .init(
            name: "signet_messages_rejected_total",
            help: "Messages Signet itself refused with a 5xx at end of data, by reason."),
        .init(
            name: "signet_received_bytes_total",
            help: "Message bytes received from clients (after line-ending normalization)."),
        .init(
            name: "signet_relayed_bytes_total", help: "Message bytes the next hop accepted, signature fields included."),
        .init(
            name: "signet_signatures_total",
            help: "DKIM signatures made, by signing domain, selector, algorithm, key backend and result."),
        .init(name: "signet_messages_unsigned_total", help: "Messages passed on without a signature, by reason."),
        .init(name: "signet_arc_seals_total", help: "ARC sets added, by the chain validation result cv."),
        .init(
            name: "signet_authentication_results_total",
            help:
                "Verification results written into Authentication-Results or an AAR, by method (dkim, spf, dmarc, arc) and result."
        ),
        .init(
            name: "signet_srs_rewrites_total", help: "SRS address rewrites, by direction (forward, reverse) and result."
        ),
        .init(
            name: "signet_end_of_data_reply_seconds",
            help: "Time from the client's end of data to Signet's reply (signing plus the next hop's answer).",
            buckets: latencyBuckets),
        .init(
            name: "signet_added_latency_seconds",
            help:
                "The part of the end-of-data wait that Signet adds: end of data to reply, less the next hop's answer.",
            buckets: latencyBuckets),
        .init(name: "signet_signing_seconds", help: "Private-key operations for one message.", buckets: latencyBuckets),
        .init(
            name: "signet_next_hop_reply_seconds",
            help: "Time to send a message to the next hop and get its end-of-data reply.", buckets: latencyBuckets),
        .init(
            name: "signet_transaction_seconds", help: "Whole transactions, from MAIL to the reply at end of data.",
            buckets: transactionBuckets),
        .init(name: "signet_signer_pool_queue_depth", help: "Signing jobs waiting for or running on the signer pool."),
        .init(name: "signet_signer_agent_restarts_total", help: "Restarts of the out-of-process signer agent."),
        .init(
            name: "signet_key_expiry_timestamp_seconds",
            help: "When a signing key must be replaced (Unix time), for keys whose configuration sets expires."),
        .init(
            name: "signet_next_hop_up", help: "1 when the last connection attempt to the next hop succeeded, else 0."),
        .init(
            name: "signet_next_hop_connections_total",
            help:
                "Next-hop connections: attempts to open one (success, failure) and kept ones given to a client (reused)."
        ),
        .init(
            name: "signet_next_hop_idle_connections",
            help: "Next-hop connections open now with no client, kept for the next one (timeouts.next_hop_idle)."),
    ]

    /// How a TLS handshake ended (for `tlsHandshake(_:)`).
    public enum TLSHandshakeResult: String, Sendable, CaseIterable {
        case success, failure
    }

    /// Why Signet answered a transaction with a 4xx of its own.
    public enum TempfailReason: String, Sendable, CaseIterable {
        /// The next hop could not be connected to at MAIL.
        case nextHopUnavailable = "next_hop_unavailable"
        /// The connection to the next hop broke or timed out mid-transaction.
        case nextHopLost = "next_hop_lost"
        case signingFailed = "signing_failed"
        /// Spooling or finishing the message failed locally.
        case localError = "local_error"
        /// The SRS rewrite of the sender would exceed 64 octets and `srs.too_long` says tempfail.
        case srsTooLong = "srs_too_long"
    }

    /// Why Signet itself refused a message with a 5xx.
    public enum RejectReason: String, Sendable, CaseIterable {
        case tooLarge = "too_large"
        /// The header section passed `limits.max_header_size` or `limits.max_header_fields`.
        case headerTooLarge = "header_too_large"
        case malformed
    }

    private let factory: any MetricsFactory
    let connectionsAccepted: Counter
    let connectionsActive: Meter
    let messagesReceived: Counter
    let messagesRelayed: Counter
    let receivedBytes: Counter
    let relayedBytes: Counter
    let endOfDataReply: Timer
    let addedLatency: Timer
    let signing: Timer
    let nextHopReply: Timer
    let transaction: Timer
    let signerQueue: Meter
    let agentRestarts: Counter
    let nextHopUp: Meter
    let nextHopIdle: Meter
    private let labeled = NIOLockedValueBox<[LabelSet: Counter]>([:])
    private let expiries = NIOLockedValueBox<[LabelSet: Meter]>([:])

    private struct LabelSet: Hashable {
        var name: String
        var values: [String]
    }

    /// Metrics made by `factory` (a Prometheus registry in `signet run`; a no-op factory when nothing exports).
    public init(factory: any MetricsFactory = NOOPMetricsHandler.instance) {
        self.factory = factory
        connectionsAccepted = Counter(label: "signet_connections_accepted_total", factory: factory)
        connectionsActive = Meter(label: "signet_connections_active", factory: factory)
        messagesReceived = Counter(label: "signet_messages_received_total", factory: factory)
        messagesRelayed = Counter(label: "signet_messages_relayed_total", factory: factory)
        receivedBytes = Counter(label: "signet_received_bytes_total", factory: factory)
        relayedBytes = Counter(label: "signet_relayed_bytes_total", factory: factory)
        endOfDataReply = Timer(label: "signet_end_of_data_reply_seconds", factory: factory)
        addedLatency = Timer(label: "signet_added_latency_seconds", factory: factory)
        signing = Timer(label: "signet_signing_seconds", factory: factory)
        nextHopReply = Timer(label: "signet_next_hop_reply_seconds", factory: factory)
        transaction = Timer(label: "signet_transaction_seconds", factory: factory)
        signerQueue = Meter(label: "signet_signer_pool_queue_depth", factory: factory)
        agentRestarts = Counter(label: "signet_signer_agent_restarts_total", factory: factory)
        nextHopUp = Meter(label: "signet_next_hop_up", factory: factory)
        nextHopIdle = Meter(label: "signet_next_hop_idle_connections", factory: factory)
        // Every fixed label value exists from the start at 0, so rate() and alerts see the first event.
        for reason in ["access", "limit"] { count("signet_connections_refused_total", ["reason": reason], by: 0) }
        for result in TLSHandshakeResult.allCases {
            count("signet_tls_handshakes_total", ["result": result.rawValue], by: 0)
        }
        for result in ["success", "failure"] { count("signet_auth_attempts_total", ["result": result], by: 0) }
        for reason in TempfailReason.allCases {
            count("signet_messages_tempfailed_total", ["reason": reason.rawValue], by: 0)
        }
        for reason in RejectReason.allCases {
            count("signet_messages_rejected_total", ["reason": reason.rawValue], by: 0)
        }
        for command in ["mail", "rcpt", "data"] {
            for replyClass in ["4xx", "5xx"] {
                count("signet_next_hop_refused_total", ["command": command, "class": replyClass], by: 0)
            }
        }
        for result in ["success", "failure"] { count("signet_next_hop_connections_total", ["result": result], by: 0) }
    }

    /// Adds `amount` to the counter `name` with `labels` (sorted by name, as the exposition prints them).
    func count(_ name: String, _ labels: KeyValuePairs<String, String>, by amount: Int = 1) {
        let pairs = labels.sorted { $0.key < $1.key }
        let key = LabelSet(name: name, values: pairs.map(\.value))
        let counter = labeled.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = Counter(label: name, dimensions: pairs.map { ($0.key, $0.value) }, factory: factory)
            counters[key] = made
            return made
        }
        if amount > 0 { counter.increment(by: amount) }
    }

    // MARK: Connections

    /// Why a connection was refused at connect.
    enum RefusalReason: String {
        case access, limit
        case perClient = "per_client"
    }

    func connectionRefused(_ reason: RefusalReason) {
        count("signet_connections_refused_total", ["reason": reason.rawValue])
    }

    /// A configured limit refused or ended something a client did (`limit` as in the metric's help).
    func limitExceeded(_ limit: String) {
        count("signet_limits_exceeded_total", ["limit": limit])
    }

    /// A client timeout fired (the connection gets 421 4.4.2 and closes).
    func clientTimedOut(_ phase: ClientPhase) {
        limitExceeded(phase == .data ? "data_timeout" : "command_timeout")
    }

    /// One inbound TLS handshake finished (called by the STARTTLS code).
    public func tlsHandshake(_ result: TLSHandshakeResult) {
        count("signet_tls_handshakes_total", ["result": result.rawValue])
    }

    /// One SMTP AUTH exchange ended; per-result counts show password guessing.
    func authentication(succeeded: Bool) {
        count("signet_auth_attempts_total", ["result": succeeded ? "success" : "failure"])
    }

    /// An accepted client connection; `connectionClosed()` when it ends.
    func connectionOpened() {
        connectionsAccepted.increment()
        connectionsActive.increment()
    }

    func connectionClosed() {
        connectionsActive.decrement()
    }

    /// A signing job entered the signer pool; `signerJobDone()` when it left.
    func signerJobQueued() {
        signerQueue.increment()
    }

    func signerJobDone() {
        signerQueue.decrement()
    }

    // MARK: Messages

    func tempfailed(_ reason: TempfailReason) {
        count("signet_messages_tempfailed_total", ["reason": reason.rawValue])
    }

    func rejected(_ reason: RejectReason) {
        count("signet_messages_rejected_total", ["reason": reason.rawValue])
    }

    /// A non-positive reply of the next hop's own, passed back to the client.
    func nextHopRefused(command: String, code: Int) {
        count("signet_next_hop_refused_total", ["command": command, "class": code >= 500 ? "5xx" : "4xx"])
    }

    func nextHopConnection(succeeded: Bool) {
        count("signet_next_hop_connections_total", ["result": succeeded ? "success" : "failure"])
        nextHopUp.set(succeeded ? 1 : 0)
    }

    /// A client got a next-hop connection an earlier client left (`NextHopConnectionCache`).
    func nextHopConnectionReused() {
        count("signet_next_hop_connections_total", ["result": "reused"])
    }

    /// The number of kept next-hop connections changed by `change`. A change, not a total: during a reload the
    /// old cache closes what it kept while the new one already keeps connections.
    func nextHopIdleConnections(changedBy change: Int) {
        if change > 0 {
            nextHopIdle.increment(by: Double(change))
        } else if change < 0 {
            nextHopIdle.decrement(by: Double(-change))
        }
    }

    func signature(domain: String, selector: String, algorithm: String, backend: String, succeeded: Bool) {
        count(
            "signet_signatures_total",
            [
                "domain": domain, "selector": selector, "algorithm": algorithm, "backend": backend,
                "result": succeeded ? "success" : "failure",
            ])
    }

    func unsigned(_ reason: String) {
        count("signet_messages_unsigned_total", ["reason": reason])
    }

    // MARK: Later issues

    /// One ARC set added; `cv` is the chain validation result (none, pass, fail).
    public func arcSeal(cv: String) {
        count("signet_arc_seals_total", ["cv": cv])
    }

    /// One verification result. Method and result come from fixed lists (RFC 8601 names), so the series stay few.
    public func authenticationResult(method: String, result: String) {
        count("signet_authentication_results_total", ["method": method, "result": result])
    }

    /// One SRS rewrite; `direction` is forward or reverse, `result` e.g. rewritten, passed, invalid, expired.
    public func srsRewrite(direction: String, result: String) {
        count("signet_srs_rewrites_total", ["direction": direction, "result": result])
    }

    /// The out-of-process signer agent was restarted.
    public func signerAgentRestarted() {
        agentRestarts.increment()
    }

    // MARK: Keys

    /// The expiry gauges of the configuration in effect: one per key that has `expires`; the gauges of keys no
    /// longer configured are removed, so a retired key cannot keep an expiry alert firing.
    func setKeyExpiries(_ keys: [(domain: String, selector: String, unixTime: Int)]) {
        expiries.withLockedValue { meters in
            var kept: [LabelSet: Meter] = [:]
            for key in keys {
                let labels = LabelSet(name: "expiry", values: [key.domain, key.selector])
                let meter =
                    meters[labels]
                    ?? Meter(
                        label: "signet_key_expiry_timestamp_seconds",
                        dimensions: [("domain", key.domain), ("selector", key.selector)], factory: factory)
                meter.set(key.unixTime)
                kept[labels] = meter
            }
            for (labels, meter) in meters where kept[labels] == nil { meter.destroy() }
            meters = kept
        }
    }
}

extension Timer {
    /// Records the time since `start`.
    func record(since start: ContinuousClock.Instant) {
        record(start.duration(to: .now))
    }

    func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
