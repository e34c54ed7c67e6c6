import NIOConcurrencyHelpers
import SMTPProtocol

/// What the next hop's EHLO offered the last time Signet connected to it, so that the EHLO reply a client gets
/// (before any downstream connection is opened) offers only what both sides support.
final class NextHopCapabilityCache: Sendable {
    private let latest = NIOLockedValueBox<SMTPCapabilities?>(nil)

    /// The capabilities seen last; nil until a connection has succeeded.
    var capabilities: SMTPCapabilities? { latest.withLockedValue { $0 } }

    func update(_ capabilities: SMTPCapabilities) {
        latest.withLockedValue { $0 = capabilities }
    }
}

extension SMTPCapabilities {
    /// What Signet offers its client in front of a next hop that offers `nextHop` (nil: not known yet).
    ///
    /// Extensions that change what is relayed must be supported end to end: SMTPUTF8 and 8BITMIME (Signet does not
    /// downgrade), DSN (its parameters are passed through), SIZE (the smaller limit). The rest are hop by hop and
    /// Signet's own: PIPELINING, CHUNKING (Signet turns BDAT into DATA when the next hop lacks it), STARTTLS, AUTH,
    /// ENHANCEDSTATUSCODES. Until the next hop is known Signet offers its own set, and the next hop's refusals of
    /// what it lacks reach the client unchanged.
    func offered(inFrontOf nextHop: SMTPCapabilities?) -> SMTPCapabilities {
        guard let nextHop else { return self }
        var result = self
        result.smtpUTF8 = smtpUTF8 && nextHop.smtpUTF8
        result.eightBitMIME = eightBitMIME && nextHop.eightBitMIME
        result.dsn = nextHop.dsn
        if let mine = size {
            if let theirs = nextHop.size, theirs > 0 { result.size = mine == 0 ? theirs : min(mine, theirs) }
        }
        return result
    }
}
