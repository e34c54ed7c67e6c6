import COpenSSL

/// Operations on an `EVP_PKEY` shared by `PrivateKey` and `PublicKey`. Every function borrows the pointer; none
/// keeps or frees it. Signing takes a context from the key's `SigningContextPool`, verification makes its own, so
/// one key can be used from many threads at once.
enum EVPKey {
    /// RSA or Ed25519, or nil for any other key type.
    static func algorithm(of pkey: OpaquePointer) -> KeyAlgorithm? {
        if EVP_PKEY_is_a(pkey, "RSA") == 1 { return .rsa }
        if EVP_PKEY_is_a(pkey, "ED25519") == 1 { return .ed25519 }
        return nil
    }

    /// OpenSSL's name for the key type, for messages ("EC", "DSA", "RSA-PSS" ...).
    static func typeName(of pkey: OpaquePointer) -> String {
        guard let name = EVP_PKEY_get0_type_name(pkey) else { return "unknown" }
        return String(cString: name)
    }

    /// The RSA modulus size; `KeyAlgorithm.ed25519Bits` for Ed25519.
    static func bits(of pkey: OpaquePointer, _ algorithm: KeyAlgorithm) -> Int {
        switch algorithm {
        case .rsa: return Int(EVP_PKEY_get_bits(pkey))
        case .ed25519: return KeyAlgorithm.ed25519Bits
        }
    }

    /// The DER SubjectPublicKeyInfo of a key (the public half only, also for a private key).
    static func subjectPublicKeyInfo(of pkey: OpaquePointer) throws(OpenSSLError) -> [UInt8] {
        let length = i2d_PUBKEY(pkey, nil)
        guard length > 0 else { throw OpenSSLError.drain("i2d_PUBKEY") }
        var written: Int32 = 0
        let der = [UInt8](unsafeUninitializedCapacity: Int(length)) { buffer, count in
            var cursor = buffer.baseAddress
            written = i2d_PUBKEY(pkey, &cursor)
            count = written == length ? Int(length) : 0
        }
        guard written == length else { throw OpenSSLError.drain("i2d_PUBKEY") }
        return der
    }

    /// The raw 32-byte public key of an Ed25519 key (public or private).
    static func rawEd25519PublicKey(of pkey: OpaquePointer) throws(OpenSSLError) -> [UInt8] {
        var length = KeyAlgorithm.ed25519KeyBytes
        var ok = false
        let raw = [UInt8](unsafeUninitializedCapacity: KeyAlgorithm.ed25519KeyBytes) { buffer, count in
            ok =
                EVP_PKEY_get_raw_public_key(pkey, buffer.baseAddress, &length) == 1
                && length == KeyAlgorithm.ed25519KeyBytes
            count = ok ? length : 0
        }
        guard ok else { throw OpenSSLError.drain("EVP_PKEY_get_raw_public_key") }
        return raw
    }

    // MARK: - Signing and verification

    /// RSASSA-PKCS1-v1_5 over DigestInfo(SHA-256, digest): a raw EVP_PKEY_sign with the signature digest set, so
    /// OpenSSL builds the DigestInfo around the precomputed digest and the message is never hashed again.
    /// `contexts` holds contexts made by `rsaContext(_:forSigning: true)` for the same key.
    static func signRSA(
        _ pkey: OpaquePointer, contexts: SigningContextPool, digest: [UInt8]
    ) throws(OpenSSLError) -> [UInt8] {
        try contexts.withContext { context throws(OpenSSLError) in
            try withSignatureBuffer(pkey, operation: "EVP_PKEY_sign") { signature, length in
                digest.withUnsafeBufferPointer { tbs in
                    EVP_PKEY_sign(context, signature, &length, tbs.baseAddress, tbs.count)
                }
            }
        }
    }

    /// PureEdDSA (RFC 8032) with the 32 digest bytes as the message, as RFC 8463 §3 specifies.
    /// `contexts` holds `EVP_MD_CTX`s initialised for signing with the same key.
    static func signEd25519(
        _ pkey: OpaquePointer, contexts: SigningContextPool, digest: [UInt8]
    ) throws(OpenSSLError) -> [UInt8] {
        try contexts.withContext { context throws(OpenSSLError) in
            try withSignatureBuffer(pkey, operation: "EVP_DigestSign") { signature, length in
                digest.withUnsafeBufferPointer { tbs in
                    EVP_DigestSign(context, signature, &length, tbs.baseAddress, tbs.count)
                }
            }
        }
    }

