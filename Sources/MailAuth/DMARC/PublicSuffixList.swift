import MailMessage

/// The Public Suffix List (https://publicsuffix.org), compiled in: public suffixes and organizational domains.
///
/// DMARC (RFC 7489 §3.2) finds a domain's organizational domain as its public suffix plus one label. `shared` uses
/// both sections of the list, ICANN and private, as OpenDMARC and Mail::DMARC do: a private suffix such as
/// `github.io` is run by one party for many unrelated owners, so `alice.github.io` and `bob.github.io` must not
/// count as one organization. `icannOnly` is there for callers that want the registry view.
public struct PublicSuffixList: Sendable {
    /// Which sections of the list a lookup uses.
    public enum Sections: Sendable {
        case icannAndPrivate
        case icannOnly
    }

    private var rules: Set<String> = []
    /// `*.X` rules, stored as X.
    private var wildcards: Set<String> = []
    /// `!X` rules, stored as X.
    private var exceptions: Set<String> = []

    /// The compiled-in list, both sections (what DMARC uses).
    public static let shared = PublicSuffixList(sections: .icannAndPrivate)
    /// The compiled-in list, ICANN section only.
    public static let icannOnly = PublicSuffixList(sections: .icannOnly)

    /// The compiled-in list (loading it takes a few milliseconds; prefer `shared`).
    public init(sections: Sections) {
        add(rules: Self.icannRules)
        if sections == .icannAndPrivate { add(rules: Self.privateRules) }
    }

    /// A list from the text of a `public_suffix_list.dat` (comments and blank lines skipped; sections ignored).
    public init(datFile text: String) {
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard !trimmed.isEmpty, !trimmed.hasPrefix("//") else { continue }
            add(rule: trimmed.prefix { $0 != " " && $0 != "\t" })
        }
    }

    /// The number of rules held.
    public var count: Int { rules.count + wildcards.count + exceptions.count }

    private mutating func add(rules text: String) {
        for rule in text.split(whereSeparator: \.isWhitespace) { add(rule: rule) }
    }

    private mutating func add(rule: Substring) {
        var rule = rule
        let isException = rule.hasPrefix("!")
        if isException { rule = rule.dropFirst() }
        var labels: [String] = []
        for label in rule.split(separator: ".", omittingEmptySubsequences: false) {
            if label == "*" {
                labels.append("*")
            } else if let ascii = DomainName.asciiLowercased(String(label)) {
                labels.append(ascii)
            } else {
                return  // a rule that is no domain can never match one
            }
        }
        if isException {
            exceptions.insert(labels.joined(separator: "."))
        } else if labels.first == "*" && labels.count > 1 && !labels.dropFirst().contains("*") {
            wildcards.insert(labels.dropFirst().joined(separator: "."))
        } else if !labels.contains("*") {
            rules.insert(labels.joined(separator: "."))
        }
        // Wildcards other than a leftmost one do not occur in the list; such a rule is ignored.
    }

    /// The public suffix of `domain` (lower case, A-labels), by the list's algorithm with the implicit `*` rule;
    /// nil when `domain` is not a valid domain name.
    public func publicSuffix(of domain: String) -> String? {
        guard let labels = Self.labels(of: domain) else { return nil }
        return labels[(labels.count - suffixLength(labels))...].joined(separator: ".")
    }

    /// The organizational domain (RFC 7489 §3.2): the public suffix plus one label; nil when `domain` is itself a
    /// public suffix or not a valid domain name.
    public func organizationalDomain(of domain: String) -> String? {
        guard let labels = Self.labels(of: domain) else { return nil }
        let length = suffixLength(labels)
        guard labels.count > length else { return nil }
        return labels[(labels.count - length - 1)...].joined(separator: ".")
    }

    /// How many labels at the end of `labels` form the public suffix.
    private func suffixLength(_ labels: [String]) -> Int {
        // From the longest candidate down: the first rule that matches is the prevailing (longest) one, and an
        // exception always outranks the wildcard it is an exception to, being one label longer.
        for start in labels.indices {
            let candidate = labels[start...].joined(separator: ".")
            if exceptions.contains(candidate) { return labels.count - start - 1 }
            if start + 1 < labels.count, wildcards.contains(labels[(start + 1)...].joined(separator: ".")) {
                return labels.count - start
            }
            if rules.contains(candidate) { return labels.count - start }
        }
        return 1  // the implicit "*" rule
    }

    private static func labels(of domain: String) -> [String]? {
        var name = domain
        if name.hasSuffix(".") { name.removeLast() }
        guard let ascii = DomainName.asciiLowercased(name) else { return nil }
        return ascii.split(separator: ".").map(String.init)
    }
}
