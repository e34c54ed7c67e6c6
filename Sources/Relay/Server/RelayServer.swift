import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPProtocol
import ServiceLifecycle

/// Listens for SMTP and runs one `InboundSession` per connection; a ServiceLifecycle service, so SIGTERM stops
/// accepting and lets transactions in flight finish (for at most `timeouts.shutdown_grace` seconds).
public final class RelayServer: Service, Sendable {
    private let context: RelayContext
    private let group: any EventLoopGroup
    private let active = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let boundAddresses = NIOLockedValueBox<[SocketAddress]>([])
    private let readyPromise: NIOLockedValueBox<[CheckedContinuation<[SocketAddress], Never>]> = NIOLockedValueBox([])

    /// A server for `configuration`; keys are loaded and checked here, so a bad key fails before listening.
    public init(configuration: RelayConfiguration, group: any EventLoopGroup, logger: Logger) throws {
        let table = try SigningTable(configuration.signing)
        let nextHop: any NextHop
        let security = try RelaySecurity(configuration: configuration)
        if let address = configuration.nextHop {
            nextHop = SMTPNextHop(
                address: address, hostname: configuration.hostname, group: group, timeouts: configuration.timeouts,
                tls: try NextHopTLSPolicy(configuration.nextHopTLS, logger: logger))
        } else {
            nextHop = try CaptureNextHop(directory: configuration.effectiveCaptureDirectory)
        }
        self.context = RelayContext(
            configuration: configuration,
            signingTable: table,
            signerPool: SignerPool(threadCount: System.coreCount),
            nextHop: nextHop,
            logger: logger,
            statistics: RelayStatistics(),
            security: security
        )
        self.group = group
    }

    /// The counters of this server.
    public var statistics: RelayStatistics { context.statistics }

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
        let configuration = context.configuration
        var listeners: [NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>] = []
        for address in configuration.listen {
            let listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: address.host, port: address.port) { [context] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            IdleTimeoutHandler(seconds: max(configuration.timeouts.command, configuration.timeouts.dataBlock))
                        )
                        if context.security.serverTLS != nil {
                            var logger = context.logger
                            logger[metadataKey: "peer"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
                            try channel.pipeline.syncOperations.addHandler(
                                StartTLSHandler(logger: logger, statistics: context.statistics))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            listeners.append(listener)
            context.logger.info("listening", metadata: ["address": "\(listener.channel.localAddress.map { "\($0)" } ?? "?")"])
        }
        let listening = listeners
        let bound = listening.compactMap { $0.channel.localAddress }
        boundAddresses.withLockedValue { $0 = bound }
        for waiter in readyPromise.withLockedValue({ waiters in defer { waiters = [] }; return waiters }) {
            waiter.resume(returning: bound)
        }

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                for listener in listening {
                    group.addTask { try await self.accept(on: listener) }
                }
            }
        } onGracefulShutdown: {
            self.context.logger.info("shutting down: no new connections, finishing transactions in flight")
            for listener in listening { listener.channel.close(promise: nil) }
            let grace = configuration.timeouts.shutdownGrace
            self.group.next().scheduleTask(in: .seconds(Int64(grace))) {
                for channel in self.active.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
            }
        }
        try await context.signerPool.shutdown()
    }

    private func accept(on listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            do {
                try await listener.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            } catch {
                context.logger.debug("listener closed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let channel = connection.channel
        let peer = channel.remoteAddress
        let configuration = context.configuration
        let id = ObjectIdentifier(channel)
        let count = active.withLockedValue { channels -> Int in
            channels[id] = channel
            return channels.count
        }
        defer { _ = active.withLockedValue { $0.removeValue(forKey: id) } }

        let refusal: SMTPReply?
        let trusted = peer.map { peer in configuration.clientNetworks.contains(where: { $0.contains(peer) }) } ?? true
        // With AUTH, clients from elsewhere may connect, but must authenticate before MAIL (submission).
        if !trusted && context.security.passwords == nil, let peer {
            refusal = SMTPReply(code: 554, EnhancedStatusCode(5, 7, 1), "\(configuration.hostname) access denied for \(peer.ipAddress ?? "?")")
        } else if count > configuration.limits.maxConnections {
            refusal = SMTPReply(code: 421, EnhancedStatusCode(4, 7, 0), "\(configuration.hostname) too many connections, try again later")
        } else {
            refusal = nil
        }
        if let refusal {
            context.statistics.connectionsRefused.increment()
            context.logger.notice("connection refused", metadata: ["peer": "\(peer.map { "\($0)" } ?? "?")", "reply": "\(refusal.code)"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(refusal.encoded())
            }
            return
        }
        context.statistics.connectionsAccepted.increment()
        var session = InboundSession(context: context, peer: peer?.description ?? "?", channel: channel, trusted: trusted)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await session.run(inbound: inbound, outbound: outbound)
            }
        } catch {
            context.logger.debug("session ended with an error", metadata: ["error": "\(error)"])
        }
    }
}

/// Closes a connection that has been silent too long (RFC 5321 §4.5.3.2), with a 421 first.
final class IdleTimeoutHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(seconds: Int) {
        self.timeout = .seconds(Int64(seconds))
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        arm(context)
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let context = loopBoundContext.value
            let reply = SMTPReply(code: 421, EnhancedStatusCode(4, 4, 2), "timeout, closing connection")
            context.writeAndFlush(NIOAny(reply.encoded())).whenComplete { _ in loopBoundContext.value.close(promise: nil) }
        }
    }
}
