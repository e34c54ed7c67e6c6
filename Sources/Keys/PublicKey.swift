import COpenSSL

/// A public key as DKIM publishes it.
///
/// No size policy is applied here: a verifier reads `bits` and applies its own minimum (RFC 8301).
public struct PublicKey: Sendable {
    /// Owns one `EVP_PKEY` holding only public material. OpenSSL keys are read-only once built, so sharing the
    /// pointer between threads is safe; every verification makes its own context.
    private final class Backing: @unchecked Sendable {
        let pkey: OpaquePointer
        /// SHA-256 verification contexts, reused: setting one up per signature cost more than half of an RSA-2048
        /// verification (docs/performance.md).
        let contexts: SigningContextPool

        init(takingOwnershipOf pkey: OpaquePointer, algorithm: KeyAlgorithm) {
            self.pkey = pkey
            self.contexts = SigningContextPool(kind: algorithm == .rsa ? .rsaVerify : .ed25519Verify, pkey: pkey)
        }

        deinit {
            EVP_PKEY_free(pkey)
        }
    }

    private let backing: Backing
    public let algorithm: KeyAlgorithm
    /// RSA: the modulus size. Ed25519: 256.
    public let bits: Int
    /// RSA: SubjectPublicKeyInfo DER; Ed25519: the raw 32 bytes. What goes, base64-encoded, into `p=`.
    public let dkimKeyData: [UInt8]

    /// Imports DKIM key data (`p=`, decoded). RSA accepts SubjectPublicKeyInfo DER (what everyone publishes) and
    /// bare PKCS#1 RSAPublicKey DER (what RFC 6376 §3.6.1 literally says); Ed25519 takes exactly 32 raw bytes.
    public init(dkimKeyData: [UInt8], algorithm: KeyAlgorithm) throws {
        guard !dkimKeyData.isEmpty else {
            throw KeysError(.invalidPublicKey, "the public key data is empty (a revoked key)")
        }
        let pkey: OpaquePointer
        switch algorithm {
        case .rsa: pkey = try Self.importRSA(dkimKeyData)
        case .ed25519: pkey = try Self.importEd25519(dkimKeyData)
        }
        try self.init(takingOwnershipOf: pkey, algorithm: algorithm)
    }

    /// Takes over `pkey` (freed here even when this throws); `algorithm` must already be checked.
    private init(takingOwnershipOf pkey: OpaquePointer, algorithm: KeyAlgorithm) throws {
        let backing = Backing(takingOwnershipOf: pkey, algorithm: algorithm)
        do throws(OpenSSLError) {
            switch algorithm {
            case .rsa: dkimKeyData = try EVPKey.subjectPublicKeyInfo(of: pkey)
            case .ed25519: dkimKeyData = try EVPKey.rawEd25519PublicKey(of: pkey)
            }
        } catch {
            throw KeysError(
                .invalidPublicKey, "OpenSSL could not export the \(algorithm) public key", openSSLError: error)
        }
        self.backing = backing
        self.algorithm = algorithm
        self.bits = EVPKey.bits(of: pkey, algorithm)
    }

    /// Whether `signature` is this key's signature over a SHA-256 digest, in DKIM's sense: RSASSA-PKCS1-v1_5 over
    /// DigestInfo(SHA-256, digest), or PureEdDSA over the 32 digest bytes (RFC 8463 §3). Never throws: malformed
    /// signatures and digests of the wrong length are simply not valid.
    public func isValidSignature(_ signature: [UInt8], forSHA256Digest digest: [UInt8]) -> Bool {
        guard digest.count == KeyAlgorithm.sha256DigestBytes, !signature.isEmpty else { return false }
        return withExtendedLifetime(backing) { backing in
            EVPKey.verify(contexts: backing.contexts, signature: signature, digest: digest)
        }
    }

