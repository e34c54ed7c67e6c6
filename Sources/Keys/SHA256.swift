import COpenSSL

/// Incremental SHA-256 over OpenSSL's EVP interface.
///
/// One hasher per message; it is not shared between threads (hence `@unchecked`). After `finalize()` the hasher
/// starts over by itself, so `reset()` is only needed to abandon a hash half way.
public final class SHA256: @unchecked Sendable {
    /// The owned `EVP_MD_CTX`.
    private let context: OpaquePointer

    public init() {
        // EVP_MD_CTX_new fails only when malloc does; there is nothing to recover, as for any Swift allocation.
        guard let context = EVP_MD_CTX_new() else {
            fatalError("SHA256: out of memory: \(OpenSSLError.drain("EVP_MD_CTX_new"))")
        }
        self.context = context
        Self.initialize(context)
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    /// Adds bytes to the hash. One OpenSSL call, no allocation.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        guard EVP_DigestUpdate(context, base, bytes.count) == 1 else { Self.fail("EVP_DigestUpdate") }
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The 32-byte digest of everything added since the last finalize or reset; the hasher is then ready for
    /// a new message.
    public func finalize() -> [UInt8] {
        let digest = [UInt8](unsafeUninitializedCapacity: KeyAlgorithm.sha256DigestBytes) { buffer, count in
            var length: UInt32 = 0
            guard let base = buffer.baseAddress, EVP_DigestFinal_ex(context, base, &length) == 1 else {
                Self.fail("EVP_DigestFinal_ex")
            }
            count = Int(length)
        }
        Self.initialize(context)
        return digest
    }

    /// Abandons the current message and starts a new one.
    public func reset() {
        Self.initialize(context)
    }

    /// One-shot SHA-256.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalize()
    }

    // MARK: - Internals

    private static func initialize(_ context: OpaquePointer) {
        guard EVP_DigestInit_ex2(context, SHA256Algorithm.shared.md, nil) == 1 else { fail("EVP_DigestInit_ex2") }
    }

    /// SHA-256 in the default provider cannot fail on valid arguments; a failure means a broken OpenSSL
    /// installation (no default provider), which no caller could handle, and the API does not throw.
    private static func fail(_ operation: String) -> Never {
        fatalError("SHA256: \(OpenSSLError.drain(operation))")
    }
}

/// The SHA-256 implementation fetched from the default provider once per process, so hashers do not repeat the
/// provider lookup that the legacy `EVP_sha256()` handle implies on every initialisation.
final class SHA256Algorithm: @unchecked Sendable {
    static let shared = SHA256Algorithm()

    /// A fetched `EVP_MD` (immutable and reference counted: safe to share between threads), or the legacy handle
    /// if fetching failed. Kept for the life of the process.
    let md: OpaquePointer

    private init() {
        if let fetched = EVP_MD_fetch(nil, "SHA256", nil) {
            md = fetched
        } else {
            OpenSSLError.discardQueue()
            // Never nil: it returns the address of a static table.
            md = EVP_sha256()!
        }
    }
}
