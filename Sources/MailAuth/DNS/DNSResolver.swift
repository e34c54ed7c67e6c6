/// What a DNS question got back when the server answered: records, an empty answer, or no such name.
///
/// SPF counts both empty outcomes as "void lookups" (RFC 7208 §4.6.4); DKIM and DMARC treat them as "no record".
public enum DNSAnswer<Record: Sendable & Hashable>: Sendable, Hashable {
    case records([Record])
    /// The name exists but has no record of the type asked for (NOERROR/NODATA).
    case noData
    /// The name does not exist (NXDOMAIN).
    case nameError

    /// The records, or none for either empty outcome.
    public var records: [Record] {
        if case .records(let records) = self { return records }
        return []
    }

    /// True for NODATA and NXDOMAIN, and for an answer with no records in it.
    public var isEmpty: Bool { records.isEmpty }
}

/// A DNS question that got no usable answer: callers report it as `temperror` (RFC 8601 §2.7).
public struct DNSFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the question got no usable answer.
    public enum Kind: Sendable, Hashable {
        /// No answer within the resolver's time limit.
        case timeout
        /// The server answered SERVFAIL, REFUSED or another error code, or DNSSEC validation failed.
        case serverFailure
        /// The name cannot be asked (empty label, label over 63 bytes, name over 253 bytes).
        case invalidName
    }

    public var kind: Kind
    public var name: String
    public var detail: String

    public init(_ kind: Kind, name: String, detail: String = "") {
        self.kind = kind
        self.name = name
        self.detail = detail
    }

    public var description: String {
        let what: String
        switch kind {
        case .timeout: what = "timed out"
        case .serverFailure: what = "server failure"
        case .invalidName: what = "invalid name"
        }
        return detail.isEmpty ? "DNS lookup of \(name): \(what)" : "DNS lookup of \(name): \(what) (\(detail))"
    }
}

/// An MX record: preference and exchange host.
public struct MXRecord: Sendable, Hashable {
    public var preference: UInt16
    /// The exchange host name, lower case, without a trailing dot.
    public var exchange: String

    public init(preference: UInt16, exchange: String) {
        self.preference = preference
        self.exchange = DNSName.normalize(exchange)
    }
}

/// The DNS questions mail authentication asks: TXT for DKIM, DMARC and SPF; A, AAAA, MX and PTR for SPF.
///
/// Names are given without a trailing dot and compared case-insensitively. A thrown `DNSFailure` is a
/// temporary error; an empty answer is not an error. Implementations: `StaticZone` (a file, for tests,
/// air-gapped use and `--dns-file`) and `UnboundResolver` (libunbound: caching, optionally DNSSEC-validating).
public protocol DNSResolver: Sendable {
    /// TXT records of `name`, each record's character-strings concatenated (RFC 6376 §3.6.2.2, RFC 7208 §3.3).
    func txt(_ name: String) async throws(DNSFailure) -> DNSAnswer<String>
    /// A records of `name`.
    func a(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress>
    /// AAAA records of `name`.
    func aaaa(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress>
    /// MX records of `name`.
    func mx(_ name: String) async throws(DNSFailure) -> DNSAnswer<MXRecord>
    /// PTR records of `name` (an `in-addr.arpa` or `ip6.arpa` name; see `IPAddress.reverseName`).
    func ptr(_ name: String) async throws(DNSFailure) -> DNSAnswer<String>
}

/// Helpers for DNS names as the resolvers compare them.
public enum DNSName {
    /// Lower case, without a trailing dot.
    public static func normalize(_ name: some StringProtocol) -> String {
        var lower = name.lowercased()
        if lower.hasSuffix(".") { lower.removeLast() }
        return lower
    }

    /// Checks the RFC 1035 length limits; the name must already be normalized.
    public static func validate(_ name: String) throws(DNSFailure) {
        guard !name.isEmpty, name.utf8.count <= 253 else {
            throw DNSFailure(.invalidName, name: name, detail: "empty or longer than 253 bytes")
        }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.utf8.count <= 63 else {
                throw DNSFailure(.invalidName, name: name, detail: "empty label or label longer than 63 bytes")
            }
        }
    }
}
