import Foundation
import Keys
import Testing

/// The team's shared test data (RFC 8463 keys and records), in ../shared/testdata beside the repository.
enum TestData {
    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["SIGNET_TESTDATA"] {
            return URL(fileURLWithPath: override)
        }
        // Resolve symlinks: dev packages link Tests/KeysTests into the repository.
        let repository = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let shared = repository.deletingLastPathComponent().appendingPathComponent("shared/testdata")
        // A clone without the team folder beside it uses the copy of the RFC's public test keys.
        if FileManager.default.fileExists(atPath: shared.path) { return shared }
        return repository.appendingPathComponent("Tests/Fixtures")
    }()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func text(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
}

/// A fresh directory for test keys, removed when the value is released.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("keys-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let file = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return file
    }

    func read(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path(name)))) }
}

/// The `openssl` command, used as an implementation independent of our Swift code.
enum OpenSSLTool {
    static let path = "/usr/bin/openssl"
    static let isAvailable = FileManager.default.isExecutableFile(atPath: path)

    struct Failure: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var stderr: String
        var description: String { "openssl \(arguments.joined(separator: " ")) exited \(status): \(stderr)" }
    }

    /// Runs openssl and returns its standard output; throws when it exits non-zero.
    @discardableResult
    static func run(_ arguments: [String]) throws -> Data {
        let result = try status(arguments)
        guard result.status == 0 else {
            throw Failure(arguments: arguments, status: result.status, stderr: result.stderr)
        }
        return result.stdout
    }

    /// Runs openssl and returns its exit status and output, whatever the status.
    static func status(_ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output, String(decoding: errors, as: UTF8.self))
    }

    /// Generates a private key with `openssl genpkey` into `file` (PKCS#8 PEM).
    static func generateKey(_ file: String, algorithm: String, options: [String] = []) throws {
        try run(["genpkey", "-algorithm", algorithm] + options.flatMap { ["-pkeyopt", $0] } + ["-out", file])
    }
}

func base64(_ text: String) throws -> [UInt8] {
    try #require(Data(base64Encoded: text)).map { $0 }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

/// Runs `body`, expects a `KeysError` with `code`, and returns it for further checks.
@discardableResult
func expectKeysError(
    _ code: KeysError.Code,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) -> KeysError? {
    do {
        try body()
        Issue.record("expected KeysError \(code), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as KeysError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected KeysError \(code), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A reproducible pseudo-random generator (SplitMix64), so a failing split can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
