import MailMessage

/// The DMARC result names of RFC 7489 §11.2 / RFC 8601.
public enum DMARCStatus: String, Sendable, Hashable {
    case pass, fail, none, temperror, permerror
}

/// What DMARC needs from the other checks, kept to plain values so that it does not depend on how the DKIM and SPF
/// verifiers spell their results.
public struct DMARCInput: Sendable, Hashable {
    /// One authenticated identifier and its RFC 8601 result name ("pass", "fail", ...): a DKIM signature's `d=`
    /// domain, or the domain SPF checked (the MAIL FROM domain, or the HELO domain when MAIL FROM was empty,
    /// RFC 7489 §3.1.2).
    public struct Outcome: Sendable, Hashable {
        public var domain: String
        public var result: String
        public init(domain: String, result: String) {
            self.domain = domain
            self.result = result.lowercased()
        }
    }
    public typealias DKIM = Outcome
    public typealias SPF = Outcome

    /// The RFC5322.From domain.
    public var fromDomain: String
    public var dkim: [DKIM]
    public var spf: SPF?

    public init(fromDomain: String, dkim: [DKIM] = [], spf: SPF? = nil) {
        self.fromDomain = fromDomain
        self.dkim = dkim
        self.spf = spf
    }
}

/// A DMARC evaluation: the result, the policy that applies, and what to do with the message.
public struct DMARCResult: Sendable, Hashable {
    public var status: DMARCStatus
    /// Why, in words, for anything but a plain pass or fail.
    public var reason: String?
    /// The From domain, lower case, A-labels (as given when it was not a valid domain).
    public var fromDomain: String
    /// The From domain's organizational domain, when the From domain is valid and not a public suffix.
    public var organizationalDomain: String?
    /// The record used and the domain whose `_dmarc` name held it.
    public var record: DMARCRecord?
    public var recordDomain: String?
    /// The policy the owner asked for this message: `p`, or `sp`/`np` when the record came from the
    /// organizational domain (RFC 7489 §6.6.3, RFC 9091 §4).
    public var policy: DMARCPolicy?
    /// What the receiver should do: the policy on fail (after `pct` sampling), `none` otherwise.
    public var disposition: DMARCPolicy
    /// The aligned, passing DKIM domain, if any.
    public var alignedDKIMDomain: String?
    /// The aligned, passing SPF domain, if any.
    public var alignedSPFDomain: String?
    /// `pct` sampling left this failing message out, so the disposition is one step milder than the policy.
    public var sampledOut: Bool

    init(status: DMARCStatus, reason: String? = nil, fromDomain: String, organizationalDomain: String? = nil) {
        self.status = status
        self.reason = reason
        self.fromDomain = fromDomain
        self.organizationalDomain = organizationalDomain
        self.disposition = .none
        self.sampledOut = false
    }
}

/// DMARC (RFC 7489) over a `DNSResolver`: policy discovery, identifier alignment, result and disposition.
public struct DMARCEvaluator: Sendable {
    public var resolver: any DNSResolver
    public var publicSuffixList: PublicSuffixList
    /// Returns a number in 0..<100 for `pct` sampling; replaceable so tests can choose.
    public var sample: @Sendable () -> Int

    public init(
        resolver: any DNSResolver, publicSuffixList: PublicSuffixList = .shared,
        sample: @escaping @Sendable () -> Int = { Int.random(in: 0..<100) }
    ) {
        self.resolver = resolver
        self.publicSuffixList = publicSuffixList
        self.sample = sample
    }

