// Signatures per second through each signing backend on this machine, for `make bench` and docs/performance.md:
//   in-process: the relay's way without an agent, a NIOThreadPool of one thread per core;
//   agent:      `signet signer` as a child on a socketpair, requests over the binary protocol, `inflight` at once;
//   pkcs11:     the same key imported into a SoftHSM2 token made for the run (when softhsm2 is installed), C_Sign on
//               the same kind of thread pool, one PKCS#11 session per thread.
// Usage: SignerBenchmarks SIGNET_BINARY [seconds] [rsa|ed25519]
import Foundation
import Keys
import Logging
import NIOCore
import NIOPosix
import Relay

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: SignerBenchmarks SIGNET_BINARY [seconds] [rsa|ed25519]\n".utf8))
    exit(2)
}
let signet = arguments[1]
let seconds = arguments.count > 2 ? Double(arguments[2]) ?? 5 : 5
let algorithm = arguments.count > 3 && arguments[3] == "ed25519" ? KeyAlgorithm.ed25519 : .rsa
let cores = System.coreCount
let inflight = 64

let key = algorithm == .rsa ? try PrivateKey.generateRSA(bits: 2048) : try PrivateKey.generateEd25519()
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("signer-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let keyFile = directory.appendingPathComponent("key.pem").path
_ = FileManager.default.createFile(
    atPath: keyFile, contents: Data(try key.pemRepresentation().utf8), attributes: [.posixPermissions: 0o600])
let digests = (0..<256).map { index in (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index) } }

/// Runs `sign` from `inflight` concurrent tasks for `seconds`; signatures per second.
func measure(_ sign: @escaping @Sendable ([UInt8]) async throws -> [UInt8]) async throws -> Double {
    let start = ContinuousClock.now
    let end = start + .milliseconds(Int(seconds * 1000))
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for worker in 0..<inflight {
            group.addTask {
                var count = 0
                while ContinuousClock.now < end {
                    _ = try await sign(digests[(worker + count) % digests.count])
                    count += 1
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = start.duration(to: .now)
    return Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

enum BenchmarkError: Error { case badSignature }

let pool = NIOThreadPool(numberOfThreads: cores)
pool.start()
let inProcess = try await measure { digest in
    try await pool.runIfActive { try key.signature(forSHA256Digest: digest) }
}
try await pool.shutdownGracefully()

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let supervisor = SignerAgentSupervisor(
    group: group, timeout: .seconds(30), metrics: RelayMetrics(),
    logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
try await supervisor.start(.init(executable: signet, keyFiles: ["k": keyFile], user: nil))
let agent = try await measure { digest in
    try await supervisor.sign(keyID: "k", algorithm: algorithm, digest: digest)
}
// What the relay's SignerPool does: every agent signature is verified before use.
let publicKey = key.publicKey
let agentVerified = try await measure { digest in
    let signature = try await supervisor.sign(keyID: "k", algorithm: algorithm, digest: digest)
    guard publicKey.isValidSignature(signature, forSHA256Digest: digest) else { throw BenchmarkError.badSignature }
    return signature
}
try await group.shutdownGracefully()

/// The key in a fresh SoftHSM2 token in `directory`, or nil (with the reason on stderr) without softhsm2.
func tokenKey() throws -> PKCS11Key? {
    let module = "/usr/lib/softhsm/libsofthsm2.so"
    let tool = "/usr/bin/softhsm2-util"
    guard FileManager.default.fileExists(atPath: module), FileManager.default.fileExists(atPath: tool) else {
        FileHandle.standardError.write(Data("pkcs11: skipped, softhsm2 is not installed\n".utf8))
        return nil
    }
    let tokens = directory.appendingPathComponent("tokens")
    try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
    let config = directory.appendingPathComponent("softhsm2.conf").path
    try "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\n"
        .write(toFile: config, atomically: true, encoding: .utf8)
    // Read by the module when it is loaded, which happens below, after this.
    setenv("SOFTHSM2_CONF", config, 1)
    let pin = "1234"
    for arguments in [
        ["--init-token", "--free", "--label", "bench", "--pin", pin, "--so-pin", "5678"],
        ["--import", keyFile, "--token", "bench", "--label", "k", "--id", "01", "--pin", pin],
    ] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchmarkError.badSignature }
    }
    setenv("SIGNET_BENCH_PIN", pin, 1)
    return try PKCS11Key(
        PKCS11KeyLocation(
            module: module, token: .label("bench"), keyLabel: "k", keyID: nil, pin: .environment("SIGNET_BENCH_PIN")))
}

var tokenResults: (plain: Double, checked: Double)?
if let token = try tokenKey() {
    let tokenPool = NIOThreadPool(numberOfThreads: cores)
    tokenPool.start()
    let plain = try await measure { digest in
        try await tokenPool.runIfActive { try token.signature(forSHA256Digest: digest) }
    }
    // What the relay's SignerPool does with a token's signature: verify it before use.
    let checked = try await measure { digest in
        try await tokenPool.runIfActive {
            let signature = try token.signature(forSHA256Digest: digest)
            guard publicKey.isValidSignature(signature, forSHA256Digest: digest) else {
                throw BenchmarkError.badSignature
            }
            return signature
        }
    }
    try await tokenPool.shutdownGracefully()
    tokenResults = (plain, checked)
}

let name = algorithm == .rsa ? "RSA-2048" : "Ed25519"
print("\(name) signatures/s on \(cores) cores, \(inflight) in flight, \(seconds) s each:")
print(String(format: "  in-process  %8.0f", inProcess))
print(String(format: "  agent       %8.0f  (%.1f%% of in-process)", agent, agent / inProcess * 100))
print(
    String(
        format: "  agent+check %8.0f  (%.1f%% of in-process; the relay's path)", agentVerified,
        agentVerified / inProcess * 100))
if let tokenResults {
    print(
        String(
            format: "  pkcs11      %8.0f  (%.1f%% of in-process; SoftHSM2)", tokenResults.plain,
            tokenResults.plain / inProcess * 100))
    print(
        String(
            format: "  pkcs11+check%8.0f  (%.1f%% of in-process; the relay's path)", tokenResults.checked,
            tokenResults.checked / inProcess * 100))
}
