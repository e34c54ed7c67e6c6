import NIOConcurrencyHelpers
import NIOCore
import SMTPProtocol

/// Lets a shutdown close idle sessions at once and the others as soon as their transaction ends, instead of
/// holding every connection (an MTA's idle cached connections above all) for the whole grace period.
final class SessionDrain: Sendable {
    private struct State {
        var inTransaction = false
        var draining = false
    }

    private let state = NIOLockedValueBox(State())

    /// The reply a drained client gets; 421 makes it retry elsewhere or later (RFC 5321 §3.8).
    static func reply(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 421, EnhancedStatusCode(4, 3, 2), "\(hostname) shutting down, try again later")
    }

    /// A transaction starts (MAIL); false when the server is draining and the session should close instead.
    func enterTransaction() -> Bool {
        state.withLockedValue { state in
            guard !state.draining else { return false }
            state.inTransaction = true
            return true
        }
    }

    /// The transaction ended (answered end of data, RSET, refusal, a new EHLO).
    func leaveTransaction() {
        state.withLockedValue { $0.inTransaction = false }
    }

    /// Whether the session should say 421 and close now: draining, and between transactions.
    var shouldClose: Bool {
        state.withLockedValue { $0.draining && !$0.inTransaction }
    }

    /// Starts draining; true when the session is idle and may be closed right away.
    func drain() -> Bool {
        state.withLockedValue { state in
            state.draining = true
            return !state.inTransaction
        }
    }
}
