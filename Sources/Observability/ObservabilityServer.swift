import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The observability listener (`/metrics`, `/healthz`, `/readyz`, `/debug/config`) over HTTP/1.1, a
/// ServiceLifecycle service run next to the relay.
///
/// Each connection answers one request and closes: scrapes and probes are seconds apart, and a listener without
/// idle connections stops at once on SIGTERM. A port it cannot bind is logged, not fatal: losing the metrics port
/// must not stop mail.
public final class ObservabilityServer: Service, Sendable {
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let routes: ObservabilityRoutes
    private let logger: Logger
    private let open = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let bound = NIOLockedValueBox<(SocketAddress?, [CheckedContinuation<SocketAddress?, Never>])>((nil, []))
    private let finishedBinding = NIOLockedValueBox(false)

    /// A listener on `host:port` (port 0 picks a free one) answering with `routes`.
    public init(host: String, port: Int, group: any EventLoopGroup, routes: ObservabilityRoutes, logger: Logger) {
        self.host = host
        self.port = port
        self.group = group
        self.routes = routes
        self.logger = logger
    }

    /// The address bound, once `run` has tried; nil when binding failed.
    public func boundAddress() async -> SocketAddress? {
        await withCheckedContinuation { continuation in
            let now: SocketAddress?? = bound.withLockedValue { state in
                if finishedBinding.withLockedValue({ $0 }) { return .some(state.0) }
                state.1.append(continuation)
                return .none
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    private func finishBinding(_ address: SocketAddress?) {
        let waiters = bound.withLockedValue { state in
            finishedBinding.withLockedValue { $0 = true }
            state.0 = address
            defer { state.1 = [] }
            return state.1
        }
        for waiter in waiters { waiter.resume(returning: address) }
    }

    public func run() async throws {
        typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
        let listener: NIOAsyncChannel<Connection, Never>
        do {
            listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            logger.error(
                "metrics listener not started; the relay runs without /metrics and probes",
                metadata: ["address": "\(host):\(port)", "error": "\(error)"])
            finishBinding(nil)
            try? await gracefulShutdown()  // returning early would end the whole service group
            return
        }
        finishBinding(listener.channel.localAddress)
        logger.info(
            "metrics listening", metadata: ["address": "\(listener.channel.localAddress.map { "\($0)" } ?? "?")"])
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
            for channel in self.open.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        let id = ObjectIdentifier(connection.channel)
        open.withLockedValue { $0[id] = connection.channel }
        defer { _ = open.withLockedValue { $0.removeValue(forKey: id) } }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                for try await part in inbound {
                    switch part {
                    case .head(let request):
                        head = request
                    case .body:
                        continue  // no route takes a body
                    case .end:
                        guard let request = head else { return }
                        let answer = await routes.answer(method: request.method, uri: request.uri)
                        var headers = HTTPHeaders()
                        headers.add(name: "Content-Type", value: answer.contentType)
                        headers.add(name: "Content-Length", value: "\(answer.body.count)")
                        headers.add(name: "Connection", value: "close")
                        headers.add(name: "Cache-Control", value: "no-store")
                        try await outbound.write(
                            .head(HTTPResponseHead(version: request.version, status: answer.status, headers: headers)))
                        if request.method != .HEAD {
                            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: answer.body))))
                        }
                        try await outbound.write(.end(nil))
                        return
                    }
                }
            }
        } catch {
            logger.debug("metrics connection ended with an error", metadata: ["error": "\(error)"])
        }
    }
}
