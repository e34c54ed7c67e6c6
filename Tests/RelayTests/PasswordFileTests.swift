import Foundation
import Testing

@testable import Relay

@Suite("AUTH: password file, crypt(3) verification, SASL PLAIN")
struct PasswordFileTests {
    /// A hash made by `openssl passwd`, not by Signet.
    static func opensslHash(_ password: String, scheme: String = "-6") throws -> String {
        let hash = try output("/usr/bin/openssl", ["passwd", scheme, password]).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try #require(hash.hasPrefix("$"), "openssl passwd \(scheme): \(hash)")
        return hash
    }

    @Test func verifiesSHA512AndSHA256CryptFromOpenSSL() throws {
        let sha512 = try Self.opensslHash("correct horse")
        let sha256 = try Self.opensslHash("battery staple", scheme: "-5")
        let file = try PasswordFile(
            parsing: """
                # submission users
                alice:\(sha512)

                bob:\(sha256)
                """)
        #expect(file.users.count == 2)
        #expect(file.verify(user: "alice", password: Array("correct horse".utf8)))
        #expect(!file.verify(user: "alice", password: Array("correct horse ".utf8)))
        #expect(!file.verify(user: "alice", password: Array("battery staple".utf8)))
        #expect(file.verify(user: "bob", password: Array("battery staple".utf8)))
        #expect(!file.verify(user: "Bob", password: Array("battery staple".utf8)), "user names are case-sensitive")
        #expect(!file.verify(user: "carol", password: Array("correct horse".utf8)))
        #expect(!file.verify(user: "alice", password: Array("correct horse".utf8) + [0]))
    }

    /// yescrypt ($y$) is what Debian's mkpasswd and passwd write by default; libxcrypt verifies it.
    @Test func verifiesYescryptWhenLibcryptHasIt() throws {
        // Hash made with libxcrypt itself (crypt_gensalt "$y$" + crypt) for the password "yes".
        guard let hash = CryptHash.compute(password: Array("yes".utf8), setting: "$y$j9T$saltsaltsaltsaltsalt$") else {
            return  // this libcrypt has no yescrypt: the file parser then refuses such lines (tested below)
        }
        let file = try PasswordFile(parsing: "dave:\(hash)\n")
        #expect(file.verify(user: "dave", password: Array("yes".utf8)))
        #expect(!file.verify(user: "dave", password: Array("no".utf8)))
    }

    @Test func acceptsDovecotSchemePrefixAndExtraFields() throws {
        let hash = try Self.opensslHash("pw")
        let file = try PasswordFile(parsing: "erin:{SHA512-CRYPT}\(hash):1000:1000::/home/erin::\r\n")
        #expect(file.verify(user: "erin", password: Array("pw".utf8)))
    }

    @Test(arguments: [
        ("frank:secret", "not a crypt(3) hash"),
        ("frank:{PLAIN}secret", "scheme {PLAIN}"),
        ("frank:$1$abc$4Rv2rq0E9vNwWSx2kV3wM/", "MD5-crypt"),
        ("frank:abJnggxhB/yWI", "not a crypt(3) hash"),
        ("frank:$6$", "hash is incomplete"),
        ("frank:$6$saltonly$", "hash is incomplete"),
        ("frank:$9$salt$nonsense", "hash method not supported"),
        ("just-a-name", "expected user:hash"),
        (":$6$abc$def", "expected user:hash"),
    ])
    func refusesUnusableLines(line: String, problem: String) {
        do {
            _ = try PasswordFile(parsing: line + "\n", path: "passwd")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.problems.count == 1)
            #expect(error.problems.first?.hasPrefix("passwd line 1: ") == true, "\(error.problems)")
            #expect(error.problems.first?.contains(problem) == true, "\(error.problems)")
        }
    }

    @Test func refusesDuplicateUsers() throws {
        let hash = try Self.opensslHash("x")
        #expect(throws: ConfigurationError.self) { try PasswordFile(parsing: "a:\(hash)\na:\(hash)\n") }
    }

    @Test func readsAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("signet-passwd-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "gina:\(try Self.opensslHash("pw"))\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try PasswordFile(contentsOf: path).verify(user: "gina", password: Array("pw".utf8)))
        #expect(throws: ConfigurationError.self) { try PasswordFile(contentsOf: path + ".missing") }
    }

    @Test func saslPlain() throws {
        func encoded(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        #expect(try SASLPlain(base64: encoded("\0alice\0pw")) == SASLPlain(user: "alice", password: Array("pw".utf8)))
        #expect(try SASLPlain(base64: encoded("alice\0alice\0p\u{e9}")).password == Array("p\u{e9}".utf8))
        #expect(throws: SASLPlain.Failure.otherAuthorizationIdentity) {
            try SASLPlain(base64: encoded("bob\0alice\0pw"))
        }
        for bad in ["not base64!", "=", encoded("alice\0pw"), encoded("\0\0pw"), encoded("\0a\0p\0q")] {
            #expect(throws: SASLPlain.Failure.malformed, "\(bad)") { try SASLPlain(base64: bad) }
        }
    }
}
