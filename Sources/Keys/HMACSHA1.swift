import COpenSSL

/// HMAC-SHA1 (RFC 2104) with one fixed key, over OpenSSL's EVP_MAC interface.
///
/// SRS (Mail::SRS, libsrs2, postsrsd) authenticates rewritten addresses with HMAC-SHA1; SHA-1's weakness does not
/// matter for an HMAC. The key is set up once (inner and outer pad hashed) in a template context that is never
/// updated; each code duplicates it, so one key can be used from many threads at once.
public final class HMACSHA1Key: @unchecked Sendable {
    /// Length of the code in bytes.
    public static let codeBytes = 20

    /// An initialised `EVP_MAC_CTX`; only read (duplicated) after `init`, which is why sharing it is safe.
    private let template: OpaquePointer

    /// A key of any length (HMAC hashes keys longer than the block size, as RFC 2104 says).
    public init(key: [UInt8]) {
        guard let context = EVP_MAC_CTX_new(HMACAlgorithm.shared.mac) else {
            fatalError("HMACSHA1Key: out of memory: \(OpenSSLError.drain("EVP_MAC_CTX_new"))")
        }
        let initialised = "digest".withCString { name in
            "SHA1".withCString { digest in
                var parameters = [
                    OSSL_PARAM_construct_utf8_string(name, UnsafeMutablePointer(mutating: digest), 0),
                    OSSL_PARAM_construct_end(),
                ]
                return key.withUnsafeBufferPointer { bytes in
                    // OpenSSL refuses a NULL key pointer even for an empty key; any valid address will do.
                    var empty: UInt8 = 0
                    return withUnsafePointer(to: &empty) { fallback in
                        EVP_MAC_init(context, bytes.baseAddress ?? fallback, bytes.count, &parameters)
                    }
                }
            }
        }
        guard initialised == 1 else {
            EVP_MAC_CTX_free(context)
            fatalError("HMACSHA1Key: \(OpenSSLError.drain("EVP_MAC_init"))")
        }
        template = context
    }

    /// A key from the UTF-8 bytes of `secret`, as the Perl and C SRS implementations use their secrets.
    public convenience init(secret: String) {
        self.init(key: Array(secret.utf8))
    }

    deinit {
        EVP_MAC_CTX_free(template)
    }

    /// The 20-byte code of `message`.
    public func code(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let context = EVP_MAC_CTX_dup(template) else {
            fatalError("HMACSHA1Key: \(OpenSSLError.drain("EVP_MAC_CTX_dup"))")
        }
        defer { EVP_MAC_CTX_free(context) }
        if let base = message.baseAddress, message.count > 0 {
            guard EVP_MAC_update(context, base.assumingMemoryBound(to: UInt8.self), message.count) == 1 else {
                fatalError("HMACSHA1Key: \(OpenSSLError.drain("EVP_MAC_update"))")
            }
        }
        return [UInt8](unsafeUninitializedCapacity: Self.codeBytes) { buffer, count in
            var length = 0
            guard EVP_MAC_final(context, buffer.baseAddress, &length, Self.codeBytes) == 1 else {
                fatalError("HMACSHA1Key: \(OpenSSLError.drain("EVP_MAC_final"))")
            }
            count = length
        }
    }

    /// The 20-byte code of `message`.
    public func code(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { code($0) }
    }
}

/// The HMAC implementation fetched once per process (fetching is a provider lookup, too slow per address).
final class HMACAlgorithm: @unchecked Sendable {
    static let shared = HMACAlgorithm()

    /// A fetched `EVP_MAC`: immutable and reference counted, safe to share between threads.
    let mac: OpaquePointer

    private init() {
        guard let fetched = EVP_MAC_fetch(nil, "HMAC", nil) else {
            // Only a broken OpenSSL installation (no default provider) lacks HMAC; nothing could recover.
            fatalError("HMAC: \(OpenSSLError.drain("EVP_MAC_fetch"))")
        }
        mac = fetched
    }
}
