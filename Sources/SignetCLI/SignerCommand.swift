import ArgumentParser
import Foundation
import Keys
import NIOCore
import NIOPosix
import Relay

#if canImport(Glibc)
    import Glibc
#endif

/// `signet signer`: the signer agent. Reads the key files, gives up root, and answers signing requests (digest in,
/// signature out) on an inherited socket or a Unix socket path. `signet run` starts it with
/// `signing.backend: agent`; in Kubernetes it can run in a container of its own with `--listen`.
public struct SignerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "signer",
        abstract: "Hold the private keys and sign digests for the relay (the signer agent).",
        discussion: """
            signet run starts this itself (signing.backend: agent) on a socketpair. Standalone:
              signet signer --listen /run/signet/signer.sock --user nobody --key main=/keys/main.pem
            """
    )

    @Option(help: "A key as name=path (repeatable); the name is the key's name in signing.keys.")
    var key: [String] = []

    @Option(help: "After reading the keys, switch to this user when running as root.")
    var user: String?

    @Option(help: "Serve the connected socket on this file descriptor (what signet run passes).")
    var socketFd: Int32?

    @Option(help: "Listen on this Unix socket path instead (mode 0660).")
    var listen: String?

    @Option(help: "Signing threads (default: one per core).")
    var threads: Int?

    public init() {}

    /// What `prepareBeforeThreads` did: the keys, or why there are none.
    private nonisolated(unsafe) static var prepared: Result<[String: PrivateKey], CLIError>?

    /// For `signet signer` only: protects key memory, reads the keys and drops root before any thread exists, so
    /// that setuid covers the whole process. Called from `main` with the command line; anything else is left to
    /// the usual parse.
    public static func prepareBeforeThreads(_ arguments: [String]) {
        guard arguments.first == "signer", let command = try? parse(Array(arguments.dropFirst())) else { return }
        prepared = Result { try command.prepare() }.mapError { $0 as? CLIError ?? CLIError("\($0)") }
    }

    private func prepare() throws -> [String: PrivateKey] {
        KeyMemoryProtection.enable()
        let keys = try Self.load(key)
        if let listen { try Self.prepareSocketDirectory(for: listen) }
        if let user { try Self.dropPrivileges(to: user) }
        return keys
    }

    public func run() async throws {
        // Started by a relay: it goes when the relay goes, as the kernel closes the relay's end of the socket
        // however the relay dies. (Not PR_SET_PDEATHSIG: that fires when the spawning *thread* exits, and the
        // relay's pool threads come and go.)
        if socketFd != nil {
            // Ctrl-C and SIGHUP are for the relay, which stops or reloads its agent itself (end of the socket).
            signal(SIGINT, SIG_IGN)
            signal(SIGHUP, SIG_IGN)
        }
        guard (socketFd == nil) != (listen == nil) else { throw CLIError("give exactly one of --socket-fd and --listen") }
        let keys: [String: PrivateKey]
        do {
            // Normally done in main before any thread started; run in-process (tests) it happens here.
            if let prepared = Self.prepared { keys = try prepared.get() } else { keys = try prepare() }
        } catch {
            let reason = "\(error)"
            if let socketFd { SignerAgentServer.reportFatal(reason, to: socketFd) }
            throw CLIError("signer: \(reason)")
        }
        let server = SignerAgentServer(keys: keys, threadCount: threads ?? System.coreCount)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        if let socketFd {
            try await server.serve(connectedSocket: socketFd, group: group)
        } else if let listen {
            let channel = try await server.listen(path: listen, group: group)
            _ = chmod(listen, 0o660)
            FileHandle.standardError.write(Data("signer: listening on \(listen) with \(keys.count) keys\n".utf8))
            try await channel.closeFuture.get()
        }
        try await server.shutdown()
        try await group.shutdownGracefully()
    }

    /// Every key, or one error naming each key that cannot be used and why.
    static func load(_ specifications: [String]) throws -> [String: PrivateKey] {
        var keys: [String: PrivateKey] = [:]
        var problems: [String] = []
        for specification in specifications {
            guard let equals = specification.firstIndex(of: "="), equals != specification.startIndex else {
                problems.append("--key \(specification): expected name=path")
                continue
            }
            let name = String(specification[..<equals])
            let path = String(specification[specification.index(after: equals)...])
            do {
                keys[name] = try PrivateKey(contentsOfFile: path, requirePrivatePermissions: true)
            } catch {
                problems.append("signing.keys.\(name): cannot use key file \(path): \(error)")
            }
        }
        guard problems.isEmpty else { throw CLIError(problems.joined(separator: "\n")) }
        return keys
    }

    /// The socket's folder must exist; the socket itself is made by bind.
    static func prepareSocketDirectory(for path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Root only: the keys are read, so the rest of the agent's life needs no privilege. Groups first, then gid,
    /// then uid; and regaining root must fail afterwards.
    static func dropPrivileges(to user: String) throws {
        guard getuid() == 0 || geteuid() == 0 else { return }
        guard let entry = getpwnam(user) else { throw CLIError("no user named \(user) to run the signer agent as") }
        let uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        guard setgroups(0, nil) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw CLIError("cannot switch to user \(user): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw CLIError("switched to \(user) but could become root again") }
        // setuid makes the process dumpable again; key memory stays out of core dumps and same-user ptrace.
        KeyMemoryProtection.markUndumpable()
    }
}
