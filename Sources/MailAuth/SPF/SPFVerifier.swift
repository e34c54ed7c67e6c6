#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Evaluates SPF (RFC 7208): `check_host()` for the HELO and MAIL FROM identities, asking DNS only through a
/// `DNSResolver`.
///
/// Work is bounded by the RFC's limits: at most 10 DNS-querying terms (`include a mx ptr exists redirect`) per
/// check, at most 2 void lookups, at most 10 MX hosts per `mx` and 10 names per `ptr` or `%{p}`; on top of those
/// a ceiling on all DNS questions asked in one check, so no record can make a check run long.
public struct SPFVerifier: Sendable {
    /// The RFC's processing limits (§4.6.4); the defaults are the RFC's numbers.
    public struct Limits: Sendable, Hashable {
        public var dnsTerms = 10
        public var voidLookups = 2
        public var mxNames = 10
        public var ptrNames = 10
        /// Every DNS question in one check, including the address lookups the RFC does not count.
        public var totalQueries = 150
        public init() {}
    }

    public var resolver: any DNSResolver
    /// The `%{r}` macro: the host doing the check (RFC 7208 §7.2).
    public var receiver: String
    public var limits: Limits
    /// Seconds since 1970 for `%{t}`; a parameter so tests can fix it.
    public var now: @Sendable () -> Int

    public init(
        resolver: any DNSResolver, receiver: String = "unknown", limits: Limits = Limits(),
        now: @escaping @Sendable () -> Int = { Int(time(nil)) }
    ) {
        self.resolver = resolver
        self.receiver = receiver
        self.limits = limits
        self.now = now
    }

    /// Checks the HELO identity (§2.3): `check_host(ip, helo, postmaster@helo)`.
    public func checkHELO(clientIP: IPAddress, helo: String) async -> SPFResult {
        await checkHost(clientIP: clientIP, domain: helo, sender: "postmaster@" + helo, helo: helo, identity: .helo)
    }

    /// Checks the MAIL FROM identity (§2.4); an empty reverse-path is checked as `postmaster@<helo>`.
    public func checkMailFrom(clientIP: IPAddress, mailFrom: String, helo: String) async -> SPFResult {
        var sender = mailFrom
        if sender.hasPrefix("<") && sender.hasSuffix(">") && sender.count >= 2 {
            sender = String(sender.dropFirst().dropLast())
        }
        guard let at = sender.lastIndex(of: "@") else {
            // No domain: the null path (or a bare local part) is checked against the HELO name (§4.3).
            return await checkHost(
                clientIP: clientIP, domain: helo, sender: "postmaster@" + helo, helo: helo, identity: .mailfrom)
        }
        let domain = String(sender[sender.index(after: at)...])
        return await checkHost(clientIP: clientIP, domain: domain, sender: sender, helo: helo, identity: .mailfrom)
    }

    /// `check_host(<ip>, <domain>, <sender>)` of §4; `helo` feeds the `%{h}` macro.
    public func checkHost(
        clientIP: IPAddress, domain: String, sender: String, helo: String, identity: SPFResult.Identity
    ) async -> SPFResult {
        let ip = clientIP.unmapped
        var localPart = "postmaster"
        var senderDomain = domain
        if let at = sender.lastIndex(of: "@") {
            if at > sender.startIndex { localPart = String(sender[..<at]) }
            senderDomain = String(sender[sender.index(after: at)...])
        }
        let fullSender = localPart + "@" + senderDomain
        var normalized = domain.lowercased()
        if normalized.hasSuffix(".") { normalized.removeLast() }
        func result(
            _ status: SPFResult.Status, _ reason: String, _ mechanism: String? = nil, _ explanation: String? = nil
        )
            -> SPFResult
        {
            SPFResult(
                status: status, identity: identity, domain: normalized, sender: fullSender, clientIP: ip,
                reason: reason,
                mechanism: mechanism, explanation: explanation)
        }
        // §4.3: a malformed or single-label domain has no policy.
        if let problem = Self.domainProblem(normalized) {
            return result(.none, "'\(domain)' is not a domain SPF can check: \(problem)")
        }
        var evaluation = Evaluation(
            macros: SPFMacroValues(
                sender: fullSender, localPart: localPart, senderDomain: senderDomain, domain: normalized,
                ip: ip, helo: helo, receiver: receiver, timestamp: now()))
        do {
            let outcome = try await evaluate(domain: normalized, explain: true, &evaluation)
            return result(outcome.status, outcome.reason, outcome.mechanism, outcome.explanation)
        } catch {
            switch error {
            case .temporary(let reason): return result(.temperror, reason)
            case .permanent(let reason): return result(.permerror, reason)
            }
        }
    }

