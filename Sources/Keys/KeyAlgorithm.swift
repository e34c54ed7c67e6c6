/// The key types DKIM signs with: RSA (RFC 6376, RFC 8301) and Ed25519 (RFC 8463).
public enum KeyAlgorithm: String, Sendable, CaseIterable {
    case rsa
    case ed25519
}

extension KeyAlgorithm {
    /// The sizes Signet accepts for RSA signing keys: RFC 8301 forbids less than 1024 bits, and DNS records
    /// for keys above 4096 bits no longer fit comfortably in a TXT record.
    static let rsaSigningBits = 1024...4096

    /// Ed25519 keys are 32 bytes; reported as 256 bits rather than OpenSSL's 253 (the group order's size).
    static let ed25519Bits = 256

    /// Raw Ed25519 key and seed length (RFC 8032).
    static let ed25519KeyBytes = 32

    /// Length of a SHA-256 digest, the only digest DKIM signs.
    static let sha256DigestBytes = 32
}
