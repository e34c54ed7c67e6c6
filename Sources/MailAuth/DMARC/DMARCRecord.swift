/// A DMARC policy: what the domain owner asks receivers to do with mail that fails (RFC 7489 §6.3 `p=`).
public enum DMARCPolicy: String, Sendable, Hashable, CaseIterable {
    case none, quarantine, reject

    /// One step less severe, for `pct` sampling (RFC 7489 §6.6.4): reject → quarantine → none.
    var downgraded: DMARCPolicy {
        switch self {
        case .reject: .quarantine
        case .quarantine, .none: .none
        }
    }
}

/// Identifier alignment mode (RFC 7489 §3.1): relaxed (same organizational domain) or strict (same domain).
public enum DMARCAlignment: String, Sendable, Hashable {
    case relaxed = "r"
    case strict = "s"
}

/// A parsed `_dmarc` TXT record (RFC 7489 §6.3, with RFC 9091's `np`).
///
/// Unknown tags are ignored and an optional tag with a bad value falls back to its default (§6.3: "syntax errors in
/// the remainder of the record SHOULD be discarded in favor of default values"); both are listed in `warnings`. A
/// record whose `p=` is missing or bad is still a record when it names a report address (§6.6.3 step 6: act as
/// `p=none`); without one it is refused.
public struct DMARCRecord: Sendable, Hashable {
    /// `p=`.
    public var policy: DMARCPolicy
    /// `sp=`: the policy for subdomains of the organizational domain, when given.
    public var subdomainPolicy: DMARCPolicy?
    /// `np=` (RFC 9091): the policy for non-existent subdomains, when given.
    public var nonExistentPolicy: DMARCPolicy?
    /// `adkim=`, default relaxed.
    public var dkimAlignment: DMARCAlignment = .relaxed
    /// `aspf=`, default relaxed.
    public var spfAlignment: DMARCAlignment = .relaxed
    /// `pct=`: the percentage of failing mail the policy applies to, default 100.
    public var percentage: Int = 100
    /// `rua=`, kept as written (Signet sends no reports).
    public var aggregateReportURIs: String?
    /// `ruf=`, kept as written.
    public var failureReportURIs: String?
    /// `fo=`, kept as written; default "0".
    public var failureReportingOptions: String = "0"
    /// `rf=`, default "afrf".
    public var reportFormat: String = "afrf"
    /// `ri=`: seconds between aggregate reports, default 86400.
    public var reportInterval: Int = 86400
    /// Tags that were ignored or replaced by their default, in words.
    public var warnings: [String] = []

    public init(policy: DMARCPolicy) {
        self.policy = policy
    }
}

/// Why a TXT record is not a usable DMARC record.
public struct DMARCRecordError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// True when the record does not start with `v=DMARC1` (it is some other TXT record and is skipped, §6.6.3
    /// step 3); false for a DMARC record that is broken.
    public var isNotDMARC: Bool

    public init(message: String, isNotDMARC: Bool) {
        self.message = message
        self.isNotDMARC = isNotDMARC
    }

    public var description: String { message }
}

extension DMARCRecord {
    /// Whether a TXT record starts with the `v=DMARC1` tag (other TXT records at `_dmarc` are discarded).
    public static func isDMARC(_ text: String) -> Bool {
        guard let first = text.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first else {
            return false
        }
        let parts = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 && trim(parts[0]) == "v" && trim(parts[1]) == "DMARC1"
    }

