import COpenSSL

/// The digests DKIM hashes with: SHA-256, and SHA-1 only to verify legacy rsa-sha1 signatures (RFC 8301).
public enum DigestAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256
    case sha1

    /// Digest length in bytes.
    public var byteCount: Int { self == .sha256 ? 32 : 20 }

    /// The fetched OpenSSL implementation.
    var md: OpaquePointer { self == .sha256 ? SHA256Algorithm.shared.md : SHA256Algorithm.sha1.md }
}

/// Incremental SHA-256 over OpenSSL's EVP interface (or SHA-1, for verifying rsa-sha1 signatures only).
///
/// One hasher per message; it is not shared between threads (hence `@unchecked`). After `finalize()` the hasher
/// starts over by itself, so `reset()` is only needed to abandon a hash half way.
public final class SHA256: @unchecked Sendable {
    /// The owned `EVP_MD_CTX`.
    private let context: OpaquePointer
    /// SHA-256 unless asked otherwise.
    public let algorithm: DigestAlgorithm

    public init(_ algorithm: DigestAlgorithm = .sha256) {
        self.algorithm = algorithm
        // EVP_MD_CTX_new fails only when malloc does; there is nothing to recover, as for any Swift allocation.
        guard let context = EVP_MD_CTX_new() else {
            fatalError("SHA256: out of memory: \(OpenSSLError.drain("EVP_MD_CTX_new"))")
        }
        self.context = context
        Self.initialize(context, algorithm)
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
        let digest = [UInt8](unsafeUninitializedCapacity: algorithm.byteCount) { buffer, count in
            var length: UInt32 = 0
            guard let base = buffer.baseAddress, EVP_DigestFinal_ex(context, base, &length) == 1 else {
                Self.fail("EVP_DigestFinal_ex")
            }
            count = Int(length)
        }
        Self.initialize(context, algorithm)
        return digest
    }

    /// Abandons the current message and starts a new one.
    public func reset() {
        Self.initialize(context, algorithm)
    }

    /// One-shot SHA-256.
    public static func hash(_ bytes: [UInt8], algorithm: DigestAlgorithm = .sha256) -> [UInt8] {
        let hasher = SHA256(algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }

    // MARK: - Internals

    private static func initialize(_ context: OpaquePointer, _ algorithm: DigestAlgorithm) {
        guard EVP_DigestInit_ex2(context, algorithm.md, nil) == 1 else { fail("EVP_DigestInit_ex2") }
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
    static let shared = SHA256Algorithm(name: "SHA256", legacy: { EVP_sha256() })
    /// SHA-1, fetched only when an rsa-sha1 signature is verified.
    static let sha1 = SHA256Algorithm(name: "SHA1", legacy: { EVP_sha1() })

    /// A fetched `EVP_MD` (immutable and reference counted: safe to share between threads), or the legacy handle
    /// if fetching failed. Kept for the life of the process.
    let md: OpaquePointer

    private init(name: String, legacy: () -> OpaquePointer?) {
        if let fetched = EVP_MD_fetch(nil, name, nil) {
            md = fetched
        } else {
            OpenSSLError.discardQueue()
            // Never nil: it returns the address of a static table.
            md = legacy()!
        }
    }
}
