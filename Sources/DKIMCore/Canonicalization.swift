/// A DKIM canonicalization algorithm (RFC 6376 §3.4).
public enum Canonicalization: String, Sendable, CaseIterable {
    case simple
    case relaxed
}

/// The `c=` pair: header and body canonicalization.
public struct CanonicalizationPair: Sendable, Hashable, CustomStringConvertible {
    /// Canonicalization of the signed header fields.
    public var header: Canonicalization
    /// Canonicalization of the body.
    public var body: Canonicalization

    /// A pair from its two halves.
    public init(header: Canonicalization, body: Canonicalization) {
        self.header = header
        self.body = body
    }

    /// Parses a `c=` value such as `relaxed` or `relaxed/simple`; a missing body half means simple (RFC 6376 §3.5).
    public init?(tagValue: String) {
        let parts = tagValue.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
            let header = Canonicalization(rawValue: parts[0].lowercased())
        else { return nil }
        let body: Canonicalization
        if parts.count == 2 {
            guard let parsed = Canonicalization(rawValue: parts[1].lowercased()) else { return nil }
            body = parsed
        } else {
            body = .simple
        }
        self.init(header: header, body: body)
    }

    /// The `c=` value, always with both halves.
    public var tagValue: String { "\(header.rawValue)/\(body.rawValue)" }

    public var description: String { tagValue }
}
