import SRS

/// Answers address look-ups the way postsrsd does for Postfix: `forward` for `sender_canonical_maps`, `reverse`
/// for `recipient_canonical_maps`. "Not found" leaves Postfix's address as it is.
public struct SRSLookup: Sendable {
    /// One answer, independent of the wire protocol.
    public enum Answer: Equatable, Sendable {
        case found(String)
        /// No rewrite: not an SRS address, a local sender, or one SRS refuses (forged, expired); the reason is
        /// for the log.
        case notFound(String)
        /// Postfix should try again later (a too-long rewrite with the tempfail fallback).
        case temporary(String)
    }

    public let scheme: SRSScheme
    public let domain: String
    public let localDomains: [String]
    public let tooLong: RelayConfiguration.SRSSettings.TooLongFallback

    /// A look-up service writing SRS addresses of `domain`; senders in `localDomains` (`.domain` for subdomains)
    /// are not rewritten.
    public init(
        scheme: SRSScheme, domain: String, localDomains: [String] = [],
        tooLong: RelayConfiguration.SRSSettings.TooLongFallback = .pass
    ) {
        self.scheme = scheme
        self.domain = domain.lowercased()
        self.localDomains = localDomains.map { $0.lowercased() }
        self.tooLong = tooLong
    }

    /// The SRS address to send `address` as.
    public func forward(_ address: String, now: Int) -> Answer {
        guard let at = address.utf8.lastIndex(of: UInt8(ascii: "@")) else { return .notFound("no domain") }
        let senderDomain = address[address.index(after: at)...].lowercased()
        if senderDomain == domain
            || localDomains.contains(where: { $0.hasPrefix(".") ? senderDomain.hasSuffix($0) : senderDomain == $0 })
        {
            return .notFound("local domain")
        }
        do {
            let rewritten = try scheme.forward(address, domain: domain, now: now)
            return rewritten == address ? .notFound("not rewritten") : .found(rewritten)
        } catch {
            if case .localPartTooLong = error, tooLong == .tempfail { return .temporary(error.description) }
            return .notFound(error.description)
        }
    }

    /// The address `address` stands for, when it is a valid SRS address.
    public func reverse(_ address: String, now: Int) -> Answer {
        do {
            return .found(try scheme.reverse(address, now: now))
        } catch {
            return .notFound(error.description)
        }
    }
}
