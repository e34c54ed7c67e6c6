/// A private key that makes DKIM's signatures over SHA-256 digests, wherever it is held: in this process
/// (`PrivateKey`) or in a PKCS#11 token (`PKCS11Key`).
public protocol DigestSigningKey: Sendable {
    /// RSA or Ed25519.
    var algorithm: KeyAlgorithm { get }
    /// The public half, for the DNS record and for checking signatures made outside this process.
    var publicKey: PublicKey { get }
    /// RSA: RSASSA-PKCS1-v1_5 over DigestInfo(SHA-256, digest). Ed25519: PureEdDSA over the 32 digest bytes.
    func signature(forSHA256Digest digest: [UInt8]) throws -> [UInt8]
}

extension PrivateKey: DigestSigningKey {}
