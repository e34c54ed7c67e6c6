import Keys
import NIOCore
import NIOPosix

/// Why a request to the signer agent failed. Every case is temporary for the client: the relay answers
/// 451 4.3.0 and the message comes again, to a restarted agent.
public struct SignerAgentError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// The relay's end of one agent connection: numbers requests, matches answers, fails what is in flight when the
/// agent goes away or does not answer in time. Never blocks: the requests and answers move on the channel's event
/// loop and the caller awaits.
final class SignerAgentConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<SignerAgentResponseHandler>

    private init(channel: any Channel, handler: NIOLoopBound<SignerAgentResponseHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// Takes over `descriptor`, a connected stream socket to an agent.
    static func connect(socket descriptor: Int32, group: any EventLoopGroup) async throws -> SignerAgentConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SignerAgentResponseHandler())
                }
            }
            .withConnectedSocket(descriptor)
            .get()
        return try await made(channel)
    }

    /// Connects to an agent listening on a Unix socket (its own container, a shared volume).
    static func connect(path: String, group: any EventLoopGroup) async throws -> SignerAgentConnection {
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(SignerAgentResponseHandler())
                }
            }
            .connect(unixDomainSocketPath: path)
            .get()
        return try await made(channel)
    }

    private static func made(_ channel: any Channel) async throws -> SignerAgentConnection {
        try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: SignerAgentResponseHandler.self)
            return SignerAgentConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
        }.get()
    }

    /// Whether the agent is still connected.
    var isActive: Bool { channel.isActive }

    /// The keys the agent holds.
    func keys(timeout: TimeAmount) async throws -> [SignerAgentProtocol.KeyDescription] {
        let response = try await send(timeout: timeout) { .keys(id: $0) }
        guard response.ok else { throw SignerAgentError(description: String(decoding: response.body, as: UTF8.self)) }
        do {
            return try SignerAgentProtocol.decodeKeys(response.body)
        } catch {
            throw SignerAgentError(description: "signer agent: \(error)")
        }
    }

    /// The agent's signature over `digest` with the key it knows as `keyID`.
    func sign(keyID: String, algorithm: KeyAlgorithm, digest: [UInt8], timeout: TimeAmount) async throws -> [UInt8] {
        let response = try await send(timeout: timeout) {
            .sign(id: $0, keyID: keyID, algorithm: algorithm, digest: digest)
        }
        guard response.ok else {
            throw SignerAgentError(description: "signer agent: \(String(decoding: response.body, as: UTF8.self))")
        }
        return response.body
    }

    /// Closes the connection; the agent exits when it sees the end of its socket.
    func close() {
        channel.close(promise: nil)
    }

    private func send(
        timeout: TimeAmount, _ request: @escaping @Sendable (UInt32) -> SignerAgentProtocol.Request
    ) async throws -> SignerAgentProtocol.Response {
        let eventLoop = channel.eventLoop
        let promise = eventLoop.makePromise(of: SignerAgentProtocol.Response.self)
        let handler = self.handler
        eventLoop.execute {
            handler.value.send(request, promise: promise, timeout: timeout)
        }
        return try await promise.futureResult.get()
    }
}

/// Keeps the requests in flight on one connection, on its event loop.
final class SignerAgentResponseHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var pending: [UInt32: (promise: EventLoopPromise<SignerAgentProtocol.Response>, timer: Scheduled<Void>)] = [:]
    /// 0 is the agent's "cannot start" frame, so requests count from 1.
    private var nextID: UInt32 = 1
    private var received = ByteBuffer()
    /// Why the connection is unusable, once it is.
    private var failure: String?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func send(
        _ make: (UInt32) -> SignerAgentProtocol.Request, promise: EventLoopPromise<SignerAgentProtocol.Response>,
        timeout: TimeAmount
    ) {
        guard let context, failure == nil, context.channel.isActive else {
            promise.fail(SignerAgentError(description: failure ?? "the signer agent is not connected"))
            return
        }
        let id = nextID
        nextID = nextID == UInt32.max ? 1 : nextID + 1
        let loopBoundSelf = NIOLoopBound(self, eventLoop: context.eventLoop)
        let timer = context.eventLoop.scheduleTask(in: timeout) {
            guard let entry = loopBoundSelf.value.pending.removeValue(forKey: id) else { return }
            entry.promise.fail(SignerAgentError(description: "the signer agent did not answer within \(timeout)"))
        }
        pending[id] = (promise, timer)
        var buffer = context.channel.allocator.buffer(capacity: 64)
        SignerAgentProtocol.encode(make(id), into: &buffer)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        received.writeBuffer(&incoming)
        do {
            while let frame = try SignerAgentProtocol.nextFrame(&received) {
                let response = try SignerAgentProtocol.decodeResponse(frame)
                if response.id == 0 {
                    failAll("the signer agent could not start: \(String(decoding: response.body, as: UTF8.self))")
                    context.close(promise: nil)
                    return
                }
                // An answer after its timeout finds nothing here and is dropped.
                guard let entry = pending.removeValue(forKey: response.id) else { continue }
                entry.timer.cancel()
                entry.promise.succeed(response)
            }
            received.discardReadBytes()
        } catch {
            failAll("the signer agent broke the protocol: \(error)")
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(failure ?? "the signer agent went away")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll("signer agent connection: \(error)")
        context.close(promise: nil)
    }

    private func failAll(_ reason: String) {
        if failure == nil { failure = reason }
        let entries = pending
        pending.removeAll()
        for (_, entry) in entries {
            entry.timer.cancel()
            entry.promise.fail(SignerAgentError(description: reason))
        }
    }
}