    // MARK: - Evaluation

    /// What stops a check early.
    enum Abort: Error {
        case temporary(String)
        case permanent(String)
    }

    /// One check's counters and macro values, threaded through include and redirect.
    struct Evaluation {
        var macros: SPFMacroValues
        var dnsTerms = 0
        var voidLookups = 0
        var queries = 0
        /// The client's validated names, once `%{p}` has asked for them.
        var validatedNames: [String]?
    }

    /// The outcome of one record's evaluation.
    struct Outcome {
        var status: SPFResult.Status
        var reason: String
        var mechanism: String?
        var explanation: String?
    }

    /// Finds and evaluates the record of `domain`; `none` when it has none. `explain` is false inside `include`,
    /// whose `exp=` must not be used (§6.2).
    private func evaluate(domain: String, explain: Bool, _ state: inout Evaluation) async throws(Abort) -> Outcome {
        let answer = try await ask(domain, &state, countVoid: false) { try await resolver.txt($0) }
        let records = answer.records.filter(SPFRecord.isSPF)
        guard !records.isEmpty else { return Outcome(status: .none, reason: "\(domain) has no SPF record") }
        guard records.count == 1 else { throw .permanent("\(domain) has \(records.count) SPF records") }
        let record: SPFRecord
        do {
            record = try SPFRecord(parsing: records[0])
        } catch {
            throw .permanent("syntax error in the SPF record of \(domain): \(error)")
        }
        let savedDomain = state.macros.domain
        state.macros.domain = domain
        defer { state.macros.domain = savedDomain }

        for directive in record.directives {
            if directive.mechanism.queriesDNS { try countTerm(directive.text, &state) }
            if try await matches(directive.mechanism, &state) {
                let status = directive.qualifier.status
                var outcome = Outcome(
                    status: status, reason: "\(domain) matched '\(directive.text)'", mechanism: directive.text)
                if status == .fail, explain, let exp = record.explanation {
                    outcome.explanation = await explanation(exp, &state)
                }
                return outcome
            }
        }
        if let redirect = record.redirect {
            try countTerm("redirect=" + redirect.text, &state)
            let target = try await expandDomain(redirect, &state)
            guard Self.domainProblem(target) == nil else {
                throw .permanent("redirect=\(redirect.text) names the malformed domain '\(target)'")
            }
            // The target's record decides, its own exp= included (§6.1).
            let outcome = try await evaluate(domain: target, explain: explain, &state)
            guard outcome.status != .none else {
                throw .permanent("redirect=\(redirect.text): \(target) has no SPF record")
            }
            return outcome
        }
        return Outcome(status: .neutral, reason: "no mechanism in the SPF record of \(domain) matched")
    }

    private func countTerm(_ term: String, _ state: inout Evaluation) throws(Abort) {
        state.dnsTerms += 1
        if state.dnsTerms > limits.dnsTerms {
            throw .permanent("more than \(limits.dnsTerms) DNS-querying terms (at '\(term)')")
        }
    }