    /// The mirror image of `signRSA`. A signature that does not verify is an answer, not an error: its queue
    /// entries are discarded.
    static func verifyRSA(
        _ pkey: OpaquePointer, signature: [UInt8], digest: [UInt8], algorithm: DigestAlgorithm = .sha256
    ) -> Bool {
        guard let context = try? rsaContext(pkey, forSigning: false, digest: algorithm) else { return false }
        defer { EVP_PKEY_CTX_free(context) }
        let result = signature.withUnsafeBufferPointer { sig in
            digest.withUnsafeBufferPointer { tbs in
                EVP_PKEY_verify(context, sig.baseAddress, sig.count, tbs.baseAddress, tbs.count)
            }
        }
        guard result == 1 else {
            OpenSSLError.discardQueue()
            return false
        }
        return true
    }

    /// RSA (SHA-256, as `verifyRSA`) or PureEdDSA verification with a context from `contexts` (made for verifying with the same
    /// key), so OpenSSL does not set one up per signature. A signature that does not verify leaves the context usable.
    static func verify(contexts: SigningContextPool, signature: [UInt8], digest: [UInt8]) -> Bool {
        let valid = try? contexts.withContext { context throws(OpenSSLError) -> Bool in
            let result = signature.withUnsafeBufferPointer { sig in
                digest.withUnsafeBufferPointer { tbs in
                    contexts.kind == .rsaVerify
                        ? EVP_PKEY_verify(context, sig.baseAddress, sig.count, tbs.baseAddress, tbs.count)
                        : EVP_DigestVerify(context, sig.baseAddress, sig.count, tbs.baseAddress, tbs.count)
                }
            }
            if result != 1 { OpenSSLError.discardQueue() }
            return result == 1
        }
        if valid == nil { OpenSSLError.discardQueue() }
        return valid ?? false
    }

    /// A fresh EVP_PKEY_CTX set up for PKCS#1 v1.5 with SHA-256 (or SHA-1 to verify); the caller frees it.
    static func rsaContext(
        _ pkey: OpaquePointer, forSigning: Bool, digest: DigestAlgorithm = .sha256
    ) throws(OpenSSLError) -> OpaquePointer {
        guard let context = EVP_PKEY_CTX_new_from_pkey(nil, pkey, nil) else {
            throw OpenSSLError.drain("EVP_PKEY_CTX_new_from_pkey")
        }
        let initialized = forSigning ? EVP_PKEY_sign_init(context) : EVP_PKEY_verify_init(context)
        guard initialized == 1 else {
            EVP_PKEY_CTX_free(context)
            throw OpenSSLError.drain(forSigning ? "EVP_PKEY_sign_init" : "EVP_PKEY_verify_init")
        }
        guard signet_EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PADDING) > 0 else {
            EVP_PKEY_CTX_free(context)
            throw OpenSSLError.drain("EVP_PKEY_CTX_set_rsa_padding")
        }
        guard signet_EVP_PKEY_CTX_set_signature_md(context, digest.md) > 0 else {
            EVP_PKEY_CTX_free(context)
            throw OpenSSLError.drain("EVP_PKEY_CTX_set_signature_md")
        }
        return context
    }

    /// Runs `sign` over a buffer of the key's maximum signature size and keeps the bytes it reports written.
    private static func withSignatureBuffer(
        _ pkey: OpaquePointer,
        operation: String,
        _ sign: (UnsafeMutablePointer<UInt8>?, inout Int) -> Int32
    ) throws(OpenSSLError) -> [UInt8] {
        let capacity = Int(EVP_PKEY_get_size(pkey))
        guard capacity > 0 else { throw OpenSSLError.drain("EVP_PKEY_get_size") }
        var ok = false
        let signature = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            var length = buffer.count
            ok = sign(buffer.baseAddress, &length) == 1 && length > 0 && length <= buffer.count
            count = ok ? length : 0
        }
        guard ok else { throw OpenSSLError.drain(operation) }
        return signature
    }
}
