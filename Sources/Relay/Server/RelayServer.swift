import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPProtocol
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Listens for SMTP and runs one `InboundSession` per connection; a ServiceLifecycle service, so SIGTERM stops
/// accepting and lets transactions in flight finish (for at most `timeouts.shutdown_grace` seconds).
///
/// `reload(_:)` swaps the configuration for new connections; sessions already running keep the one they began with,
/// so a reload never drops a connection or changes the rules in the middle of a transaction.
public final class RelayServer: Service, Sendable {
    private let current: NIOLockedValueBox<RelayContext>
    private let group: any EventLoopGroup
    private let signerPool: SignerPool
    private let draining = NIOLockedValueBox(false)
    private let logger: Logger
    private let active = NIOLockedValueBox<[ObjectIdentifier: (channel: any Channel, drain: SessionDrain)]>([:])
    /// Open connections per client IP address, for `limits.max_connections_per_client`.
    private let perClient = NIOLockedValueBox<[String: Int]>([:])
    private let boundAddresses = NIOLockedValueBox<[SocketAddress]>([])
    private let readyPromise: NIOLockedValueBox<[CheckedContinuation<[SocketAddress], Never>]> = NIOLockedValueBox([])

    /// The metrics of this server; they survive reloads.
    public let metrics: RelayMetrics
    /// SRS counts, feeding `metrics`; they survive reloads too.
    public let srsStatistics: SRSStatistics

    /// A server for `configuration`; keys are loaded and checked here, so a bad key fails before listening.
    /// With `signerAgent` (already started) the signing table is built from the agent's public keys and every
    /// signature is made by the agent; this process never reads a key file.
    public init(
        configuration: RelayConfiguration, group: any EventLoopGroup, logger: Logger,
        metrics: RelayMetrics = RelayMetrics(), signerAgent: SignerAgentSupervisor? = nil
    ) throws {
        self.group = group
        self.logger = logger
        self.metrics = metrics
        self.srsStatistics = SRSStatistics(metrics: metrics)
        self.signerPool = SignerPool(
            threadCount: configuration.threads.signerCount(cores: System.coreCount), metrics: metrics,
            agent: signerAgent)
        let context = try Self.makeContext(
            configuration, agentKeys: signerAgent?.keys, group: group, signerPool: signerPool, logger: logger,
            metrics: metrics, srsStatistics: srsStatistics, capabilities: NextHopCapabilityCache())
        self.current = NIOLockedValueBox(context)
    }

    private static func makeContext(
        _ configuration: RelayConfiguration, agentKeys: [SignerAgentProtocol.KeyDescription]?,
        group: any EventLoopGroup, signerPool: SignerPool, logger: Logger,
        metrics: RelayMetrics, srsStatistics: SRSStatistics, capabilities: NextHopCapabilityCache
    ) throws -> RelayContext {
        let table =
            try agentKeys.map { try SigningTable(configuration.signing, agentKeys: $0) }
            ?? SigningTable(configuration.signing)
        let nextHop: any NextHop
        let security = try RelaySecurity(configuration: configuration)
        if let address = configuration.nextHop {
            nextHop = SMTPNextHop(
                address: address, hostname: configuration.hostname, group: group, timeouts: configuration.timeouts,
                tls: try NextHopTLSPolicy(configuration.nextHopTLS, logger: logger),
                forwardClientIdentity: configuration.forwardClientIdentity, logger: logger)
        } else {
            nextHop = try CaptureNextHop(directory: configuration.effectiveCaptureDirectory)
        }
        metrics.setKeyExpiries(
            configuration.signing.keys.values.compactMap { key in key.expires.map { (key.domain, key.selector, $0) } })
        let health = NextHopHealth()
        let sealing = try SealingPolicy(configuration) { name, options in
            try table.sealer(forKey: name, options: options)
        }
        var authenticator: MessageAuthenticator?
        if configuration.authentication.addResults || !sealing.isEmpty {
            authenticator = MessageAuthenticator(
                resolver: try RelayResolver.make(configuration.dns), settings: configuration.authentication,
                hostname: configuration.hostname, sealing: sealing)
        }
        var monitored: any NextHop = MonitoredNextHop(inner: nextHop, health: health, metrics: metrics)
        if configuration.nextHop != nil, configuration.timeouts.nextHopIdle > 0,
            configuration.limits.maxIdleNextHopConnections > 0
        {
            monitored = NextHopConnectionCache(
                inner: monitored,
                limits: .init(
                    idleSeconds: configuration.timeouts.nextHopIdle, reuseSeconds: configuration.timeouts.nextHopReuse,
                    maxIdle: configuration.limits.maxIdleNextHopConnections),
                metrics: metrics)
        }
        return RelayContext(
            configuration: configuration,
            signingTable: table,
            signerPool: signerPool,
            nextHop: monitored,
            nextHopCapabilities: capabilities,
            logger: logger,
            metrics: metrics,
            nextHopHealth: health,
            security: security,
            srs: try SRSRewriter(configuration.srs, statistics: srsStatistics),
            authenticator: authenticator
        )
    }

