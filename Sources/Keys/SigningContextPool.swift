import COpenSSL
import Synchronization

/// Initialised OpenSSL signing (or verification) contexts for one key, kept between operations.
///
/// Setting up a context (allocating it, fetching the signature implementation from the provider, checking the key)
/// costs about as much as a tenth of an Ed25519 signature, and `openssl speed` does it once per run. A context
/// serves one thread at a time, and a key signs from many threads, so each signature takes an idle context (or makes
/// one when all are busy) and puts it back afterwards. At most `maximumIdle` stay idle; the rest are freed.
final class SigningContextPool: Sendable {
    /// What the contexts are for; decides how one is made, re-armed and freed.
    enum Kind {
        /// `EVP_PKEY_CTX` after `EVP_PKEY_sign_init` with PKCS#1 v1.5 padding and SHA-256 as the signature digest.
        case rsa
        /// `EVP_MD_CTX` after `EVP_DigestSignInit` for PureEdDSA.
        case ed25519
        /// `EVP_PKEY_CTX` after `EVP_PKEY_verify_init`, PKCS#1 v1.5 and SHA-256 (a public key's contexts).
        case rsaVerify
        /// `EVP_MD_CTX` after `EVP_DigestVerifyInit` for PureEdDSA.
        case ed25519Verify
    }

    /// A context pointer that crosses threads inside the pool; only one thread uses it at a time.
    private struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    /// Enough for the signing threads of a relay; more contexts than this are only needed in bursts.
    static let maximumIdle = 16

    let kind: Kind
    /// The key the contexts sign with. Borrowed from the key's owner, which outlives every use of the pool; the
    /// contexts take references of their own.
    private let pkey: Key
    private let idle = Mutex<[Context]>([])

    /// The `EVP_PKEY`, read-only once the key is built.
    private struct Key: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    init(kind: Kind, pkey: OpaquePointer) {
        self.kind = kind
        self.pkey = Key(pointer: pkey)
    }

    deinit {
        for context in idle.withLock({ $0 }) { Self.free(context.pointer, kind) }
    }

    /// Contexts waiting for the next signature (for tests).
    var idleCount: Int { idle.withLock { $0.count } }

    /// Runs `body` with a context ready for one signature. A context whose signature failed is freed, not reused,
    /// in case the failure left it in an unknown state.
    func withContext<Result>(
        _ body: (OpaquePointer) throws(OpenSSLError) -> Result
    ) throws(OpenSSLError) -> Result {
        let context = try take()
        let result: Result
        do {
            result = try body(context.pointer)
        } catch {
            Self.free(context.pointer, kind)
            throw error
        }
        give(back: context)
        return result
    }

    private func take() throws(OpenSSLError) -> Context {
        if let context = idle.withLock({ $0.popLast() }) {
            // Ed25519: since OpenSSL 3.2 a context is finalised by EVP_DigestSign and must be initialised again.
            // With a NULL key OpenSSL keeps the fetched implementation and only re-arms it, the way
            // `openssl speed` loops. RSA's EVP_PKEY_sign needs nothing between calls.
            if kind == .ed25519 && EVP_DigestSignInit(context.pointer, nil, nil, nil, nil) != 1 {
                Self.free(context.pointer, kind)
                throw OpenSSLError.drain("EVP_DigestSignInit")
            }
            if kind == .ed25519Verify && Self.oneShotFinalizes
                && EVP_DigestVerifyInit(context.pointer, nil, nil, nil, nil) != 1
            {
                Self.free(context.pointer, kind)
                throw OpenSSLError.drain("EVP_DigestVerifyInit")
            }
            return context
        }
        return Context(pointer: try Self.make(kind, pkey.pointer))
    }

    private func give(back context: Context) {
        let kept = idle.withLock { contexts in
            guard contexts.count < Self.maximumIdle else { return false }
            contexts.append(context)
            return true
        }
        if !kept { Self.free(context.pointer, kind) }
    }

    // MARK: - Contexts

    /// Whether EVP_DigestVerify leaves its context finalised (OpenSSL 3.2 and later), so that it must be armed
    /// again before the next use; before 3.2 re-arming cost about as much as the verification itself.
    static let oneShotFinalizes = OpenSSL_version_num() >= 0x3020_0000

    /// A new context for `kind`, initialised for signing with `pkey`.
    static func make(_ kind: Kind, _ pkey: OpaquePointer) throws(OpenSSLError) -> OpaquePointer {
        switch kind {
        case .rsa:
            return try EVPKey.rsaContext(pkey, forSigning: true)
        case .ed25519:
            guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.drain("EVP_MD_CTX_new") }
            guard EVP_DigestSignInit(context, nil, nil, nil, pkey) == 1 else {
                EVP_MD_CTX_free(context)
                throw OpenSSLError.drain("EVP_DigestSignInit")
            }
            return context
        case .rsaVerify:
            return try EVPKey.rsaContext(pkey, forSigning: false)
        case .ed25519Verify:
            guard let context = EVP_MD_CTX_new() else { throw OpenSSLError.drain("EVP_MD_CTX_new") }
            guard EVP_DigestVerifyInit(context, nil, nil, nil, pkey) == 1 else {
                EVP_MD_CTX_free(context)
                throw OpenSSLError.drain("EVP_DigestVerifyInit")
            }
            return context
        }
    }

    static func free(_ context: OpaquePointer, _ kind: Kind) {
        switch kind {
        case .rsa, .rsaVerify: EVP_PKEY_CTX_free(context)
        case .ed25519, .ed25519Verify: EVP_MD_CTX_free(context)
        }
    }
}
