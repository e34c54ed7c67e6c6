import Keys
import NIOCore
import NIOPosix

/// The agent side of the signer protocol: holds the private keys and answers requests from one connection (the
/// relay's socketpair) or many (a Unix socket in a shared volume). Signatures run on a thread pool, one thread per
/// core, so the event loop only moves bytes.
public final class SignerAgentServer: Sendable {
    private let keys: [String: PrivateKey]
    private let descriptions: [SignerAgentProtocol.KeyDescription]
    private let threads: NIOThreadPool

    /// Serves `keys` (name → key) with `threadCount` signing threads.
    public init(keys: [String: PrivateKey], threadCount: Int) {
        self.keys = keys
        self.descriptions = keys.sorted { $0.key < $1.key }.map { name, key in
            SignerAgentProtocol.KeyDescription(id: name, algorithm: key.algorithm, publicKeyData: key.publicKey.dkimKeyData)
        }
        threads = NIOThreadPool(numberOfThreads: max(1, threadCount))
        threads.start()
    }

    /// Serves the connected socket `descriptor` (taken over) until the peer closes it.
    public func serve(connectedSocket descriptor: Int32, group: any EventLoopGroup) async throws {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SignerAgentRequestHandler(server: self))
                }
            }
            .withConnectedSocket(descriptor)
            .get()
        try await channel.closeFuture.get()
    }

    /// Listens on a Unix socket path (mode 0600 unless `mode` says otherwise) until cancelled.
    public func listen(path: String, group: any EventLoopGroup) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SignerAgentRequestHandler(server: self))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
    }

    /// Writes one error frame to `descriptor` (the agent could not start) so that the relay can say why.
    public static func reportFatal(_ reason: String, to descriptor: Int32) {
        var buffer = ByteBuffer()
        SignerAgentProtocol.encode(
            SignerAgentProtocol.Response(id: 0, ok: false, body: Array(reason.utf8.prefix(4000))), into: &buffer)
        let bytes = Array(buffer.readableBytesView)
        _ = bytes.withUnsafeBytes { raw in systemWrite(descriptor, raw.baseAddress, raw.count) }
        // Read what the relay sent until it hangs up (at most 2 s): closing with its request unread would reset
        // the connection, and the relay could lose the reason before reading it.
        _ = systemShutdown(descriptor, Int32(SHUT_WR))
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var scratch = [UInt8](repeating: 0, count: 4096)
        while scratch.withUnsafeMutableBytes({ read(descriptor, $0.baseAddress, $0.count) }) > 0 {}
    }

    /// Stops the signing threads.
    public func shutdown() async throws {
        try await threads.shutdownGracefully()
    }

    fileprivate func answer(_ request: SignerAgentProtocol.Request, on eventLoop: any EventLoop)
        -> EventLoopFuture<SignerAgentProtocol.Response>
    {
        switch request {
        case .keys(let id):
            let body = SignerAgentProtocol.encode(descriptions)
            return eventLoop.makeSucceededFuture(.init(id: id, ok: true, body: body))
        case .sign(let id, let keyID, let algorithm, let digest):
            guard let key = keys[keyID] else {
                return eventLoop.makeSucceededFuture(.init(id: id, ok: false, body: Array("no key named \(keyID)".utf8)))
            }
            guard key.algorithm == algorithm else {
                return eventLoop.makeSucceededFuture(
                    .init(id: id, ok: false, body: Array("key \(keyID) is \(key.algorithm.rawValue), not \(algorithm.rawValue)".utf8)))
            }
            return threads.runIfActive(eventLoop: eventLoop) {
                do {
                    return SignerAgentProtocol.Response(id: id, ok: true, body: try key.signature(forSHA256Digest: digest))
                } catch {
                    return SignerAgentProtocol.Response(id: id, ok: false, body: Array("\(error)".utf8))
                }
            }
        }
    }
}

/// Reads request frames and writes each answer when it is ready, in whatever order they finish.
private final class SignerAgentRequestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let server: SignerAgentServer
    private var pending = ByteBuffer()

    init(server: SignerAgentServer) {
        self.server = server
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        pending.writeBuffer(&incoming)
        do {
            while let frame = try SignerAgentProtocol.nextFrame(&pending) {
                let request = try SignerAgentProtocol.decodeRequest(frame)
                let channel = context.channel
                server.answer(request, on: context.eventLoop).whenSuccess { response in
                    var buffer = channel.allocator.buffer(capacity: 16 + response.body.count)
                    SignerAgentProtocol.encode(response, into: &buffer)
                    channel.writeAndFlush(buffer, promise: nil)
                }
            }
            pending.discardReadBytes()
        } catch {
            // A peer that breaks framing cannot be answered reliably.
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

#if canImport(Glibc)
    import Glibc
    private let systemWrite = Glibc.write
    private let systemShutdown = Glibc.shutdown
#elseif canImport(Musl)
    import Musl
    private let systemWrite = Musl.write
    private let systemShutdown = Musl.shutdown
#elseif canImport(Darwin)
    import Darwin
    private let systemWrite = Darwin.write
    private let systemShutdown = Darwin.shutdown
#endif
