/// The alphabet of the 4-character hash an SRS address carries.
public enum SRSHashEncoding: String, Sendable, Equatable, CaseIterable {
    /// `A-Z a-z 0-9 + /`, as Mail::SRS, libsrs2 and postsrsd 1.x write it.
    case base64
    /// `A-Z a-z 0-9 - _`, as postsrsd 2.2.6 and later write it.
    case base64url
}

/// Parameters of the Guarded scheme; the defaults are those of Mail::SRS and postsrsd.
public struct SRSOptions: Sendable, Equatable {
    /// Days a timestamp stays valid (Mail::SRS `MaxAge`).
    public var maximumAgeDays = 21
    /// Hash characters written (Mail::SRS `HashLength`).
    public var hashLength = 4
    /// Fewest hash characters accepted on reverse (Mail::SRS `HashMin`).
    public var hashMinimum = 4
    /// The separator after the SRS0/SRS1 tag: `=`, `+` or `-`; all others are always `=`.
    public var separator: UInt8 = UInt8(ascii: "=")
    /// The hash alphabet written; both are accepted on reverse.
    public var hashEncoding = SRSHashEncoding.base64
    /// Rewrite even when the sender's domain is the forwarder's own (Mail::SRS `AlwaysRewrite`).
    public var alwaysRewrite = false
    /// Refuse a rewrite whose local part would be longer than this (RFC 5321: 64); nil writes any length, as
    /// Mail::SRS and postsrsd do.
    public var maximumLocalPartLength: Int? = 64

    public init() {}

    /// The separators SRS allows after the tag.
    public static let allowedSeparators: [UInt8] = [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-")]
}
