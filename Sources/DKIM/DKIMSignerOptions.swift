import DKIMCore

/// What a DKIM signature covers and which optional tags it carries.
public struct DKIMSignerOptions: Sendable, Hashable {
    /// From, the addressing and threading fields, the MIME fields and the List-* fields (RFC 2369, 2919, 8058):
    /// what a receiver shows or acts on, so what must not change after signing.
    public static let defaultSignedHeaders: [String] = [
        "from", "reply-to", "subject", "date", "to", "cc", "message-id", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding",
        "list-id", "list-help", "list-unsubscribe", "list-unsubscribe-post", "list-subscribe", "list-post",
        "list-owner", "list-archive",
    ]

    /// Default lifetime of a signature (`x=` is `t=` plus this): a week, long enough for retries and slow queues.
    public static let defaultExpiration = 7 * 24 * 3600

    /// `c=`; relaxed/relaxed survives the re-folding that MTAs do.
    public var canonicalization = CanonicalizationPair(header: .relaxed, body: .relaxed)
    /// Names to sign, each present instance of each name.
    public var signedHeaders: [String] = DKIMSignerOptions.defaultSignedHeaders
    /// Sign one more instance of every name than the message has, so that no such field can be added later.
    public var oversign = true
    /// Use exactly this `h=` list instead of deriving it from the message (test vectors, special setups).
    public var explicitHeaderList: [String]? = nil
    /// The separator written between `h=` names (RFC 8463's example uses " : ").
    public var headerListSeparator = ":"
    /// Write `t=` (the signing time).
    public var includeTimestamp = true
    /// Seconds from `t=` to `x=`; nil writes no `x=`.
    public var expiration: Int? = DKIMSignerOptions.defaultExpiration
    /// `i=`, the agent or user identifier; must be in `d=` or a subdomain of it.
    public var identity: String? = nil
    /// Write `l=`. Off by default: `l=` lets anyone append content that still verifies.
    public var includeBodyLength = false
    /// Write `q=dns/txt` (the default, so normally left out).
    public var includeQueryMethod = false

    public init() {}
}
