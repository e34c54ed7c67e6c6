/// The outcome of one SPF check (RFC 7208 §2.6): the result, which identity was checked and why.
///
/// Carries what an Authentication-Results `spf` entry needs (RFC 8601 §2.7.2): the result, the property
/// (`smtp.mailfrom` or `smtp.helo`) and a comment; the writer itself lives elsewhere.
public struct SPFResult: Sendable, Hashable, CustomStringConvertible {
    /// The seven results of RFC 7208 §2.6, spelled as Authentication-Results spells them.
    public enum Status: String, Sendable, Hashable, CaseIterable {
        case none, neutral, pass, fail, softfail, temperror, permerror
    }

    /// Which identity was checked (RFC 7208 §2.3, §2.4).
    public enum Identity: String, Sendable, Hashable {
        case helo
        case mailfrom
    }

    public var status: Status
    public var identity: Identity
    /// The domain whose policy was asked for first: the MAIL FROM domain, or the HELO name.
    public var domain: String
    /// The `<sender>` as checked: `local@domain`, with `postmaster` for a missing or empty local part.
    public var sender: String
    /// The client address as checked.
    public var clientIP: IPAddress
    /// Why: which term matched, or what went wrong (a syntax error, a limit, a DNS failure).
    public var reason: String
    /// The directive that decided the result as written in the record (e.g. `-all`, `ip4:192.0.2.0/24`), if one did.
    public var mechanism: String?
    /// For `fail`, the domain owner's explanation (the `exp=` modifier, macros expanded), when it gave one.
    public var explanation: String?

    public init(
        status: Status, identity: Identity, domain: String, sender: String, clientIP: IPAddress, reason: String,
        mechanism: String? = nil, explanation: String? = nil
    ) {
        self.status = status
        self.identity = identity
        self.domain = domain
        self.sender = sender
        self.clientIP = clientIP
        self.reason = reason
        self.mechanism = mechanism
        self.explanation = explanation
    }

    /// `spf=pass smtp.mailfrom=example.com (reason)`, in the shape of an Authentication-Results entry.
    public var description: String {
        let comment = reason.replacing("(", with: "[").replacing(")", with: "]")
        return "spf=\(status.rawValue) smtp.\(identity.rawValue)=\(domain) (\(comment))"
    }
}