    /// Parses a TXT record's text.
    public init(parsing text: String) throws(DMARCRecordError) {
        guard Self.isDMARC(text) else {
            throw DMARCRecordError(message: "the record does not start with v=DMARC1", isNotDMARC: true)
        }
        var policy: DMARCPolicy? = nil
        var policyProblem = "no p= tag"
        var record = DMARCRecord(policy: .none)
        var badSubdomainPolicy = false
        var seen: Set<String> = []
        for (index, part) in text.split(separator: ";", omittingEmptySubsequences: false).enumerated() where index > 0 {
            let trimmed = Self.trim(part)
            if trimmed.isEmpty { continue }  // "v=DMARC1; p=none;" ends with an empty part
            let pair = trimmed.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2 else {
                record.warnings.append("'\(trimmed)' is not tag=value; ignored")
                continue
            }
            let tag = Self.trim(pair[0]).lowercased()
            let value = Self.trim(pair[1])
            guard seen.insert(tag).inserted else {
                record.warnings.append("\(tag)= given twice; the first is used")
                continue
            }
            switch tag {
            case "p":
                policy = DMARCPolicy(rawValue: value.lowercased())
                if policy == nil { policyProblem = "p=\(value) is not none, quarantine or reject" }
            case "sp":
                record.subdomainPolicy = DMARCPolicy(rawValue: value.lowercased())
                badSubdomainPolicy = record.subdomainPolicy == nil
            case "np":
                record.nonExistentPolicy = DMARCPolicy(rawValue: value.lowercased())
                if record.nonExistentPolicy == nil { record.warnings.append("np=\(value) is not a policy; ignored") }
            case "adkim", "aspf":
                if let alignment = DMARCAlignment(rawValue: value.lowercased()) {
                    if tag == "adkim" { record.dkimAlignment = alignment } else { record.spfAlignment = alignment }
                } else {
                    record.warnings.append("\(tag)=\(value) is not r or s; relaxed is used")
                }
            case "pct":
                if let percentage = Int(value), (0...100).contains(percentage), value.allSatisfy(\.isASCII) {
                    record.percentage = percentage
                } else {
                    record.warnings.append("pct=\(value) is not 0-100; 100 is used")
                }
            case "rua": record.aggregateReportURIs = value
            case "ruf": record.failureReportURIs = value
            case "fo":
                if !value.isEmpty
                    && value.split(separator: ":").allSatisfy({ ["0", "1", "d", "s"].contains(Self.trim($0)) })
                {
                    record.failureReportingOptions = value
                } else {
                    record.warnings.append("fo=\(value) is not a list of 0, 1, d, s; 0 is used")
                }
            case "rf": record.reportFormat = value
            case "ri":
                if let interval = Int(value), interval >= 0, value.allSatisfy(\.isASCII) {
                    record.reportInterval = interval
                } else {
                    record.warnings.append("ri=\(value) is not a number; 86400 is used")
                }
            case "v":
                record.warnings.append("v= may appear only first; ignored")
            default:
                record.warnings.append("unknown tag \(tag)= ignored")
            }
        }
        if let policy, !badSubdomainPolicy {
            record.policy = policy
            self = record
            return
        }
        let problem = badSubdomainPolicy && policy != nil ? "sp= is not none, quarantine or reject" : policyProblem
        // §6.6.3 step 6: a bad p= or sp= with a usable rua= means p=none; without one the record is discarded.
        guard let rua = record.aggregateReportURIs, Self.hasValidReportURI(rua) else {
            throw DMARCRecordError(message: problem, isNotDMARC: false)
        }
        record.policy = .none
        record.subdomainPolicy = nil
        record.warnings.append("\(problem); treated as p=none because rua= is present")
        self = record
    }

    /// At least one `rua` entry that is an absolute URI (`scheme:rest`, §6.2), ignoring a `!size` suffix.
    static func hasValidReportURI(_ text: String) -> Bool {
        text.split(separator: ",").contains { entry in
            let uri = trim(entry).prefix { $0 != "!" }
            guard let colon = uri.firstIndex(of: ":"), colon != uri.startIndex, uri.index(after: colon) != uri.endIndex
            else { return false }
            let scheme = uri[..<colon]
            return scheme.first?.isLetter == true
                && scheme.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) }
        }
    }

    /// The record as text, tags in RFC order with defaults left out.
    public var text: String {
        var parts = ["v=DMARC1", "p=\(policy.rawValue)"]
        if let subdomainPolicy { parts.append("sp=\(subdomainPolicy.rawValue)") }
        if let nonExistentPolicy { parts.append("np=\(nonExistentPolicy.rawValue)") }
        if dkimAlignment != .relaxed { parts.append("adkim=\(dkimAlignment.rawValue)") }
        if spfAlignment != .relaxed { parts.append("aspf=\(spfAlignment.rawValue)") }
        if percentage != 100 { parts.append("pct=\(percentage)") }
        if let aggregateReportURIs { parts.append("rua=\(aggregateReportURIs)") }
        if let failureReportURIs { parts.append("ruf=\(failureReportURIs)") }
        if failureReportingOptions != "0" { parts.append("fo=\(failureReportingOptions)") }
        if reportFormat != "afrf" { parts.append("rf=\(reportFormat)") }
        if reportInterval != 86400 { parts.append("ri=\(reportInterval)") }
        return parts.joined(separator: "; ")
    }

    private static func trim(_ text: some StringProtocol) -> String {
        String(
            text.drop { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }.reversed().drop {
                $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n"
            }.reversed())
    }
}
