/// An RFC 5322 mailbox: an address with an optional display name.
public struct Mailbox: Sendable, Hashable {
    /// The phrase before `<...>`, unquoted and unescaped; encoded-words (RFC 2047) are left as written.
    public var displayName: String?
    /// The local part as written, without comments; a quoted local part keeps its quotes.
    public var localPart: String
    /// The domain as written (no case change, no IDNA conversion), or a domain literal such as `[192.0.2.1]`.
    public var domain: String

    public init(displayName: String? = nil, localPart: String, domain: String) {
        self.displayName = displayName
        self.localPart = localPart
        self.domain = domain
    }

    /// `localPart@domain`.
    public var address: String { localPart + "@" + domain }
}
