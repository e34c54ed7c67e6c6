import Foundation
import Testing

@testable import Keys

/// Key files others can read or change are refused when the caller asks for private ones (the relay, the agent).
@Suite("Key file hygiene and memory protection")
struct KeyHygieneTests {
    static func keyFile(_ directory: TemporaryDirectory, mode: mode_t) throws -> String {
        let pem = try PrivateKey.generateEd25519().pemRepresentation()
        let file = try directory.write("k-\(String(mode, radix: 8)).pem", Array(pem.utf8))
        #expect(chmod(file, mode) == 0)
        return file
    }

    @Test("world-readable, world-writable and group-writable key files are refused, naming path and reason")
    func permissions() throws {
        let directory = try TemporaryDirectory()
        for (mode, reason) in [
            (mode_t(0o644), "readable by everyone"), (0o604, "readable by everyone"), (0o602, "writable by everyone"),
            (0o620, "writable by its group"),
        ] {
            let file = try Self.keyFile(directory, mode: mode)
            #expect(throws: KeysError.self) { try PrivateKey(contentsOfFile: file, requirePrivatePermissions: true) }
            do {
                _ = try PrivateKey(contentsOfFile: file, requirePrivatePermissions: true)
            } catch let error as KeysError {
                #expect(error.code == .insecureKeyFile)
                #expect(error.reason.contains(file) && error.reason.contains(reason), "\(error)")
                #expect(error.reason.contains("chmod 600"))
            }
            // Without the requirement (signet sign on a workstation) the same file loads.
            _ = try PrivateKey(contentsOfFile: file)
        }
        for mode: mode_t in [0o600, 0o400, 0o640] {
            _ = try PrivateKey(contentsOfFile: try Self.keyFile(directory, mode: mode), requirePrivatePermissions: true)
        }
    }

    @Test("a directory is not a key file")
    func notRegular() throws {
        let directory = try TemporaryDirectory()
        #expect(chmod(directory.url.path, 0o700) == 0)
        #expect(throws: KeysError.self) {
            try PrivateKey(contentsOfFile: directory.url.path, requirePrivatePermissions: true)
        }
    }

    @Test("after enable(), key-file buffers live in the locked secure heap and the process is not dumpable")
    func protection() throws {
        let status = KeyMemoryProtection.enable()
        #expect(status.secureHeap)
        #if os(Linux)
            #expect(status.undumpable)
        #endif
        let buffer = SecureBuffer(capacity: 64)
        #expect(KeyMemoryProtection.isSecure(UnsafeRawPointer(buffer.storage.baseAddress!)))
        buffer.grow(to: 4096)
        #expect(KeyMemoryProtection.isSecure(UnsafeRawPointer(buffer.storage.baseAddress!)))
        // Keys still load and sign with the secure heap in place.
        let directory = try TemporaryDirectory()
        let key = try PrivateKey(contentsOfFile: try Self.keyFile(directory, mode: 0o600), requirePrivatePermissions: true)
        let digest = [UInt8](repeating: 7, count: 32)
        #expect(key.publicKey.isValidSignature(try key.signature(forSHA256Digest: digest), forSHA256Digest: digest))
    }
}
