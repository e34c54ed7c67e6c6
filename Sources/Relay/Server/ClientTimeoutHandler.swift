import NIOConcurrencyHelpers
import NIOCore
import SMTPProtocol

/// What the server is waiting for from its client, which decides the timeout (RFC 5321 §4.5.3.2).
enum ClientPhase: Sendable, Hashable {
    /// The next command: `timeouts.command` (5 minutes by default).
    case command
    /// The next piece of DATA or BDAT content: `timeouts.data_block` (3 minutes).
    case data
    /// Nothing: Signet itself is waiting (for the next hop or the signer pool) and the client for Signet.
    case waitingForUs
}

/// Closes a client connection that has been silent longer than its phase allows, with a 421 first.
///
/// Entering a phase and a read that completes a command line re-arm the whole timeout; other reads move the
/// deadline on by their size over `minDataRate` only (never past a whole timeout from now), so a client that
/// trickles bytes cannot hold a connection for ever. The session moves it between phases through `ClientTimer`.
final class ClientTimeoutHandler: ChannelDuplexHandler, DeadlineTimerOwner {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let commandTimeout: TimeAmount
    private let dataTimeout: TimeAmount
    private let minDataRate: Int
    private let onTimeout: @Sendable (ClientPhase) -> Void
    private var phase = ClientPhase.command
    private var timer = DeadlineTimer()
    /// When the client's time is up (distant future while Signet itself is working).
    private var deadline = NIODeadline.distantFuture
    private var context: ChannelHandlerContext?

    /// `minDataRate` bytes per second (0: every read re-arms); `onTimeout` counts a timeout that fired.
    init(
        commandSeconds: Int, dataSeconds: Int, minDataRate: Int = 0,
        onTimeout: @escaping @Sendable (ClientPhase) -> Void = { _ in }
    ) {
        self.commandTimeout = .seconds(Int64(commandSeconds))
        self.dataTimeout = .seconds(Int64(dataSeconds))
        self.minDataRate = minDataRate
        self.onTimeout = onTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { arm() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        arm()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if minDataRate <= 0 || (phase == .command && bytes.readableBytesView.contains(UInt8(ascii: "\n"))) {
            arm()
        } else if deadline != .distantFuture {
            // Progress buys time in proportion to its size, capped at one whole timeout from now.
            let earned = TimeAmount.nanoseconds(Int64(bytes.readableBytes) * 1_000_000_000 / Int64(minDataRate))
            let cap = NIODeadline.now() + (phase == .data ? dataTimeout : commandTimeout)
            schedule(at: min(deadline + earned, cap))
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        context.fireChannelInactive()
    }

    /// Called on the event loop by `ClientTimer`.
    func enter(_ phase: ClientPhase) {
        guard phase != self.phase else { return }
        self.phase = phase
        arm()
    }

    private func arm() {
        switch phase {
        case .command: schedule(at: .now() + commandTimeout)
        case .data: schedule(at: .now() + dataTimeout)
        case .waitingForUs: deadline = .distantFuture
        }
    }

    /// Moves the deadline; the timer re-checks it when it fires (`DeadlineTimer`).
    private func schedule(at deadline: NIODeadline) {
        self.deadline = deadline
        guard let context else { return }
        timer.schedule(at: deadline, on: context.eventLoop, owner: self)
    }

    func deadlineTimerFired() {
        timer.fired()
        guard deadline != .distantFuture else { return }
        if deadline > .now() {
            schedule(at: deadline)
            return
        }
        guard let context else { return }
        onTimeout(phase)
        let seconds = (phase == .data ? dataTimeout : commandTimeout).nanoseconds / 1_000_000_000
        let reply = SMTPReply(
            code: 421, EnhancedStatusCode(4, 4, 2), "no input for \(seconds) seconds, closing connection")
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(reply.encoded())).whenComplete { _ in
            loopBoundContext.value.close(promise: nil)
        }
    }
}

/// The session's handle on its connection's `ClientTimeoutHandler`; hops to the event loop only on a change.
struct ClientTimer: Sendable {
    private let handler: NIOLoopBound<ClientTimeoutHandler>
    private let eventLoop: any EventLoop
    private let current: NIOLockedValueBox<ClientPhase>

    init(handler: ClientTimeoutHandler, eventLoop: any EventLoop) {
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.eventLoop = eventLoop
        self.current = NIOLockedValueBox(.command)
    }

    func enter(_ phase: ClientPhase) {
        let changed = current.withLockedValue { value -> Bool in
            defer { value = phase }
            return value != phase
        }
        guard changed else { return }
        // Sessions run on their connection's loop, so this is normally a direct call.
        if eventLoop.inEventLoop {
            handler.value.enter(phase)
        } else {
            eventLoop.execute { handler.value.enter(phase) }
        }
    }
}
