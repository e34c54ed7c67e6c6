import COpenSSL

/// A private signing key (RSA 1024...4096 bits, or Ed25519) owned by OpenSSL.
///
/// Safe to use from many threads at once: the key itself is only read after it is built, and each signature
/// takes an OpenSSL context of its own from the key's pool of initialised ones.
public struct PrivateKey: Sendable {
    /// Owns one `EVP_PKEY` and its signing contexts, freed with the last copy of the key.
    private final class Backing: @unchecked Sendable {
        let pkey: OpaquePointer
        let contexts: SigningContextPool

        init(takingOwnershipOf pkey: OpaquePointer, _ algorithm: KeyAlgorithm) {
            self.pkey = pkey
            self.contexts = SigningContextPool(kind: algorithm == .rsa ? .rsa : .ed25519, pkey: pkey)
        }

        deinit {
            // The pool is freed after this body, but its contexts hold references of their own to the key.
            EVP_PKEY_free(pkey)
        }
    }

    private let backing: Backing
    public let algorithm: KeyAlgorithm
    /// RSA: the modulus size. Ed25519: 256.
    public let bits: Int
    /// The public half, derived once when the key is built.
    public let publicKey: PublicKey

    /// Parses a PEM private key: PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE KEY" (RSA or Ed25519). Encrypted keys
    /// are refused (a relay has nobody to ask for a passphrase). RSA keys must be 1024 to 4096 bits.
    public init(pemRepresentation: String) throws {
        let pkey: OpaquePointer
        if let parsed = try pemRepresentation.utf8.withContiguousStorageIfAvailable({ utf8 in
            try Self.decodePEM(UnsafeRawBufferPointer(utf8))
        }) {
            pkey = parsed
        } else {
            // A bridged string without contiguous UTF-8: copy it into memory that is zeroed afterwards.
            let utf8 = pemRepresentation.utf8
            let copy = SecureBuffer(capacity: utf8.count)
            copy.spare.copyBytes(from: utf8)
            copy.didAppend(utf8.count)
            pkey = try Self.decodePEM(copy.bytes)
        }
        try self.init(takingOwnershipOf: pkey)
    }

    /// Reads and parses a PEM key file, then zeroes its copy of the file's bytes. Errors name the path.
    /// `requirePrivatePermissions` (the relay and the signer agent) refuses a file that is world-readable or
    /// group- or world-writable.
    public init(contentsOfFile path: String, requirePrivatePermissions: Bool = false) throws {
        let contents = try KeyFile.contents(of: path, requirePrivate: requirePrivatePermissions)
        do {
            let pkey = try Self.decodePEM(contents.bytes)
            try self.init(takingOwnershipOf: pkey)
        } catch let error as KeysError {
            throw KeysError(error.code, "key file \(path): \(error.reason)", openSSLError: error.openSSLError)
        }
        // `contents` is zeroed and freed when it goes out of scope, before this initializer returns.
        withExtendedLifetime(contents) {}
    }

