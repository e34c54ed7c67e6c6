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
    static func run(
        _ executable: String, _ arguments: [String], stdin: Data? = nil, timeout: TimeInterval = 300
    ) throws
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
            if let path = ProcessInfo.processInfo.environment["SIGNET_BIN"],
                FileManager.default.isExecutableFile(atPath: path)
            {
                return path
            }
            var candidates: [URL] = []
            if let executable = Bundle.main.executableURL { candidates.append(executable.deletingLastPathComponent()) }
            candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
            for directory in candidates {
                for probe in [
                    directory, directory.deletingLastPathComponent(),
                    directory.deletingLastPathComponent().deletingLastPathComponent(),
                ] {
                    let path = probe.appendingPathComponent("signet").path
                    if FileManager.default.isExecutableFile(atPath: path) { return path }
                }
            }
            throw ToolError("cannot find the signet binary: run `make test` or set SIGNET_BIN")
        }
    }

    /// A TCP connection to 127.0.0.1:`port`, with `timeout` seconds on every read and write when given; the
    /// caller closes the descriptor. `from`: the local address to connect from (another loopback address).
    static func connectToLoopback(port: Int, timeout: Double? = nil, from: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ToolError("socket() failed: errno \(errno)") }
        if let from {
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr.s_addr = inet_addr(from)
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard bound == 0 else {
                let error = errno
                close(fd)
                throw ToolError("bind to \(from) failed: errno \(error)")
            }
        }
        if let timeout {
            var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            let error = errno
            close(fd)
            throw ToolError("connect to 127.0.0.1:\(port) failed: errno \(error)")
        }
        return fd
    }

    /// Raises this process's soft descriptor limit to `wanted` (at most the hard limit); a relay the test starts
    /// inherits it. Returns the limit now in force, for the caller to require what it needs.
    static func raiseDescriptorLimit(to wanted: rlim_t) -> rlimit {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(limit.rlim_max, wanted)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return limit
    }

    /// A UDP socket on 127.0.0.1 that is bound but never read: a DNS server that never answers. Returns the
    /// descriptor (the caller closes it) and its port.
    static func silentUDPSocket() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard fd >= 0, bound else {
            let error = errno
            close(fd)
            throw ToolError("cannot bind a UDP socket: errno \(error)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
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
