import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// Sits in every inbound pipeline when STARTTLS is offered: counts the plaintext bytes handed to the session, so
/// that bytes pipelined after STARTTLS can be told apart from the first bytes decrypted, and reports how the
/// handshake ended.
final class StartTLSHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let logger: Logger
    private let statistics: RelayStatistics
    /// Bytes passed on before TLS started.
    private(set) var plaintextBytes = 0
    private var state = State.plaintext

    private enum State {
        case plaintext
        case handshaking
        case established
    }

    init(logger: Logger, statistics: RelayStatistics) {
        self.logger = logger
        self.statistics = statistics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state == .plaintext { plaintextBytes += unwrapInboundIn(data).readableBytes }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, state == .handshaking {
            state = .established
            statistics.tlsHandshakes.increment()
            let version = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self).tlsVersion
            logger.info("TLS established", metadata: ["version": "\(version.map { "\($0)" } ?? "?")"])
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // NIOSSLHandler closes the connection itself; this only tells the operator why.
        if state == .handshaking {
            state = .established  // one report per connection
            statistics.tlsHandshakeFailures.increment()
            logger.notice("TLS handshake failed, connection closed", metadata: ["error": "\(error)"])
        }
        context.fireErrorCaught(error)
    }

    /// Writes `replies` (ending with the 220 to STARTTLS) and puts the TLS handler at the front of the pipeline,
    /// both in one event-loop task: nothing read after this is taken as plaintext, and no plaintext byte of ours
    /// follows the 220. Returns how many plaintext bytes had been passed on by then.
    static func startTLS(on channel: any Channel, context: NIOSSLContext, replies: ByteBuffer) async throws -> Int {
        try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: StartTLSHandler.self)
            channel.writeAndFlush(replies, promise: nil)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context), position: .first)
            handler.state = .handshaking
            return handler.plaintextBytes
        }.get()
    }
}

/// Drops the plaintext a client pipelined after STARTTLS that was already read from the socket but not yet by
/// the session (RFC 3207 §4.2; CVE-2011-0411): the session's own buffer is dropped by the framer's
/// `startTLS(discarding:)`, the rest is counted here.
struct PlaintextGuard {
    /// Bytes the session has taken from the connection.
    private(set) var received = 0
    /// Plaintext bytes still to drop before the first decrypted byte.
    private(set) var toDiscard = 0

    /// Records that TLS started after the connection had passed on `plaintextBytes` bytes in total.
    mutating func tlsStarted(plaintextBytes: Int) {
        toDiscard = max(0, plaintextBytes - received)
    }

    /// Accounts for a chunk read from the connection and drops the plaintext part; false when nothing is left.
    mutating func admit(_ chunk: inout ByteBuffer) -> Bool {
        received += chunk.readableBytes
        guard toDiscard > 0 else { return true }
        let dropped = min(toDiscard, chunk.readableBytes)
        chunk.moveReaderIndex(forwardBy: dropped)
        toDiscard -= dropped
        return chunk.readableBytes > 0
    }
}
