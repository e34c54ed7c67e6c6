import Foundation
import SMTPProtocol
import SRS

/// The relay's SRS policy: which envelope addresses are rewritten and what the client is told when one cannot be.
///
/// Forward: MAIL FROM of a sender outside the local domains becomes `SRS0=...@domain` (null sender and local
/// senders untouched). Reverse: RCPT TO of an SRS address in `domain` becomes the address it stands for; a forged,
/// expired or malformed one is refused with 550 5.1.1. Everything else passes unchanged.
struct SRSRewriter: Sendable {
    /// What to do with one address.
    enum Decision: Equatable {
        /// Use this address (the original or its rewrite).
        case use(String)
        /// Answer the client with this reply instead of asking the next hop.
        case refuse(SMTPReply)
    }

    private let settings: RelayConfiguration.SRSSettings
    private let scheme: SRSScheme?
    private let domain: String
    let statistics: SRSStatistics
    /// Unix time now; a parameter so that tests can move the clock.
    private let clock: @Sendable () -> Int

    /// A rewriter that changes nothing.
    static func disabled(statistics: SRSStatistics) -> SRSRewriter {
        SRSRewriter(settings: .init(), scheme: nil, statistics: statistics, clock: { 0 })
    }

    private init(
        settings: RelayConfiguration.SRSSettings, scheme: SRSScheme?, statistics: SRSStatistics,
        clock: @escaping @Sendable () -> Int
    ) {
        self.settings = settings
        self.scheme = scheme
        self.domain = settings.domain ?? ""
        self.statistics = statistics
        self.clock = clock
    }

    /// A rewriter for `settings`; reads the secrets file, so a missing or empty one fails here, before listening.
    init(
        _ settings: RelayConfiguration.SRSSettings, statistics: SRSStatistics,
        clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) throws {
        guard settings.mode != .off else {
            self.init(settings: settings, scheme: nil, statistics: statistics, clock: clock)
            return
        }
        let secrets = try settings.resolvedSecrets()
        var options = SRSOptions()
        options.maximumAgeDays = settings.maxAge
        options.hashEncoding = settings.hashEncoding
        options.separator = settings.separator.utf8.first ?? UInt8(ascii: "=")
        do {
            let scheme = try SRSScheme(secrets: secrets, options: options)
            self.init(settings: settings, scheme: scheme, statistics: statistics, clock: clock)
        } catch {
            throw ConfigurationError(["srs: \(error)\(settings.secretsFile.map { " (in \($0))" } ?? "")"])
        }
    }

    /// Secrets one a line, the first signs; line ends and empty lines are ignored, as postsrsd reads its file.
    static func readSecrets(_ path: String) throws -> [String] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(["srs.secrets_file: cannot read \(path): \(error.localizedDescription)"])
        }
        let secrets = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).map(String.init)
        guard !secrets.isEmpty else { throw ConfigurationError(["srs.secrets_file: \(path) holds no secret"]) }
        return secrets
    }

    /// MAIL FROM in forward mode.
    func sender(_ from: String) -> Decision {
        guard settings.rewritesSenders, let scheme else { return .use(from) }
        guard let at = from.utf8.lastIndex(of: UInt8(ascii: "@")), !isLocal(from[from.index(after: at)...]) else {
            statistics.sendersNotRewritten.increment()  // the null sender, postmaster, or one of ours
            return .use(from)
        }
        do {
            let rewritten = try scheme.forward(from, domain: domain, now: clock())
            statistics.sendersRewritten.increment()
            return .use(rewritten)
        } catch {
            if case .localPartTooLong = error {
                statistics.sendersTooLong.increment()
                if settings.tooLong == .tempfail {
                    return .refuse(
                        SMTPReply(
                            code: 451, EnhancedStatusCode(4, 1, 7),
                            "sender address too long for SRS forwarding (local part over 64 octets), try again later"))
                }
            } else {
                statistics.sendersMalformed.increment()
            }
            // The sender cannot be rewritten; relaying it as it is loses only what SRS would have added.
            return .use(from)
        }
    }

    /// RCPT TO in reverse mode.
    func recipient(_ to: String) -> Decision {
        guard settings.reversesRecipients, let scheme,
            let at = to.utf8.lastIndex(of: UInt8(ascii: "@")),
            to[to.index(after: at)...].lowercased() == domain,
            SRSScheme.isSRS(localPart: to[..<at])
        else { return .use(to) }  // not an SRS address of ours: somebody else's look-alike or a plain mailbox
        do {
            let original = try scheme.reverse(to, now: clock())
            statistics.recipientsReversed.increment()
            return .use(original)
        } catch {
            let text: String
            switch error {
            case .invalidHash:
                statistics.recipientsForged.increment()
                text = "invalid SRS address: the hash does not match (forged, or made with a retired secret)"
            case .expired(_, let age, let maximum):
                statistics.recipientsExpired.increment()
                text = "expired SRS address: \(age) days old, bounces are accepted for \(maximum) days"
            case .futureTimestamp:
                statistics.recipientsExpired.increment()
                text = "invalid SRS address: its timestamp lies in the future"
            default:
                statistics.recipientsMalformed.increment()
                text = "malformed SRS address"
            }
            return .refuse(SMTPReply(code: 550, EnhancedStatusCode(5, 1, 1), text))
        }
    }

    private func isLocal(_ senderDomain: Substring) -> Bool {
        let lowered = senderDomain.lowercased()
        if lowered == domain { return true }
        return settings.localDomains.contains { local in
            local.hasPrefix(".") ? lowered.hasSuffix(local) : lowered == local
        }
    }
}

extension RelayConfiguration.SRSSettings {
    /// The secrets in effect: `secrets`, or those read from `secretsFile` now (so a reload picks up a rotation).
    public func resolvedSecrets() throws -> [String] {
        try secretsFile.map(SRSRewriter.readSecrets) ?? secrets
    }
}