    private func matches(_ mechanism: SPFRecord.Mechanism, _ state: inout Evaluation) async throws(Abort) -> Bool {
        let ip = state.macros.ip
        switch mechanism {
        case .all:
            return true
        case .ip4(let network, let prefix), .ip6(let network, let prefix):
            return ip.matches(network, prefixLength: prefix)
        case .a(let spec, let ip4Prefix, let ip6Prefix):
            let name = try await target(spec, &state)
            let prefix = ip.bitWidth == 32 ? ip4Prefix : ip6Prefix
            return try await addresses(of: name, &state, countVoid: true).contains {
                ip.matches($0, prefixLength: prefix)
            }
        case .mx(let spec, let ip4Prefix, let ip6Prefix):
            let name = try await target(spec, &state)
            let exchanges = try await ask(name, &state, countVoid: true) { try await resolver.mx($0) }.records
            // §4.6.4: more than 10 MX names is an error, not a silent cut.
            guard exchanges.count <= limits.mxNames else {
                throw .permanent("\(name) has \(exchanges.count) MX records, more than \(limits.mxNames)")
            }
            let prefix = ip.bitWidth == 32 ? ip4Prefix : ip6Prefix
            for exchange in exchanges.sorted(by: { $0.preference < $1.preference }) {
                if try await addresses(of: exchange.exchange, &state, countVoid: false).contains(where: {
                    ip.matches($0, prefixLength: prefix)
                }) {
                    return true
                }
            }
            return false
        case .ptr(let spec):
            let name = try await target(spec, &state)
            return try await validatedNames(&state, countVoid: true).contains { Self.isSubdomain($0, of: name) }
        case .exists(let spec):
            let name = try await expandDomain(spec, &state)
            // exists always asks for A, whatever the client's address family (§5.7).
            let answer = try await ask(name, &state, countVoid: true) { try await resolver.a($0) }
            return !answer.isEmpty
        case .include(let spec):
            let name = try await expandDomain(spec, &state)
            let outcome = try await evaluate(domain: name, explain: false, &state)
            switch outcome.status {
            case .pass: return true
            case .fail, .softfail, .neutral: return false
            case .temperror: throw .temporary(outcome.reason)
            case .permerror: throw .permanent(outcome.reason)
            case .none: throw .permanent("include:\(spec.text): \(name) has no SPF record")
            }
        }
    }

    /// The domain a mechanism names: its domain-spec expanded, or the current domain.
    private func target(_ spec: SPFMacroString?, _ state: inout Evaluation) async throws(Abort) -> String {
        guard let spec else { return state.macros.domain }
        return try await expandDomain(spec, &state)
    }

    /// Expands a domain-spec and cuts labels off the left until it fits in 253 bytes (§7.3).
    private func expandDomain(_ spec: SPFMacroString, _ state: inout Evaluation) async throws(Abort) -> String {
        if spec.usesValidatedName { try await findValidatedName(&state) }
        var name = state.macros.expand(spec).lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        while name.utf8.count > 253, let dot = name.firstIndex(of: ".") {
            name = String(name[name.index(after: dot)...])
        }
        return name
    }

    /// The client's addresses of the same family as `name`'s A or AAAA records.
    private func addresses(
        of name: String, _ state: inout Evaluation, countVoid: Bool
    ) async throws(Abort) -> [IPAddress] {
        if state.macros.ip.bitWidth == 32 {
            return try await ask(name, &state, countVoid: countVoid) { try await resolver.a($0) }.records
        }
        return try await ask(name, &state, countVoid: countVoid) { try await resolver.aaaa($0) }.records
    }

