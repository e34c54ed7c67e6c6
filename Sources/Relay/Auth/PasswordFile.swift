import CCrypt
import Foundation

/// The users allowed to authenticate, each with a crypt(3) hash, read from a `user:hash` file.
///
/// One user per line; blank lines and lines starting with `#` are skipped. The hash is what `openssl passwd -6`,
/// `mkpasswd -m yescrypt` or `doveadm pw -s SHA512-CRYPT` print (Dovecot's `{SHA512-CRYPT}` style prefix is
/// accepted and dropped); fields after the hash (Dovecot passwd-file uid/gid/...) are ignored. Plain text
/// passwords and the legacy DES and MD5 schemes are refused when the file is read, not at the first login.
public struct PasswordFile: Sendable, Equatable {
    /// User name → crypt(3) hash.
    public let users: [String: String]

    /// Reads and checks the file at `path`.
    public init(contentsOf path: String) throws(ConfigurationError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(["auth.password_file: cannot read \(path): \(error.localizedDescription)"])
        }
        try self.init(parsing: text, path: path)
    }

    /// Parses the text of a password file; `path` only names it in errors.
    public init(parsing text: String, path: String = "password file") throws(ConfigurationError) {
        var users: [String: String] = [:]
        var problems: [String] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let place = "\(path) line \(index + 1)"
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 2, !fields[0].isEmpty else {
                problems.append("\(place): expected user:hash")
                continue
            }
            let user = String(fields[0])
            var hash = String(fields[1])
            // Dovecot writes the scheme in front: {SHA512-CRYPT}$6$..., {CRYPT}$2y$...
            if hash.hasPrefix("{"), let close = hash.firstIndex(of: "}") {
                let scheme = hash[hash.index(after: hash.startIndex)..<close].uppercased()
                guard scheme == "CRYPT" || scheme.hasSuffix("-CRYPT") else {
                    problems.append("\(place): user '\(user)': scheme {\(scheme)} is not a crypt(3) hash")
                    continue
                }
                hash = String(hash[hash.index(after: close)...])
            }
            if let problem = Self.problem(with: hash) {
                problems.append("\(place): user '\(user)': \(problem)")
                continue
            }
            if users[user] != nil {
                problems.append("\(place): user '\(user)' appears twice")
                continue
            }
            users[user] = hash
        }
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        self.users = users
    }

    /// Why `hash` cannot be used, or nil when libcrypt accepts it as a modern crypt(3) hash.
    static func problem(with hash: String) -> String? {
        guard hash.hasPrefix("$") else {
            return "not a crypt(3) hash such as $6$... or $y$... (plain text passwords are refused)"
        }
        if hash.hasPrefix("$1$") { return "MD5-crypt ($1$) is too weak; use openssl passwd -6 or mkpasswd" }
        // $id$[params$]salt$hash: a setting without the hash part would never match; say so now.
        if hash.filter({ $0 == "$" }).count < 3 || hash.hasSuffix("$") { return "hash is incomplete" }
        switch crypt_checksalt(hash) {
        case CRYPT_SALT_OK: return nil
        // libxcrypt calls SHA-256-crypt legacy, but it is salted and iterated like $6$, and `openssl passwd -5`
        // writes it; the other legacy methods (DES, MD5, SHA-1, NT) are not.
        case CRYPT_SALT_METHOD_LEGACY where hash.hasPrefix("$5$"): return nil
        case CRYPT_SALT_METHOD_LEGACY, CRYPT_SALT_TOO_CHEAP: return "hash method is too weak; use $6$ or $y$"
        default: return "hash method not supported by this system's libcrypt"
        }
    }

    /// Whether `password` is the password of `user`. Slow on purpose (that is the hash's job): call it off the
    /// event loop. An unknown user costs as much as a known one, so timing does not tell which users exist.
    public func verify(user: String, password: [UInt8]) -> Bool {
        guard let hash = users[user] else {
            _ = CryptHash.compute(password: password, setting: Self.decoyHash)
            return false
        }
        guard let computed = CryptHash.compute(password: password, setting: hash) else { return false }
        return CryptHash.constantTimeEqual(Array(computed.utf8), Array(hash.utf8))
    }

    /// A SHA-512-crypt hash of nothing in particular, hashed for unknown users.
    private static let decoyHash =
        "$6$signetdecoysalt$GL6/ARaHujf6ByKLLsSrnyvNI7En.R/aeVVD8jkqS9qLw/n442vtCh0/ydvxzfz6o5qik4WlsJNfsmlnTgixr/"
}

/// crypt(3) through libxcrypt's reentrant crypt_r.
enum CryptHash {
    /// The hash of `password` with the method, cost and salt of `setting` (a whole stored hash will do), or nil
    /// when libcrypt refuses the setting. A NUL in the password would end it early in C, so it is refused too.
    static func compute(password: [UInt8], setting: String) -> String? {
        guard !password.contains(0) else { return nil }
        // struct crypt_data is about 32 KiB: too large for a thread's stack in every context, so on the heap.
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            UnsafeMutableRawPointer(data).initializeMemory(
                as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
            data.deallocate()
        }
        UnsafeMutableRawPointer(data).initializeMemory(
            as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        let result: String? = (password + [0]).withUnsafeBufferPointer { phrase in
            phrase.withMemoryRebound(to: CChar.self) { phrase in
                guard let output = crypt_r(phrase.baseAddress, setting, data) else { return nil }
                return String(cString: output)
            }
        }
        // On failure libxcrypt returns a string starting with "*" rather than NULL.
        guard let result, !result.hasPrefix("*") else { return nil }
        return result
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
