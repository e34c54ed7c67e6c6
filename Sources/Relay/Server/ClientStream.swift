import NIOCore

/// A client connection as its session reads and writes it: the channel and the handler at the end of its
/// pipeline that hands the session what the client sent and takes its replies.
struct ClientConnection: Sendable {
    let channel: any Channel
    let stream: ClientStreamHandler

    /// The connection's loop as a task executor: its session and the session's verification lookups run there.
    var executor: EventLoopTaskExecutor { stream.executor }

    /// Adds the stream handler last in `channel`'s pipeline; on the channel's loop.
    static func wrapping(_ channel: any Channel) throws -> ClientConnection {
        let stream = ClientStreamHandler(executor: EventLoopTaskExecutor(channel.eventLoop))
        try channel.pipeline.syncOperations.addHandler(stream)
        return ClientConnection(channel: channel, stream: stream)
    }
}

/// Hands a session the bytes its client sent and writes its replies, for a session that runs on the connection's
/// event loop (`EventLoopTaskExecutor`).
///
/// It does what `NIOAsyncChannel` did for the session with less machinery: that one serves any thread, through a
/// lock and a generic producer state machine per read and per write, about 8% of the relay's CPU per message
/// (ed25519, 100 messages per connection; docs/performance.md). Here a read resumes the waiting session directly
/// and a reply goes straight into the pipeline; both run on the loop, which owns every field. Reads stop while
/// `highWatermark` chunks wait unread and start again below `lowWatermark`, as `NIOAsyncChannel` did by default;
/// a reply that leaves the channel unwritable waits until the client has read enough.
final class ClientStreamHandler: ChannelDuplexHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let lowWatermark = 2
    private static let highWatermark = 10

    let executor: EventLoopTaskExecutor
    private var eventLoop: any EventLoop { executor.eventLoop }
    // Every field below is touched on `eventLoop` only.
    private var context: ChannelHandlerContext?
    private var unread = CircularBuffer<ByteBuffer>(initialCapacity: 4)
    /// Set once no more bytes will come: nil error for a clean end, else the error to throw after `unread`.
    private var end: (any Error)??
    private var reader: UnsafeContinuation<ByteBuffer?, any Error>?
    private var writer: UnsafeContinuation<Void, any Error>?
    /// A read the channel asked for while `unread` was full, passed on once the session has caught up.
    private var heldRead = false

    init(executor: EventLoopTaskExecutor) {
        self.executor = executor
    }

    /// The next bytes from the client; nil once the client has closed the connection. Throws the channel's error.
    func next() async throws -> ByteBuffer? {
        guard eventLoop.inEventLoop else {
            return try await withTaskExecutorPreference(executor) { try await self.next() }
        }
        if let chunk = unread.popFirst() {
            if heldRead && unread.count < Self.lowWatermark, let context {
                heldRead = false
                context.read()
            }
            return chunk
        }
        if let end {
            if let error = end { throw error }
            return nil
        }
        // Runs at once, on the loop: nothing can arrive before the continuation is stored.
        return try await withUnsafeThrowingContinuation { reader = $0 }
    }

    /// Writes and flushes `reply`; returns once the channel can take more. Throws once the connection is closed.
    func write(_ reply: ByteBuffer) async throws {
        guard eventLoop.inEventLoop else {
            return try await withTaskExecutorPreference(executor) { try await self.write(reply) }
        }
        guard let context, context.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        guard !context.channel.isWritable else { return }
        try await withUnsafeThrowingContinuation { writer = $0 }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finish(ChannelError.ioOnClosedChannel)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let chunk = unwrapInboundIn(data)
        if let reader {
            self.reader = nil
            reader.resume(returning: chunk)
        } else {
            unread.append(chunk)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(error)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let writer {
            self.writer = nil
            writer.resume()
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if unread.count >= Self.highWatermark {
            heldRead = true
        } else {
            context.read()
        }
    }

    /// No more bytes will come: a waiting read gets the end (or `error`), a waiting write fails.
    private func finish(_ error: (any Error)?) {
        if end == nil { end = .some(error) }
        // A read waits only when nothing is unread.
        if let reader {
            self.reader = nil
            if let error { reader.resume(throwing: error) } else { reader.resume(returning: nil) }
        }
        if let writer {
            self.writer = nil
            writer.resume(throwing: error ?? ChannelError.ioOnClosedChannel)
        }
    }
}