    /// Receive buffers of a client connection: a fixed 8 KiB. NIO's default (adaptive, 2 KiB growing in one step
    /// to 32 and then 64 KiB after full reads) left each connection holding pooled 32-64 KiB buffers for its whole
    /// life, and a small message held as slices kept all of one alive until sent: at 1000 connections that was
    /// about 30 MiB of the relay's peak RSS. 8 KiB takes a typical message and its pipelined commands in one read;
    /// a large one simply takes more reads. (An adaptive 1-8 KiB saved 6 MiB at 1000 idle connections but cost 4
    /// MiB more at 1000 busy ones: small first reads each leave a buffer in the pool.)
    static let clientReceiveBuffers = FixedSizeRecvByteBufferAllocator(capacity: 8192)

    /// The configuration new connections get.
    public var configuration: RelayConfiguration { current.withLockedValue { $0.configuration } }

    /// Applies `configuration` to connections accepted from now on, after loading every key it names. Throws, and
    /// keeps the running configuration, when a key cannot be loaded. Listen addresses change only on restart.
    /// With a signer agent, `agentKeys` are the keys of the agent that will sign for the new configuration.
    public func reload(
        _ configuration: RelayConfiguration, agentKeys: [SignerAgentProtocol.KeyDescription]? = nil
    ) throws {
        let old = current.withLockedValue { $0 }
        // What we learnt of the next hop holds only while it is the same next hop.
        let capabilities =
            old.configuration.nextHop == configuration.nextHop ? old.nextHopCapabilities : NextHopCapabilityCache()
        let context = try Self.makeContext(
            configuration, agentKeys: agentKeys, group: group, signerPool: signerPool, logger: logger,
            metrics: metrics, srsStatistics: srsStatistics, capabilities: capabilities)
        current.withLockedValue { $0 = context }
        // Connections kept for later clients were opened under the old settings (next hop, TLS, hostname).
        Task { await old.nextHop.closeIdleSessions() }
        if configuration.threads != old.configuration.threads {
            logger.warning("threads changed in the configuration; they take effect only on restart")
        }
        if configuration.listen != old.configuration.listen {
            logger.warning(
                "listen addresses changed in the configuration; they take effect only on restart",
                metadata: ["listening": "\(old.configuration.listen.map(\.description))"])
        }
        if capabilities !== old.nextHopCapabilities { Task { await self.learnNextHopCapabilities() } }
    }

    /// Connects to the next hop once to learn what its EHLO offers, so the first client's EHLO can already be
    /// the intersection; a next hop that is down is only logged (clients get 451 at MAIL until it is back).
    func learnNextHopCapabilities() async {
        let context = current.withLockedValue { $0 }
        guard context.configuration.nextHop != nil else { return }
        do {
            let session = try await context.nextHop.connect()
            context.nextHopCapabilities.update(session.capabilities)
            await session.quit()
        } catch {
            logger.warning("next hop not reachable at start", metadata: ["error": "\(error)"])
        }
    }

    /// Why a new connection is refused, if it is: a client outside `client_networks` (unless AUTH may let it in),
    /// or over `max_connections` (`open` counts it) or `max_connections_per_client`.
    private static func refusal(
        from clientAddress: String, trusted: Bool, open: Int, fromClient: Int, context: RelayContext
    ) -> (SMTPReply, RelayMetrics.RefusalReason)? {
        let configuration = context.configuration
        // With AUTH, clients from elsewhere may connect, but must authenticate before MAIL (submission).
        if !trusted && context.security.passwords == nil {
            let reply = SMTPReply(
                code: 554, EnhancedStatusCode(5, 7, 1), "\(configuration.hostname) access denied for \(clientAddress)")
            return (reply, .access)
        }
        if open > configuration.limits.maxConnections {
            let reply = SMTPReply(
                code: 421, EnhancedStatusCode(4, 7, 0),
                "\(configuration.hostname) too many connections, try again later")
            return (reply, .limit)
        }
        let perClient = configuration.limits.maxConnectionsPerClient
        if perClient > 0 && fromClient > perClient {
            let reply = SMTPReply(
                code: 421, EnhancedStatusCode(4, 7, 0),
                "\(configuration.hostname) too many connections from \(clientAddress), try again later")
            return (reply, .perClient)
        }
        return nil
    }