    /// Like `isValidSignature(_:forSHA256Digest:)` for any DKIM digest: rsa-sha1 is RSASSA-PKCS1-v1_5 over
    /// DigestInfo(SHA-1, digest). Ed25519 is only defined with SHA-256 (RFC 8463).
    public func isValidSignature(
        _ signature: [UInt8], forDigest digest: [UInt8], algorithm digestAlgorithm: DigestAlgorithm
    ) -> Bool {
        if digestAlgorithm == .sha256 { return isValidSignature(signature, forSHA256Digest: digest) }
        guard algorithm == .rsa, digest.count == digestAlgorithm.byteCount, !signature.isEmpty else { return false }
        return withExtendedLifetime(backing) { backing in
            EVPKey.verifyRSA(backing.pkey, signature: signature, digest: digest, algorithm: digestAlgorithm)
        }
    }

    // MARK: - Import

    private static func importRSA(_ der: [UInt8]) throws -> OpaquePointer {
        let spki = try decodeWhole(der, as: "SubjectPublicKeyInfo") { cursor, length in
            d2i_PUBKEY(nil, cursor, length)
        }
        switch spki {
        case .key(let pkey):
            guard EVPKey.algorithm(of: pkey) == .rsa else {
                let name = EVPKey.typeName(of: pkey)
                EVP_PKEY_free(pkey)
                throw KeysError(.invalidPublicKey, "the key data holds a \(name) key, not an RSA key")
            }
            return pkey
        case .failed(let spkiError):
            let pkcs1 = try decodeWhole(der, as: "RSAPublicKey") { cursor, length in
                d2i_PublicKey(EVP_PKEY_RSA, nil, cursor, length)
            }
            switch pkcs1 {
            case .key(let pkey):
                return pkey
            case .failed(let pkcs1Error):
                let both = OpenSSLError(
                    operation: "d2i_PUBKEY, d2i_PublicKey", queue: spkiError.queue + pkcs1Error.queue)
                throw KeysError(
                    .invalidPublicKey,
                    "the RSA key data is neither a SubjectPublicKeyInfo nor a PKCS#1 RSAPublicKey (DER)",
                    openSSLError: both
                )
            }
        }
    }

    private static func importEd25519(_ raw: [UInt8]) throws -> OpaquePointer {
        guard raw.count == KeyAlgorithm.ed25519KeyBytes else {
            throw KeysError(
                .invalidPublicKey,
                "an Ed25519 public key is \(KeyAlgorithm.ed25519KeyBytes) raw bytes (RFC 8463), got \(raw.count)"
            )
        }
        let pkey = raw.withUnsafeBufferPointer { bytes in
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, bytes.baseAddress, bytes.count)
        }
        guard let pkey else {
            throw KeysError(
                .invalidPublicKey,
                "OpenSSL refused the Ed25519 public key",
                openSSLError: .drain("EVP_PKEY_new_raw_public_key")
            )
        }
        return pkey
    }

    private enum Decoded {
        case key(OpaquePointer)
        case failed(OpenSSLError)
    }

    /// Runs a d2i function and insists that it consumed every byte: trailing data means the bytes are not
    /// what they claim to be.
    private static func decodeWhole(
        _ der: [UInt8],
        as structure: String,
        _ decode: (UnsafeMutablePointer<UnsafePointer<UInt8>?>, Int) -> OpaquePointer?
    ) throws -> Decoded {
        try der.withUnsafeBufferPointer { bytes in
            guard let base = bytes.baseAddress else {
                return .failed(OpenSSLError(operation: "decode \(structure)", queue: ["no data"]))
            }
            var cursor: UnsafePointer<UInt8>? = base
            guard let pkey = decode(&cursor, bytes.count) else {
                return .failed(.drain("decode \(structure)"))
            }
            guard cursor == base + bytes.count else {
                EVP_PKEY_free(pkey)
                throw KeysError(.invalidPublicKey, "the key data has bytes after the DER \(structure)")
            }
            return .key(pkey)
        }
    }
}
