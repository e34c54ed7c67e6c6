/// Why an address could not be rewritten or reversed; each case reads as one clear sentence.
public enum SRSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Reverse was asked for an address whose local part does not start with SRS0 or SRS1 and a separator.
    case notSRS(address: String)
    /// The address cannot be split as SRS needs (no `@`, an empty part, missing SRS fields, a bad timestamp
    /// character); `reason` says which.
    case malformed(address: String, reason: String)
    /// The hash does not match any configured secret (forged, mistyped, or signed with a secret rotated out).
    case invalidHash(address: String)
    /// The timestamp is older than the validity window.
    case expired(address: String, ageDays: Int, maximumAgeDays: Int)
    /// The timestamp lies ahead of today (Mail::SRS and libsrs2 refuse it the same way as an expired one).
    case futureTimestamp(address: String, daysAhead: Int)
    /// The rewritten local part exceeds the RFC 5321 §4.5.3.1.1 limit; `rewritten` is what it would have been.
    case localPartTooLong(address: String, rewritten: String, length: Int, limit: Int)
    /// No secret (or an empty one) was configured: nothing can be signed or verified.
    case noSecret

    public var description: String {
        switch self {
        case .notSRS(let address): "not an SRS address: <\(address)>"
        case .malformed(let address, let reason): "malformed address <\(address)>: \(reason)"
        case .invalidHash(let address): "invalid SRS hash in <\(address)> (forged, or signed with an unknown secret)"
        case .expired(let address, let age, let maximum):
            "expired SRS address <\(address)>: timestamp \(age) days old, at most \(maximum) accepted"
        case .futureTimestamp(let address, let ahead):
            "SRS address <\(address)> has a timestamp \(ahead) days in the future"
        case .localPartTooLong(let address, _, let length, let limit):
            "rewriting <\(address)> gives a local part of \(length) octets, more than \(limit)"
        case .noSecret: "no SRS secret configured (an empty secret is not allowed)"
        }
    }
}