    /// Evaluates DMARC for one message.
    public func evaluate(_ input: DMARCInput) async -> DMARCResult {
        var from = input.fromDomain
        if from.hasSuffix(".") { from.removeLast() }
        guard let fromDomain = DomainName.asciiLowercased(from) else {
            return DMARCResult(status: .permerror, reason: "the From domain is not a valid domain", fromDomain: from)
        }
        // A public suffix has no organizational domain; RFC 7489 §3.2 step 3 makes it its own.
        let organizational = publicSuffixList.organizationalDomain(of: fromDomain) ?? fromDomain
        var result = DMARCResult(status: .none, fromDomain: fromDomain, organizationalDomain: organizational)

        // §6.6.3: the From domain's record, else the organizational domain's.
        let discovery: Discovery
        do {
            discovery = try await discover(fromDomain: fromDomain, organizationalDomain: organizational)
        } catch {
            result.status = .temperror
            result.reason = error.description
            return result
        }
        let record: DMARCRecord
        switch discovery {
        case .none(let reason):
            result.reason = reason
            return result
        case .broken(let domain, let reason):
            result.status = .permerror
            result.recordDomain = domain
            result.reason = reason
            return result
        case .found(let domain, let found):
            record = found
            result.record = found
            result.recordDomain = domain
        }

        // §3.1: only passing results count, and only when their domain aligns with the From domain.
        for dkim in input.dkim where dkim.result == "pass" {
            if let domain = aligned(dkim.domain, fromDomain, organizational, record.dkimAlignment) {
                result.alignedDKIMDomain = domain
                break
            }
        }
        if let spf = input.spf, spf.result == "pass" {
            result.alignedSPFDomain = aligned(spf.domain, fromDomain, organizational, record.spfAlignment)
        }

        // The policy: p for the domain that published it; sp (or np for a domain that does not exist) for a
        // subdomain that took the organizational domain's record.
        var policy = record.policy
        if result.recordDomain != fromDomain {
            if let np = record.nonExistentPolicy, await domainDoesNotExist(fromDomain) {
                policy = np
            } else if let sp = record.subdomainPolicy {
                policy = sp
            }
        }
        result.policy = policy

        if result.alignedDKIMDomain != nil || result.alignedSPFDomain != nil {
            result.status = .pass
            return result
        }
        result.status = .fail
        result.disposition = policy
        // §6.6.4: pct < 100 applies the policy to that share of failing mail; the rest gets the next milder one.
        if policy != .none && record.percentage < 100 && sample() >= record.percentage {
            result.disposition = policy.downgraded
            result.sampledOut = true
        }
        return result
    }

    private enum Discovery {
        case found(domain: String, DMARCRecord)
        case none(reason: String)
        case broken(domain: String, reason: String)
    }

    private func discover(fromDomain: String, organizationalDomain: String) async throws(DNSFailure) -> Discovery {
        var domain = fromDomain
        while true {
            let texts = try await resolver.txt("_dmarc." + domain).records.filter(DMARCRecord.isDMARC)
            if texts.count > 1 {
                return .broken(domain: domain, reason: "_dmarc.\(domain) has \(texts.count) DMARC records")
            }
            if let text = texts.first {
                do {
                    return .found(domain: domain, try DMARCRecord(parsing: text))
                } catch {
                    return .broken(domain: domain, reason: "_dmarc.\(domain): \(error.message)")
                }
            }
            guard domain != organizationalDomain else {
                return .none(reason: "no DMARC record for \(fromDomain)")
            }
            domain = organizationalDomain
        }
    }

    /// RFC 9091 §2.1: a domain with neither A, AAAA nor MX records (NXDOMAIN or NODATA for each). A lookup that
    /// fails counts as existing, so a DNS problem never makes a policy stricter.
    private func domainDoesNotExist(_ domain: String) async -> Bool {
        do {
            guard try await resolver.a(domain).isEmpty else { return false }
            guard try await resolver.aaaa(domain).isEmpty else { return false }
            return try await resolver.mx(domain).isEmpty
        } catch {
            return false
        }
    }

    /// The authenticated domain in lower-case A-labels when it aligns with the From domain, else nil.
    private func aligned(
        _ domain: String, _ fromDomain: String, _ organizational: String, _ mode: DMARCAlignment
    ) -> String? {
        var name = domain
        if name.hasSuffix(".") { name.removeLast() }
        guard let ascii = DomainName.asciiLowercased(name) else { return nil }
        switch mode {
        case .strict:
            return ascii == fromDomain ? ascii : nil
        case .relaxed:
            let matches =
                ascii == fromDomain || (publicSuffixList.organizationalDomain(of: ascii) ?? ascii) == organizational
            return matches ? ascii : nil
        }
    }
}

extension DMARCResult {
    /// The result as an Authentication-Results entry: `dmarc=pass (p=reject dis=none) header.from=example.com`.
    ///
    /// The comment follows the common receiver form (p and sp from the record, the disposition); a reason is added
    /// for none, temperror and permerror.
    public var authenticationResult: AuthenticationResult {
        var comments: [String] = []
        if let record {
            var words = ["p=\(record.policy.rawValue)"]
            if let subdomainPolicy = record.subdomainPolicy { words.append("sp=\(subdomainPolicy.rawValue)") }
            words.append("dis=\(disposition.rawValue)")
            comments.append(words.joined(separator: " "))
        }
        let withReason = status == .none || status == .temperror || status == .permerror
        return AuthenticationResult(
            method: "dmarc", result: status.rawValue, reason: withReason ? reason : nil, comments: comments,
            properties: [AuthenticationProperty("header", "from", fromDomain)])
    }
}