    /// The names of the client's PTR records whose addresses lead back to the client (§5.5), at most 10 looked at.
    /// A failed lookup means no names: the sender does not control the client's reverse zone.
    private func validatedNames(_ state: inout Evaluation, countVoid: Bool) async throws(Abort) -> [String] {
        let ip = state.macros.ip
        let names: [String]
        do {
            names = try await ask(ip.reverseName, &state, countVoid: countVoid) { try await resolver.ptr($0) }.records
        } catch .temporary {
            return []
        }
        var validated: [String] = []
        for name in names.prefix(limits.ptrNames) {
            let found: [IPAddress]
            do {
                found = try await addresses(of: name, &state, countVoid: false)
            } catch .temporary {
                continue  // §5.5: a DNS error skips that name.
            }
            if found.contains(ip) { validated.append(DNSName.normalize(name)) }
        }
        return validated
    }

    /// `%{p}`: a validated name, preferring the current domain or a subdomain of it (§7.3).
    private func findValidatedName(_ state: inout Evaluation) async throws(Abort) {
        let names: [String]
        if let known = state.validatedNames {
            names = known
        } else {
            names = try await validatedNames(&state, countVoid: false)
            state.validatedNames = names
        }
        let domain = state.macros.domain
        state.macros.validatedName = names.first { Self.isSubdomain($0, of: domain) } ?? names.first
    }

    /// The `exp=` text for a `fail`: one TXT record, expanded as an explain-string; nil on any problem (§6.2).
    private func explanation(_ spec: SPFMacroString, _ state: inout Evaluation) async -> String? {
        do {
            let name = try await expandDomain(spec, &state)
            let texts = try await ask(name, &state, countVoid: false) { try await resolver.txt($0) }.records
            guard texts.count == 1 else { return nil }
            let text = try SPFMacroString(parsing: texts[0], explanation: true)
            if text.usesValidatedName { try await findValidatedName(&state) }
            return state.macros.expand(text)
        } catch {
            return nil
        }
    }

    /// One DNS question: counted against the budget, void answers counted when `countVoid`, a name DNS cannot
    /// carry treated as nonexistent, a failure turned into `temperror`.
    private func ask<Record>(
        _ name: String, _ state: inout Evaluation, countVoid: Bool,
        _ question: (String) async throws -> DNSAnswer<Record>
    ) async throws(Abort) -> DNSAnswer<Record> {
        var answer: DNSAnswer<Record>
        if Self.domainProblem(name, singleLabel: true) != nil {
            answer = .nameError
        } else {
            // A caller bounds the check's time by cancelling its task (RFC 7208 §4.6.4 suggests 20 s).
            if Task.isCancelled { throw .temporary("the SPF check was cancelled before asking about \(name)") }
            state.queries += 1
            guard state.queries <= limits.totalQueries else {
                throw .permanent("more than \(limits.totalQueries) DNS questions in one check")
            }
            do {
                answer = try await question(name)
            } catch let failure as DNSFailure {
                guard failure.kind == .invalidName else { throw .temporary(failure.description) }
                answer = .nameError
            } catch {
                throw .temporary("DNS lookup of \(name): \(error)")
            }
        }
        if countVoid && answer.isEmpty {
            state.voidLookups += 1
            if state.voidLookups > limits.voidLookups {
                throw .permanent("more than \(limits.voidLookups) DNS lookups found nothing (at \(name))")
            }
        }
        return answer
    }

    /// Why `name` (lower case, no trailing dot) cannot be checked, or nil (§4.3, RFC 1035 lengths).
    static func domainProblem(_ name: String, singleLabel: Bool = false) -> String? {
        if name.isEmpty { return "empty" }
        if name.utf8.count > 253 { return "longer than 253 bytes" }
        if name.hasPrefix("[") { return "an address literal" }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if !singleLabel && labels.count < 2 { return "a single label" }
        if labels.contains(where: { $0.isEmpty }) { return "an empty label" }
        if labels.contains(where: { $0.utf8.count > 63 }) { return "a label longer than 63 bytes" }
        return nil
    }

    private static func isSubdomain(_ name: String, of domain: String) -> Bool {
        let name = DNSName.normalize(name)
        let domain = DNSName.normalize(domain)
        return name == domain || name.hasSuffix("." + domain)
    }
}
