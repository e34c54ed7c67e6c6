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

    /// The whole file. Throws `unreadableKeyFile` naming the path and the system's error text; with
    /// `requirePrivate`, `insecureKeyFile` for a file others may read or change (checked on the open descriptor,
    /// so the file cannot be swapped between check and read).
    static func contents(of path: String, requirePrivate: Bool = false, what: String = "key file") throws -> SecureBuffer {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw unreadable(path, errno, what) }
        defer { close(fd) }
        if requirePrivate { try checkPrivate(fd, path, what) }

        let buffer = SecureBuffer(capacity: initialCapacity)
        var interruptions = 0
        while true {
            if buffer.spare.isEmpty {
                guard buffer.count <= maximumBytes else {
                    throw KeysError(
                        .malformedKey,
                        "\(what) \(path): larger than \(maximumBytes) bytes"
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
                throw unreadable(path, error, what)
            }
            buffer.didAppend(n)
        }
    }

    /// Refuses what is not a regular file, or is readable by everyone, or writable by group or everyone: a key
    /// others can read is no longer secret, one others can change is no longer ours.
    private static func checkPrivate(_ fd: Int32, _ path: String, _ what: String) throws {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw unreadable(path, errno, what) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw KeysError(.insecureKeyFile, "\(what) \(path) is not a regular file")
        }
        let mode = info.st_mode & 0o7777
        var problems: [String] = []
        if mode & 0o004 != 0 { problems.append("readable by everyone") }
        if mode & 0o002 != 0 { problems.append("writable by everyone") }
        if mode & 0o020 != 0 { problems.append("writable by its group") }
        guard problems.isEmpty else {
            throw KeysError(
                .insecureKeyFile,
                "\(what) \(path) is \(problems.joined(separator: " and ")) (mode \(String(mode, radix: 8))); "
                    + "make it private: chmod 600 \(path)"
            )
        }
    }

    private static func unreadable(_ path: String, _ error: Int32, _ what: String) -> KeysError {
        KeysError(.unreadableKeyFile, "cannot read \(what) \(path): \(String(cString: strerror(error)))")
    }
}
