import COpenSSL

/// Overwrites memory that held key material. `OPENSSL_cleanse` is written so the compiler cannot drop the stores
/// as dead, which a plain loop or `memset` before `free` does not guarantee.
enum SecureMemory {
    static func zero(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        OPENSSL_cleanse(base, buffer.count)
    }
}

/// A heap buffer for secret bytes that is zeroed before it is freed, however the scope that owns it ends. It comes
/// from OpenSSL's secure heap (locked, left out of core dumps) once `KeyMemoryProtection.enable()` ran.
/// Not Sendable: each one is used by one call and never escapes it.
final class SecureBuffer {
    private(set) var storage: UnsafeMutableRawBufferPointer
    /// Bytes of `storage` in use, from the start.
    private(set) var count = 0

    init(capacity: Int) {
        storage = Self.allocate(max(capacity, 1))
    }

    deinit {
        Self.release(storage)
    }

    private static func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        // The secure heap can be full; ordinary memory (still zeroed on release) is better than failing to load.
        // Both come back through OPENSSL_secure_clear_free, which hands non-secure pointers to CRYPTO_free (free).
        guard let base = signet_OPENSSL_secure_malloc(count) ?? CRYPTO_malloc(count, #fileID, #line) else {
            fatalError("out of memory allocating \(count) bytes for key material")
        }
        return UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    private static func release(_ buffer: UnsafeMutableRawBufferPointer) {
        // OPENSSL_secure_clear_free zeroes, and frees from whichever heap the pointer belongs to.
        signet_OPENSSL_secure_clear_free(buffer.baseAddress, buffer.count)
    }

    /// The bytes in use.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<count]) }

    /// Free space after the bytes in use.
    var spare: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage[count...]) }

    /// Records that `n` more bytes were written into `spare`.
    func didAppend(_ n: Int) {
        count = min(count + max(n, 0), storage.count)
    }

    /// Moves to a larger buffer, zeroing the old one.
    func grow(to capacity: Int) {
        guard capacity > storage.count else { return }
        let larger = Self.allocate(capacity)
        if count > 0, let base = larger.baseAddress, let old = storage.baseAddress {
            base.copyMemory(from: old, byteCount: count)
        }
        Self.release(storage)
        storage = larger
    }
}
