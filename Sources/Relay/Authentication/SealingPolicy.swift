import ARC
import DKIM
import MailMessage

/// Picks the ARC sealing rule for a message (`arc.rules`, first match wins) and holds each rule's sealer, built
/// once from `signing.keys` so in-process and agent-held keys both work.
struct SealingPolicy: Sendable {
    /// A rule with its sealer.
    struct Rule: Sendable {
        var rule: RelayConfiguration.ARCRule
        var sealer: ARCSealer
        var authservID: String
    }

    /// What a message is sealed with.
    struct Match: Sendable {
        var sealer: ARCSealer
        var authservID: String
        /// `trust_results`: cv and the AAR come from this authserv-id's Authentication-Results on the message.
        var trustResults: Bool
        /// Index in `arc.rules`, for logs.
        var index: Int
    }

    /// What the rules look at.
    struct Request: Sendable {
        /// The address the message came in on.
        var listener: HostPort?
        /// Accepted RCPT TO addresses, as the client sent them.
        var recipients: [String]
        /// MAIL FROM as the client sent it.
        var sender: String
        /// The List-Id field's value, if the message has one.
        var listID: String?
    }

    let rules: [Rule]

    var isEmpty: Bool { rules.isEmpty }

    init(rules: [Rule]) {
        self.rules = rules
    }

    /// Builds every rule's sealer; `sealer(key, options)` comes from the signing table.
    init(
        _ configuration: RelayConfiguration,
        sealer: (String, DKIMSignerOptions) throws -> ARCSealer
    ) throws(ConfigurationError) {
        var problems: [String] = []
        var rules: [Rule] = []
        for (index, rule) in configuration.arc.rules.enumerated() {
            var options = ARCSealer.defaultOptions
            options.signedHeaders = rule.headers ?? configuration.arc.headers ?? configuration.signing.headers
            do {
                let made = try sealer(rule.key, options)
                rules.append(
                    Rule(
                        rule: rule, sealer: made,
                        authservID: rule.authservID ?? configuration.authentication.authservID
                            ?? configuration.hostname))
            } catch {
                problems.append("arc.rules[\(index)] key \(rule.key): \(error)")
            }
        }
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        self.rules = rules
    }

    /// The first rule whose every condition holds.
    func match(_ request: Request) -> Match? {
        for (index, entry) in rules.enumerated() where Self.matches(entry.rule, request) {
            return Match(
                sealer: entry.sealer, authservID: entry.authservID, trustResults: entry.rule.trustResults, index: index)
        }
        return nil
    }

    static func matches(_ rule: RelayConfiguration.ARCRule, _ request: Request) -> Bool {
        if let listener = rule.listener {
            guard let actual = request.listener, actual.port == listener.port else { return false }
            let wildcard = listener.host == "0.0.0.0" || listener.host == "::" || listener.host == "*"
            guard wildcard || listener.host.lowercased() == actual.host.lowercased() else { return false }
        }
        if let domain = rule.recipientDomain {
            guard request.recipients.contains(where: { Self.domain(of: $0).map { within($0, domain) } ?? false })
            else { return false }
        }
        if let domain = rule.senderDomain {
            guard let sender = Self.domain(of: request.sender), within(sender, domain) else { return false }
        }
        if let wanted = rule.listID {
            guard let listID = request.listID.flatMap(Self.listIdentifier),
                listID == Self.listIdentifier(wanted)
            else { return false }
        }
        return true
    }

    /// The domain of `local@domain` (angle brackets allowed), lower-cased; nil for the null path.
    static func domain(of address: String) -> String? {
        var text = Substring(address)
        if text.hasPrefix("<") && text.hasSuffix(">") { text = text.dropFirst().dropLast() }
        guard let at = text.lastIndex(of: "@") else { return nil }
        let domain = text[text.index(after: at)...]
        return domain.isEmpty ? nil : SigningTable.normalizedDomain(String(domain))
    }

    /// `domain` is `parent` or a subdomain of it.
    private static func within(_ domain: String, _ parent: String) -> Bool {
        let parent = SigningTable.normalizedDomain(parent) ?? parent.lowercased()
        return domain == parent || domain.hasSuffix("." + parent)
    }

    /// RFC 2919: the list-id is the part between angle brackets (a phrase may come before it); without brackets
    /// the whole trimmed text. Compared lower-cased.
    static func listIdentifier(_ value: String) -> String? {
        let text: Substring
        if let open = value.lastIndex(of: "<"), let close = value[open...].firstIndex(of: ">") {
            text = value[value.index(after: open)..<close]
        } else {
            text = Substring(value)
        }
        let trimmed = text.trimmingCharacters(in: " \t\r\n")
        return trimmed.isEmpty ? nil : trimmed.lowercased()
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        return String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
