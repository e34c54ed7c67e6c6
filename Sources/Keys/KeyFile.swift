#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads key files with plain POSIX calls into memory that is zeroed when released, so no stdio or Foundation
/// buffer keeps a copy of the key.
enum KeyFile {
    /// Far above any PEM key (a 4096-bit RSA key is about 3.3 KB); anything larger is not a key file.
    static let maximumBytes = 1 << 20

    private static let initialCapacity = 16 * 1024
    /// Interrupted reads are retried, but not forever.
    private static let maximumInterruptions = 100

    /// The whole file. Throws `unreadableKeyFile` naming the path and the system's error text.
    static func contents(of path: String) throws -> SecureBuffer {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw unreadable(path, errno) }
        defer { close(fd) }

        let buffer = SecureBuffer(capacity: initialCapacity)
        var interruptions = 0
        while true {
            if buffer.spare.isEmpty {
                guard buffer.count <= maximumBytes else {
                    throw KeysError(
                        .malformedKey,
                        "key file \(path): larger than \(maximumBytes) bytes, which is not a key"
                    )
                }
                buffer.grow(to: min(buffer.storage.count * 2, maximumBytes + 1))
            }
            let spare = buffer.spare
            let n = read(fd, spare.baseAddress, spare.count)
            if n == 0 { return buffer }
            if n < 0 {
                let error = errno
                if error == EINTR && interruptions < maximumInterruptions {
                    interruptions += 1
                    continue
                }
                throw unreadable(path, error)
            }
            buffer.didAppend(n)
        }
    }

    private static func unreadable(_ path: String, _ error: Int32) -> KeysError {
        KeysError(.unreadableKeyFile, "cannot read key file \(path): \(String(cString: strerror(error)))")
    }
}
