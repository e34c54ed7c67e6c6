import Foundation

/// Runs the real programs the interop tests compare against.
enum Tools {
    struct Output {
        var status: Int32
        var stdout: Data
        var stderr: String
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs a program to completion; a test never waits more than `timeout` seconds for one.
    static func run(_ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 300) throws
        -> Output
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let outPipe = Pipe()
        let errPipe = Pipe()
        let inPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        process.standardInput = inPipe
        try process.run()
        // Read both pipes while the child runs so a full pipe cannot deadlock it.
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data()
        nonisolated(unsafe) var err = Data()
        group.enter()
        DispatchQueue.global().async {
            out = outPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        group.enter()
        DispatchQueue.global().async {
            err = errPipe.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        if let stdin { inPipe.fileHandleForWriting.write(stdin) }
        try inPipe.fileHandleForWriting.close()
        if group.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            throw ToolError("\(executable) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: out, stderr: String(decoding: err, as: UTF8.self))
    }

    /// The package root, found from this file's path so the tests run from any directory.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let interopScripts = packageRoot.appendingPathComponent("Tests/Interop")

    /// The `signet` binary under test: $SIGNET_BIN (set by `make test`), else next to the test bundle.
    static var signet: String {
        get throws {
            if let path = ProcessInfo.processInfo.environment["SIGNET_BIN"], FileManager.default.isExecutableFile(atPath: path) {
                return path
            }
            var candidates: [URL] = []
            if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
            candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
            for directory in candidates {
                for probe in [directory, directory.deletingLastPathComponent(), directory.deletingLastPathComponent().deletingLastPathComponent()] {
                    let path = probe.appendingPathComponent("signet").path
                    if FileManager.default.isExecutableFile(atPath: path) { return path }
                }
            }
            throw ToolError("cannot find the signet binary: run `make test` or set SIGNET_BIN")
        }
    }

    static func makeTemporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("signet-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// SubjectPublicKeyInfo of a PEM private key, base64, as computed by the openssl command (not by Signet).
    static func publicKeyBase64(privateKeyPEM path: String) throws -> String {
        let output = try run("/usr/bin/openssl", ["pkey", "-in", path, "-pubout", "-outform", "DER"])
        guard output.status == 0 else { throw ToolError("openssl pkey failed: \(output.stderr)") }
        return output.stdout.base64EncodedString()
    }
}

/// One line of a verifier's report: file, d=, s=, a=, result, detail.
struct VerifierResult: Hashable {
    var file: String
    var domain: String
    var selector: String
    var algorithm: String
    var result: String
    var detail: String

    static func parse(_ text: String) -> [VerifierResult] {
        text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 5 else { return nil }
            return VerifierResult(
                file: parts[0], domain: parts[1], selector: parts[2], algorithm: parts[3], result: parts[4],
                detail: parts.count > 5 ? parts[5] : ""
            )
        }
    }
}

struct ToolError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
