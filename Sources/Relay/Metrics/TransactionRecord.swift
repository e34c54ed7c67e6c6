import Logging
import SMTPProtocol
import Synchronization

/// What one transaction did, gathered as it runs, for its metrics and its one log line. Holds no address of the
/// sender or recipients beyond the sender's domain, and never message content.
///
/// A class: the session reads and updates it through an optional at several awaits per message, and as a struct
/// each read copied every field (about 0.8% of the relay's CPU per message).
final class TransactionRecord {
    /// Signet's own id for the transaction (it never queues, so it has no queue id): correlates its log line with
    /// the next hop's, whose queue id is in `next_hop_reply`.
    var id: String { String(number & 0xFF_FFFF_FFFF, radix: 16, uppercase: true) }
    private let number: UInt64
    let started = ContinuousClock.now
    let senderDomain: String
    var recipients = 0
    var size = 0
    var endOfData: ContinuousClock.Instant?
    var signing: Duration?
    var nextHop: Duration?
    var signatures: [String] = []
    var unsigned: String?
    /// Verification results in short (`dkim=pass spf=fail dmarc=fail arc=none`), when the relay verifies.
    var authentication: String?
    /// The ARC set added (`i=2 cv=pass`), or why none was.
    var arcSeal: String?

    /// Ids count up from a random start: unique within the process, unlike each other across restarts, and no
    /// system call per transaction.
    private static let sequence = Atomic<UInt64>(UInt64.random(in: 0...UInt64.max))

    init(sender: String) {
        number = Self.sequence.wrappingAdd(1, ordering: .relaxed).oldValue
        // In UTF-8: a search by Character decodes grapheme clusters, for every message.
        if let at = sender.utf8.lastIndex(of: UInt8(ascii: "@")) {
            senderDomain = sender[sender.utf8.index(after: at)...].lowercased()
        } else {
            senderDomain = sender.isEmpty ? "<>" : "-"
        }
    }

    /// The end of data was answered with `reply`: latency histograms, then the transaction's log line.
    func finished(with reply: SMTPReply, outcome: String, metrics: RelayMetrics, logger: Logger, client: String) {
        let now = ContinuousClock.now
        metrics.transaction.record(started.duration(to: now))
        if let endOfData {
            let wait = endOfData.duration(to: now)
            metrics.endOfDataReply.record(wait)
            metrics.addedLatency.record(wait - (nextHop ?? .zero))
        }
        log(reply: reply, outcome: outcome, logger: logger, client: client, now: now)
    }

    /// Its log line alone, for a transaction that ended before its end of data: refused or failed at MAIL, or
    /// abandoned (RSET, a new EHLO, QUIT or a disconnect; `reply` nil).
    func log(reply: SMTPReply?, outcome: String, logger: Logger, client: String, now: ContinuousClock.Instant = .now) {
        func milliseconds(_ duration: Duration?) -> Logger.MetadataValue {
            guard let duration else { return "-" }
            let (seconds, attoseconds) = duration.components
            return "\(Double(seconds) * 1000 + Double(attoseconds) / 1e15)"
        }
        // Inside the call: swift-log takes metadata as an autoclosure, so nothing is formatted below the log level.
        logger.info(
            "transaction",
            metadata: [
                "id": "\(id)", "client": "\(client)", "sender_domain": "\(senderDomain)", "recipients": "\(recipients)",
                "size": "\(size)", "outcome": "\(outcome)",
                "signatures": .array(signatures.map { .string($0) }), "unsigned": "\(unsigned ?? "-")",
                "next_hop_reply":
                    "\(reply.map { "\($0.code) \($0.enhancedCode.map { "\($0) " } ?? "")\($0.lines.first ?? "")" } ?? "-")",
                "signing_ms": milliseconds(signing), "next_hop_ms": milliseconds(nextHop),
                "end_of_data_ms": milliseconds(endOfData.map { $0.duration(to: now) }),
                "transaction_ms": milliseconds(started.duration(to: now)),
                "authentication": "\(authentication ?? "-")", "arc_seal": "\(arcSeal ?? "-")",
            ])
    }
}
