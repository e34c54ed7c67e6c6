import COpenSSL

/// Overwrites memory that held key material. `OPENSSL_cleanse` is written so the compiler cannot drop the stores
/// as dead, which a plain loop or `memset` before `free` does not guarantee.
enum SecureMemory {
    static func zero(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        OPENSSL_cleanse(base, buffer.count)
    }
}

/// A heap buffer for secret bytes that is zeroed before it is freed, however the scope that owns it ends.
/// Not Sendable: each one is used by one call and never escapes it.
final class SecureBuffer {
    private(set) var storage: UnsafeMutableRawBufferPointer
    /// Bytes of `storage` in use, from the start.
    private(set) var count = 0

    init(capacity: Int) {
        storage = .allocate(byteCount: max(capacity, 1), alignment: 1)
    }

    deinit {
        SecureMemory.zero(storage)
        storage.deallocate()
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
        let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 1)
        if count > 0, let base = larger.baseAddress, let old = storage.baseAddress {
            base.copyMemory(from: old, byteCount: count)
        }
        SecureMemory.zero(storage)
        storage.deallocate()
        storage = larger
    }
}