    /// The addresses actually bound (port 0 in the configuration picks a free port), once listening.
    public func listeningAddresses() async -> [SocketAddress] {
        let current = boundAddresses.withLockedValue { $0 }
        if !current.isEmpty { return current }
        return await withCheckedContinuation { continuation in
            let now: [SocketAddress]? = readyPromise.withLockedValue { waiters in
                let bound = boundAddresses.withLockedValue { $0 }
                if !bound.isEmpty { return bound }
                waiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    public func run() async throws {
        let configuration = self.configuration
        var listeners: [Listener] = []
        var bound: [SocketAddress] = []
        // One listening socket per event loop, sharing the port (SO_REUSEPORT): the kernel spreads connections
        // over them, and each connection is accepted, set up and served on one thread. With one listener, a
        // connection accepted on one loop and served on another crossed between the threads three times.
        let loops = Array(group.makeIterator())
        for address in configuration.listen {
            do {
                let shared = loops.count > 1
                let port = shared ? try await claim(host: address.host, port: address.port, on: loops[0]) : address.port
                for loop in loops {
                    listeners.append(try await bindListener(host: address.host, port: port, on: loop, sharing: shared))
                }
            } catch {
                for listener in listeners { try? await listener.channel.close() }
                let reason = (error as? IOError).map { String(cString: strerror($0.errnoCode)) } ?? "\(error)"
                throw ConfigurationError(["listen: cannot listen on \(address): \(reason)"])
            }
            if let local = listeners.last?.channel.localAddress {
                bound.append(local)
                logger.info("listening", metadata: ["address": "\(local)"])
            }
        }
        let listening = listeners
        boundAddresses.withLockedValue { $0 = bound }
        for waiter in readyPromise.withLockedValue({ waiters in
            defer { waiters = [] }; return waiters
        }) {
            waiter.resume(returning: bound)
        }

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.learnNextHopCapabilities() }
                for listener in listening {
                    // On the listener's loop, where its connections arrive: on the cooperative pool, every
                    // accepted connection would wake a pool thread between two event-loop threads.
                    group.addTask(executorPreference: EventLoopTaskExecutor(listener.channel.eventLoop)) {
                        try await self.accept(on: listener)
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new connections, finishing transactions in flight")
            self.draining.withLockedValue { $0 = true }
            for listener in listening { listener.channel.close(promise: nil) }
            let nextHop = self.current.withLockedValue { $0.nextHop }
            Task { await nextHop.closeIdleSessions() }
            let hostname = self.configuration.hostname
            for (channel, drain) in self.active.withLockedValue({ Array($0.values) }) where drain.drain() {
                // Idle between transactions (or never started one): nothing to finish.
                channel.writeAndFlush(SessionDrain.reply(hostname).encoded()).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
            let grace = self.configuration.timeouts.shutdownGrace
            self.group.next().scheduleTask(in: .seconds(Int64(grace))) {
                for (channel, _) in self.active.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
            }
        }
        // The kept next-hop sessions get their QUIT before the process goes (the drain above started on them), for
        // at most a few seconds: a next hop that does not answer QUIT must not hold the exit.
        let nextHop = current.withLockedValue { $0.nextHop }
        _ = await Deadline.value(of: Task { await nextHop.closeIdleSessions() }, by: .now + .seconds(5))
        try await signerPool.shutdown()
    }

    private typealias Listener = NIOAsyncChannel<ClientConnection, Never>

    /// Binds a listening socket without SO_REUSEPORT and closes it again, returning its port: an address already in
    /// use (another relay on the same port, say) fails here instead of being shared, and port 0 becomes the one
    /// port every loop's socket binds.
    private func claim(host: String, port: Int, on loop: any EventLoop) async throws -> Int {
        let probe = try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)  // accepts nothing: a client that came is reset, retries
            .bind(host: host, port: port).get()
        let bound = probe.localAddress?.port ?? port
        try await probe.close()
        return bound
    }

    /// A listening socket on `loop` whose connections stay on that loop.
    private func bindListener(host: String, port: Int, on loop: any EventLoop, sharing: Bool) async throws -> Listener {
        try await ServerBootstrap(group: loop)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(
                ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)),
                value: sharing ? 1 : 0
            )
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: Self.clientReceiveBuffers)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Timeouts and TLS as configured when the connection arrives, like the rest of its session.
                    let context = self.current.withLockedValue { $0 }
                    let timeouts = context.configuration.timeouts
                    try channel.pipeline.syncOperations.addHandler(
                        ClientTimeoutHandler(
                            commandSeconds: timeouts.command, dataSeconds: timeouts.dataBlock,
                            minDataRate: timeouts.minDataRate,
                            onTimeout: { [metrics = context.metrics] phase in metrics.clientTimedOut(phase) })
                    )
                    if context.security.serverTLS != nil {
                        var logger = context.logger
                        logger[metadataKey: "peer"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
                        try channel.pipeline.syncOperations.addHandler(
                            StartTLSHandler(logger: logger, metrics: context.metrics))
                    }
                    return try ClientConnection.wrapping(channel)
                }
            }
    }

    private func accept(on listener: Listener) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            do {
                try await listener.executeThenClose { connections in
                    for try await connection in connections {
                        // The session runs on its connection's loop (EventLoopTaskExecutor says why).
                        group.addTask(executorPreference: connection.executor) {
                            await self.serve(connection)
                        }
                    }
                }
            } catch {
                logger.debug("listener closed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func serve(_ connection: ClientConnection) async {
        let channel = connection.channel
        let peer = channel.remoteAddress
        let context = current.withLockedValue { $0 }
        let id = ObjectIdentifier(channel)
        let drain = SessionDrain()
        let count = active.withLockedValue { channels -> Int in
            channels[id] = (channel, drain)
            return channels.count
        }
        defer { _ = active.withLockedValue { $0.removeValue(forKey: id) } }
        // Per client IP address, so one client cannot hold every slot of max_connections.
        let clientAddress = peer?.ipAddress ?? "?"
        let fromClient = perClient.withLockedValue { counts -> Int in
            let open = counts[clientAddress, default: 0] + 1
            counts[clientAddress] = open
            return open
        }
        defer {
            perClient.withLockedValue { counts in
                let left = (counts[clientAddress] ?? 1) - 1
                counts[clientAddress] = left > 0 ? left : nil
            }
        }

        let trusted =
            peer.map { peer in context.configuration.clientNetworks.contains(where: { $0.contains(peer) }) } ?? true
        if let (refusal, reason) = Self.refusal(
            from: clientAddress, trusted: trusted, open: count, fromClient: fromClient, context: context)
        {
            context.metrics.connectionRefused(reason)
            context.logger.notice(
                "connection refused", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")", "reply": "\(refusal.code)"])
            try? await channel.writeAndFlush(refusal.encoded())
            try? await channel.close()
            return
        }
        context.metrics.connectionOpened()
        defer { context.metrics.connectionClosed() }
        let timer: ClientTimer
        do {
            let findTimer: @Sendable () throws -> ClientTimer = {
                let handler = try channel.pipeline.syncOperations.handler(type: ClientTimeoutHandler.self)
                return ClientTimer(handler: handler, eventLoop: channel.eventLoop)
            }
            // The session runs on its connection's loop, so the look-up needs no trip through the loop's queue.
            timer = try channel.eventLoop.inEventLoop ? findTimer() : await channel.eventLoop.submit(findTimer).get()
        } catch {
            return  // the connection closed before its session began
        }
        var session = InboundSession(
            context: context, peer: peer, timer: timer, drain: drain, channel: channel, executor: connection.executor,
            trusted: trusted)
        do {
            try await session.run(on: connection.stream)
        } catch {
            context.logger.debug("session ended with an error", metadata: ["error": "\(error)"])
        }
        try? await channel.close()
    }
}

// What `readiness()` (Metrics/RelayReadiness.swift) reads.
extension RelayServer {
    var listeningNow: [SocketAddress] { boundAddresses.withLockedValue { $0 } }
    var isDraining: Bool { draining.withLockedValue { $0 } }
    var currentContext: RelayContext { current.withLockedValue { $0 } }
    var signerPoolForReadiness: SignerPool { signerPool }
}
