import Foundation
import Keys
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Starts `signet signer` as a child process on a socketpair, restarts it when it dies (with backoff, counted in
/// `signet_signer_agent_restarts_total`) and carries the relay's signing requests to it.
///
/// While no agent is connected, requests fail at once with `SignerAgentError`, and requests in flight when it dies
/// fail too: the relay answers 451 4.3.0 and the client retries. A ServiceLifecycle service: list it before the
/// relay server so that it stops after the server has drained.
public final class SignerAgentSupervisor: Service, Sendable {
    /// How to start an agent, or where to find one.
    public struct Launch: Sendable, Equatable {
        /// An agent that runs on its own (`signet signer --listen`, e.g. a container sharing a volume): the relay
        /// connects to this Unix socket instead of starting a child, and reconnects when it closes.
        public var socketPath: String?
        /// The `signet` executable (`/proc/self/exe` for the running one).
        public var executable: String
        /// Key name → PEM file; the names are what the relay asks for.
        public var keyFiles: [String: String]
        /// The account the agent switches to after reading the keys when started as root; nil stays.
        public var user: String?
        public init(executable: String, keyFiles: [String: String], user: String?, socketPath: String? = nil) {
            self.socketPath = socketPath
            self.executable = executable
            self.keyFiles = keyFiles
            self.user = user
        }

        var arguments: [String] {
            var arguments = [executable, "signer", "--socket-fd", "0"]
            if let user { arguments += ["--user", user] }
            for (name, path) in keyFiles.sorted(by: { $0.key < $1.key }) { arguments += ["--key", "\(name)=\(path)"] }
            return arguments
        }
    }

    /// One running agent: its process and the relay's end of its socket.
    public final class Agent: Sendable {
        /// The child's process id; nil for an agent the relay did not start.
        let pid: pid_t?
        let connection: SignerAgentConnection
        let launch: Launch
        /// What the agent reported it holds.
        public let keys: [SignerAgentProtocol.KeyDescription]
        let started: ContinuousClock.Instant

        init(pid: pid_t?, connection: SignerAgentConnection, launch: Launch, keys: [SignerAgentProtocol.KeyDescription]) {
            self.pid = pid
            self.connection = connection
            self.launch = launch
            self.keys = keys
            self.started = .now
        }
    }

    private struct State {
        var current: Agent?
        var stopping = false
    }

    private let state = NIOLockedValueBox(State())
    private let group: any EventLoopGroup
    private let timeout: TimeAmount
    private let metrics: RelayMetrics
    private let logger: Logger

    /// `timeout` bounds each signing request (and an agent's start).
    public init(group: any EventLoopGroup, timeout: Duration, metrics: RelayMetrics, logger: Logger) {
        self.group = group
        self.timeout = TimeAmount(timeout)
        self.metrics = metrics
        self.logger = logger
    }

    /// The keys of the agent in service (empty before `start`).
    public var keys: [SignerAgentProtocol.KeyDescription] { state.withLockedValue { $0.current?.keys ?? [] } }

    /// Whether an agent is in service and connected.
    public var isConnected: Bool { state.withLockedValue { $0.current?.connection.isActive ?? false } }

    /// The process id of the agent in service (for tests and logs).
    public var agentPID: Int32? { state.withLockedValue { $0.current?.pid.map { Int32($0) } } }

    /// Starts the first agent; throws (with the agent's reason, naming the key) when it cannot start.
    public func start(_ launch: Launch) async throws {
        let agent = try await prepare(launch)
        activate(agent)
    }

    /// Starts an agent for `launch` without putting it in service: a reload first builds its signing table from
    /// the new agent's keys, then `activate`s it, or `discard`s it when the table is refused.
    public func prepare(_ launch: Launch) async throws -> Agent {
        if let path = launch.socketPath {
            // An agent in its own container may start a moment after the relay (Kubernetes starts sidecars in
            // order but does not wait for the socket): keep trying for the agent timeout before giving up.
            let deadline = ContinuousClock.now + .nanoseconds(timeout.nanoseconds)
            var attempt: SignerAgentConnection?
            while attempt == nil {
                do {
                    attempt = try await SignerAgentConnection.connect(path: path, group: group)
                } catch {
                    guard ContinuousClock.now < deadline else { throw error }
                    logger.info("waiting for the signer agent", metadata: ["socket": "\(path)", "error": "\(error)"])
                    try await Task.sleep(for: .milliseconds(250))
                }
            }
            // Safe to force unwrap: the loop ends only with a connection.
            let connection = attempt!
            do {
                let keys = try await connection.keys(timeout: timeout)
                logger.info("connected to the signer agent", metadata: ["socket": "\(path)", "keys": "\(keys.map(\.id))"])
                return Agent(pid: nil, connection: connection, launch: launch, keys: keys)
            } catch {
                connection.close()
                throw error
            }
        }
        let (pid, socket) = try Self.spawn(launch)
        let connection: SignerAgentConnection
        do {
            connection = try await SignerAgentConnection.connect(socket: socket, group: group)
        } catch {
            close(socket)
            Self.reap(pid, logger: logger)
            throw error
        }
        Self.reapWhenClosed(pid, connection, logger: logger)
        do {
            let keys = try await connection.keys(timeout: timeout)
            logger.info("signer agent started", metadata: ["pid": "\(pid)", "keys": "\(keys.map(\.id))"])
            return Agent(pid: pid, connection: connection, launch: launch, keys: keys)
        } catch {
            connection.close()
            // The agent prints its own reason as it exits; ours must not interleave with it on the shared stderr.
            await Self.waitForExit(pid, seconds: 2)
            throw error
        }
    }

    /// Puts `agent` in service. The one it replaces gets the request timeout to finish what it was asked, then
    /// its socket is closed and it exits.
    public func activate(_ agent: Agent) {
        let old = state.withLockedValue { state in
            defer { state.current = agent }
            return state.current
        }
        if let old, old !== agent {
            old.connection.channel.eventLoop.scheduleTask(in: timeout) { old.connection.close() }
        }
    }

    /// Stops an agent that was prepared but not put in service.
    public func discard(_ agent: Agent) {
        agent.connection.close()
    }

    /// A signature from the agent in service: RSASSA-PKCS1-v1_5 or PureEdDSA over a SHA-256 digest.
    public func sign(keyID: String, algorithm: KeyAlgorithm, digest: [UInt8]) async throws -> [UInt8] {
        guard let agent = state.withLockedValue({ $0.current }), agent.connection.isActive else {
            throw SignerAgentError(description: "the signer agent is restarting")
        }
        return try await agent.connection.sign(keyID: keyID, algorithm: algorithm, digest: digest, timeout: timeout)
    }

    /// Supervises: waits for the agent in service to die and starts another, with backoff (0.1 s doubling to
    /// 5 s; back to 0.1 s after one stayed up for a minute). Ends on graceful shutdown, closing the agent.
    public func run() async throws {
        var backoff = Duration.milliseconds(100)
        while true {
            guard let agent = state.withLockedValue({ $0.stopping ? nil : $0.current }) else { break }
            await withGracefulShutdownHandler {
                await withTaskCancellationHandler {
                    _ = try? await agent.connection.channel.closeFuture.get()
                } onCancel: {
                    self.stop()
                }
            } onGracefulShutdown: {
                self.stop()
            }
            let (stopping, replaced) = state.withLockedValue { ($0.stopping, $0.current !== agent) }
            if stopping { break }
            if replaced { continue }
            metrics.signerAgentRestarted()
            if agent.started.duration(to: .now) > .seconds(60) { backoff = .milliseconds(100) }
            logger.error(
                "signer agent died or disconnected; restarting",
                metadata: ["pid": "\(agent.pid.map { "\($0)" } ?? "external")", "backoff": "\(backoff)"])
            while !state.withLockedValue({ $0.stopping }) {
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
                if state.withLockedValue({ $0.stopping }) { break }
                do {
                    let fresh = try await prepare(agent.launch)
                    if fresh.keys != agent.keys {
                        logger.warning("the restarted signer agent holds different keys (key files changed?); signatures that do not match the table are refused until a reload")
                    }
                    activate(fresh)
                    break
                } catch {
                    logger.error("signer agent restart failed", metadata: ["error": "\(error)"])
                }
            }
        }
        stop()
    }

    private func stop() {
        let current = state.withLockedValue { state in
            state.stopping = true
            return state.current
        }
        current?.connection.close()
    }

    // MARK: Processes

    /// Starts the agent on a fresh socketpair; its end becomes the child's standard input.
    static func spawn(_ launch: Launch) throws -> (pid_t, Int32) {
        var fds: [Int32] = [-1, -1]
        #if canImport(Glibc)
            let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
            let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw SignerAgentError(description: "socketpair: \(String(cString: strerror(errno)))")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copy, so only this end reaches the agent.
        posix_spawn_file_actions_adddup2(&actions, fds[1], 0)
        // A clean signal state: the relay's threads block signals (ServiceLifecycle, test runners), and a child
        // inherits both the mask and ignored dispositions.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let arguments = launch.arguments
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid = pid_t()
        let result = posix_spawn(&pid, launch.executable, &actions, &attributes, argv, environ)
        close(fds[1])
        guard result == 0 else {
            close(fds[0])
            throw SignerAgentError(
                description: "cannot start the signer agent \(launch.executable): \(String(cString: strerror(result)))")
        }
        return (pid, fds[0])
    }

    /// Reaps the agent once its socket is closed (it exits on end of file, or has died).
    private static func reapWhenClosed(_ pid: pid_t, _ connection: SignerAgentConnection, logger: Logger) {
        connection.channel.closeFuture.whenComplete { _ in reap(pid, logger: logger) }
    }

    /// Polls (bounded) until `pid` has exited; `reapWhenClosed`'s thread may reap it first (then ECHILD).
    static func waitForExit(_ pid: pid_t, seconds: Double) async {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// waitpid on a thread of its own: it returns as soon as the agent has exited, which follows its socket's close.
    private static func reap(_ pid: pid_t, logger: Logger) {
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let signal = status & 0x7f
            let described = signal == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(signal)"
            logger.info("signer agent exited", metadata: ["pid": "\(pid)", "how": "\(described)"])
        }
    }
}