    /// An Ed25519 key from its 32-byte seed, the form RFC 8463 prints.
    public init(ed25519Seed: [UInt8]) throws {
        guard ed25519Seed.count == KeyAlgorithm.ed25519KeyBytes else {
            throw KeysError(
                .invalidSeed,
                "an Ed25519 seed is \(KeyAlgorithm.ed25519KeyBytes) bytes, got \(ed25519Seed.count)"
            )
        }
        let pkey = ed25519Seed.withUnsafeBufferPointer { seed in
            EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed.baseAddress, seed.count)
        }
        guard let pkey else {
            throw KeysError(
                .invalidSeed,
                "OpenSSL refused the Ed25519 seed",
                openSSLError: .drain("EVP_PKEY_new_raw_private_key")
            )
        }
        try self.init(takingOwnershipOf: pkey)
    }

    /// A new RSA key; `bits` must be within 1024...4096.
    public static func generateRSA(bits: Int = 2048) throws -> PrivateKey {
        try checkRSASize(bits)
        return try generate("RSA") { context in
            signet_EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) > 0
                ? nil : OpenSSLError.drain("EVP_PKEY_CTX_set_rsa_keygen_bits")
        }
    }

    /// A new Ed25519 key.
    public static func generateEd25519() throws -> PrivateKey {
        try generate("ED25519") { _ in nil }
    }

    /// The key as PKCS#8 PEM ("BEGIN PRIVATE KEY"), unencrypted. The returned string belongs to the caller.
    public func pemRepresentation() throws -> String {
        try withExtendedLifetime(backing) { backing in
            guard let bio = BIO_new(signet_BIO_s_mem()) else {
                throw KeysError(.keyGenerationFailed, "could not export the key", openSSLError: .drain("BIO_new"))
            }
            // A memory BIO frees its buffer with OPENSSL_clear_free, so the PEM copy inside OpenSSL is zeroed too.
            defer { BIO_free(bio) }
            guard PEM_write_bio_PrivateKey(bio, backing.pkey, nil, nil, 0, nil, nil) == 1 else {
                throw KeysError(
                    .keyGenerationFailed,
                    "could not export the key as PEM",
                    openSSLError: .drain("PEM_write_bio_PrivateKey")
                )
            }
            let pending = BIO_ctrl_pending(bio)
            guard pending > 0, pending < Int32.max else {
                throw KeysError(
                    .keyGenerationFailed, "the PEM export is empty", openSSLError: .drain("BIO_ctrl_pending"))
            }
            let buffer = SecureBuffer(capacity: pending)
            let read = BIO_read(bio, buffer.spare.baseAddress, Int32(pending))
            guard read == Int32(pending) else {
                throw KeysError(.keyGenerationFailed, "could not read the PEM export", openSSLError: .drain("BIO_read"))
            }
            buffer.didAppend(Int(read))
            return String(decoding: buffer.bytes, as: UTF8.self)
        }
    }

    /// RSA: RSASSA-PKCS1-v1_5 over DigestInfo(SHA-256, digest).
    /// Ed25519: PureEdDSA over the 32 digest bytes (RFC 8463 §3).
    public func signature(forSHA256Digest digest: [UInt8]) throws -> [UInt8] {
        guard digest.count == KeyAlgorithm.sha256DigestBytes else {
            throw KeysError(
                .signingFailed,
                "a SHA-256 digest is \(KeyAlgorithm.sha256DigestBytes) bytes, got \(digest.count)"
            )
        }
        return try withExtendedLifetime(backing) { backing in
            do throws(OpenSSLError) {
                let contexts = backing.contexts
                switch algorithm {
                case .rsa: return try EVPKey.signRSA(backing.pkey, contexts: contexts, digest: digest)
                case .ed25519: return try EVPKey.signEd25519(backing.pkey, contexts: contexts, digest: digest)
                }
            } catch {
                throw KeysError(.signingFailed, "OpenSSL could not sign with the \(algorithm) key", openSSLError: error)
            }
        }
    }

    /// The key's idle signing contexts (for tests).
    var signingContexts: SigningContextPool { backing.contexts }

    // MARK: - Building

    /// Takes over `pkey` (freed here even when this throws), checks its type and size and derives the public key.
    private init(takingOwnershipOf pkey: OpaquePointer) throws {
        guard let algorithm = EVPKey.algorithm(of: pkey) else {
            let typeName = EVPKey.typeName(of: pkey)
            EVP_PKEY_free(pkey)
            throw KeysError(
                .unsupportedKeyType,
                "the key is of type \(typeName), which cannot sign DKIM: use an RSA or Ed25519 key"
            )
        }
        let backing = Backing(takingOwnershipOf: pkey, algorithm)
        let bits = EVPKey.bits(of: pkey, algorithm)
        if algorithm == .rsa { try Self.checkRSASize(bits) }
        let publicData: [UInt8]
        do throws(OpenSSLError) {
            switch algorithm {
            case .rsa: publicData = try EVPKey.subjectPublicKeyInfo(of: pkey)
            case .ed25519: publicData = try EVPKey.rawEd25519PublicKey(of: pkey)
            }
        } catch {
            throw KeysError(.malformedKey, "could not derive the public key", openSSLError: error)
        }
        self.publicKey = try PublicKey(dkimKeyData: publicData, algorithm: algorithm)
        self.backing = backing
        self.algorithm = algorithm
        self.bits = bits
    }

    static func checkRSASize(_ bits: Int) throws {
        let allowed = KeyAlgorithm.rsaSigningBits
        if bits < allowed.lowerBound {
            throw KeysError(
                .keyTooShort,
                "the RSA key has \(bits) bits; DKIM needs at least \(allowed.lowerBound) (RFC 8301)"
            )
        }
        if bits > allowed.upperBound {
            throw KeysError(
                .keyTooLong, "the RSA key has \(bits) bits; Signet signs with at most \(allowed.upperBound)")
        }
    }

    /// Generates a key of the named OpenSSL type; `configure` returns an error to abort.
    private static func generate(
        _ typeName: String,
        configure: (OpaquePointer) -> OpenSSLError?
    ) throws -> PrivateKey {
        func failure(_ error: OpenSSLError) -> KeysError {
            KeysError(.keyGenerationFailed, "OpenSSL could not generate a new \(typeName) key", openSSLError: error)
        }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, typeName, nil) else {
            throw failure(.drain("EVP_PKEY_CTX_new_from_name"))
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1 else { throw failure(.drain("EVP_PKEY_keygen_init")) }
        if let error = configure(context) { throw failure(error) }
        var pkey: OpaquePointer?
        guard EVP_PKEY_generate(context, &pkey) == 1, let pkey else {
            throw failure(.drain("EVP_PKEY_generate"))
        }
        return try PrivateKey(takingOwnershipOf: pkey)
    }

    // MARK: - PEM

    /// PEM framing lines that mark a passphrase-protected key (PKCS#8 and OpenSSL's traditional format).
    private static let encryptedMarkers = ["-----BEGIN ENCRYPTED PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED"]

    /// Decodes the first PEM private key in `pem`; the caller owns the result.
    private static func decodePEM(_ pem: UnsafeRawBufferPointer) throws -> OpaquePointer {
        guard let base = pem.baseAddress, !pem.isEmpty else {
            throw KeysError(.malformedKey, "the key is empty")
        }
        guard pem.count <= KeyFile.maximumBytes else {
            throw KeysError(.malformedKey, "the key text is larger than \(KeyFile.maximumBytes) bytes")
        }
        if encryptedMarkers.contains(where: { pem.contains(ascii: $0) }) {
            throw KeysError(
                .malformedKey,
                "the key is encrypted with a passphrase; Signet needs it unencrypted "
                    + "(decrypt it with: openssl pkey -in KEY -out PLAIN.pem)"
            )
        }
        guard let bio = BIO_new_mem_buf(base, Int32(pem.count)) else {
            throw KeysError(.malformedKey, "could not read the key", openSSLError: .drain("BIO_new_mem_buf"))
        }
        defer { BIO_free(bio) }
        // The callback refuses any passphrase request: OpenSSL's default would prompt on the terminal.
        guard let pkey = PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in -1 }, nil) else {
            let error = OpenSSLError.drain("PEM_read_bio_PrivateKey")
            let reason =
                pem.contains(ascii: "-----BEGIN ")
                ? "OpenSSL could not decode the PEM private key (expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"
                : "no PEM private key found (expected a BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY block)"
            throw KeysError(.malformedKey, reason, openSSLError: error)
        }
        return pkey
    }
}

extension UnsafeRawBufferPointer {
    /// Whether the bytes contain `needle` (ASCII). Linear in practice: key texts are small and bounded.
    fileprivate func contains(ascii needle: String) -> Bool {
        let pattern = Array(needle.utf8)
        guard let first = pattern.first, pattern.count <= count else { return false }
        var start = 0
        while start <= count - pattern.count {
            if self[start] == first {
                var matched = 1
                while matched < pattern.count && self[start + matched] == pattern[matched] { matched += 1 }
                if matched == pattern.count { return true }
            }
            start += 1
        }
        return false
    }
}
