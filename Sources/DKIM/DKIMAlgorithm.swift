import Keys

/// A DKIM signing algorithm (`a=`). RFC 8301 leaves rsa-sha256; RFC 8463 adds ed25519-sha256.
public enum DKIMAlgorithm: String, Sendable, CaseIterable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// The key type an algorithm signs with, and the `k=` its DNS record carries.
    public var keyAlgorithm: KeyAlgorithm {
        switch self {
        case .rsaSHA256: return .rsa
        case .ed25519SHA256: return .ed25519
        }
    }

    /// The algorithm a key of this type signs with.
    public init(keyAlgorithm: KeyAlgorithm) {
        switch keyAlgorithm {
        case .rsa: self = .rsaSHA256
        case .ed25519: self = .ed25519SHA256
        }
    }
}
