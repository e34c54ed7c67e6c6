import CoreMetrics
import DKIM
import SMTPProtocol

/// The classification of replies and messages into the relay's counters; kept apart from the session so the
/// session makes one call at each point.
extension RelayMetrics {
    func received(bytes: Int) {
        messagesReceived.increment()
        receivedBytes.increment(by: bytes)
    }

    /// A reply to MAIL or RCPT passed back from the next hop. A 4xx on a session that broke is one Signet made
    /// up for a lost or timed-out connection (`NextHopReplies`), not the next hop's.
    func passedBack(_ reply: SMTPReply, command: String, nextHopUsable: Bool) {
        guard !reply.isPositive else { return }
        if reply.isTransientFailure && !nextHopUsable {
            tempfailed(.nextHopLost)
        } else {
            nextHopRefused(command: command, code: reply.code)
        }
    }

    /// Signet's own refusal of a message at end of data (too large, NUL bytes, spool failure).
    func refusedLocally(_ reply: SMTPReply) {
        if reply.isTransientFailure {
            tempfailed(.localError)
        } else {
            if reply.code == 552 {
                let header = reply.lines.first?.hasPrefix(InboundSession.headerLimitText) == true
                rejected(header ? .headerTooLarge : .tooLarge)
            } else {
                rejected(.malformed)
            }
        }
    }

    /// Counts the signatures made for `message` (or why it has none); returns them as `d= s=` for the log line.
    func signed(_ message: AssembledMessage, duration: Duration?) -> [String] {
        if let duration, !message.signatures.isEmpty { signing.record(duration) }
        if let reason = message.unsignedReason {
            unsigned(reason.rawValue)
        } else if message.signatures.isEmpty {
            unsigned("no_header")  // nothing before the end of data looked like a header
        }
        return message.signatures.map { signature in
            let signer = signature.signer
            self.signature(
                domain: signer.domain, selector: signer.selector, algorithm: signer.algorithm.rawValue,
                backend: signer.backendLabel, succeeded: true)
            return "d=\(signer.domain) s=\(signer.selector)"
        }
    }

    func signingFailed(_ message: AssembledMessage) {
        tempfailed(.signingFailed)
        for signature in message.signatures {
            let signer = signature.signer
            self.signature(
                domain: signer.domain, selector: signer.selector, algorithm: signer.algorithm.rawValue,
                backend: signer.backendLabel, succeeded: false)
        }
    }

    /// The next hop's answer to the message; returns the transaction's outcome for its log line.
    func delivered(_ reply: SMTPReply, nextHopUsable: Bool, bytes: Int, nextHopDuration: Duration?) -> String {
        if let nextHopDuration { nextHopReply.record(nextHopDuration) }
        if reply.isPositive {
            messagesRelayed.increment()
            relayedBytes.increment(by: bytes)
            return "relayed"
        }
        if reply.isTransientFailure && !nextHopUsable {
            tempfailed(.nextHopLost)
            return "tempfailed"
        }
        nextHopRefused(command: "data", code: reply.code)
        return "refused"
    }
}

extension DKIMSigner {
    /// Where this signer's private-key operation happens, as the `backend` label of `signet_signatures_total`.
    var backendLabel: String {
        if keyReference != nil { return "agent" }
        return key != nil ? "in-process" : "pkcs11"
    }
}
