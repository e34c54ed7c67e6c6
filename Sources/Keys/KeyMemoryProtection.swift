import COpenSSL

/// Process-wide protection of private-key memory, switched on by `signet run` and `signet signer` before any key
/// is read.
///
/// What it covers: OpenSSL's secure heap is an `mlock`ed, `MADV_DONTDUMP` arena with guard pages, and OpenSSL
/// allocates the private parts of keys there once it exists (RSA d, p, q, dP, dQ, qInv as secure BIGNUMs; the
/// Ed25519 private key), as do Signet's own copies of key files (`SecureBuffer`). `PR_SET_DUMPABLE` 0 means no core
/// dump and no ptrace or `/proc/PID/mem` by the same user (root with CAP_SYS_PTRACE still can).
/// What it does not: temporaries inside OpenSSL during a signature (blinding values, Montgomery contexts) come
/// from the ordinary heap, where OpenSSL zeroes most of them but they are neither locked nor hidden from a dump
/// taken another way; only `agent` keeps them out of the relay entirely.
public enum KeyMemoryProtection {
    /// 4 MiB: room for hundreds of RSA-4096 keys, within the usual 8 MiB RLIMIT_MEMLOCK. A power of two, as
    /// OpenSSL requires.
    public static let secureHeapBytes = 4 << 20

    /// What `enable()` achieved.
    public struct Status: Sendable, Equatable, CustomStringConvertible {
        /// OpenSSL's secure heap exists, so key material goes there.
        public var secureHeap: Bool
        /// The secure heap is locked in RAM (mlock can fail under a low RLIMIT_MEMLOCK).
        public var locked: Bool
        /// PR_SET_DUMPABLE is 0.
        public var undumpable: Bool

        public var description: String {
            "secure heap \(secureHeap ? (locked ? "locked" : "not locked (RLIMIT_MEMLOCK)") : "unavailable"), "
                + "core dumps and ptrace \(undumpable ? "off" : "still on")"
        }
    }

    /// Sets up the secure heap (once per process) and marks the process undumpable. Call before loading keys.
    @discardableResult
    public static func enable() -> Status {
        var status = Status(secureHeap: false, locked: false, undumpable: false)
        if CRYPTO_secure_malloc_initialized() == 1 {
            status.secureHeap = true
            status.locked = true
        } else {
            // 1: heap made and locked; 2: made, but mlock failed; 0: none.
            let result = CRYPTO_secure_malloc_init(secureHeapBytes, 32)
            status.secureHeap = result != 0
            status.locked = result == 1
        }
        #if os(Linux)
            status.undumpable = signet_prctl_set_dumpable(0) == 0 && signet_prctl_get_dumpable() == 0
        #endif
        return status
    }

    /// PR_SET_DUMPABLE 0 again: setuid makes a process dumpable, so the signer agent calls this after dropping root.
    @discardableResult
    public static func markUndumpable() -> Bool {
        #if os(Linux)
            return signet_prctl_set_dumpable(0) == 0
        #else
            return false
        #endif
    }

    /// Whether `pointer` lies in OpenSSL's secure heap (for tests).
    static func isSecure(_ pointer: UnsafeRawPointer) -> Bool {
        CRYPTO_secure_allocated(pointer) == 1
    }
}
