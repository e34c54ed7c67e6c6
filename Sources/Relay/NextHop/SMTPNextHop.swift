import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SMTPProtocol

/// The next hop over SMTP: connects, greets with EHLO, upgrades with STARTTLS as `tls` says, and relays
/// transactions, pipelining where it can.
struct SMTPNextHop: NextHop {
    let address: HostPort
    let hostname: String
    let group: any EventLoopGroup
    let timeouts: RelayConfiguration.Timeouts
    let tls: NextHopTLSPolicy
    var forwardClientIdentity = RelayConfiguration.ClientIdentityForwarding.none
    var logger = Logger(label: "signet.next-hop")

    func connect(on eventLoop: (any EventLoop)?) async throws -> any NextHopSession {
        do {
            return try await connect(startTLS: tls.context != nil, on: eventLoop)
        } catch let error as OpportunisticTLSFailure {
            // Postfix's `may` does the same: a failed handshake is retried once in plain text.
            tls.logger.warning(
                "TLS with the next hop failed, retrying without it (next_hop_tls.mode: opportunistic)",
                metadata: ["next_hop": "\(address)", "error": "\(error.underlying)"])
            return try await connect(startTLS: false, on: eventLoop)
        }
    }

    private func connect(startTLS: Bool, on eventLoop: (any EventLoop)?) async throws -> any NextHopSession {
        let collector = NIOLockedValueBox<NIOLoopBound<ReplyCollector>?>(nil)
        let channel = try await ClientBootstrap(group: eventLoop ?? group)
            .connectTimeout(.seconds(Int64(timeouts.nextHopConnect)))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Only replies come back, a few hundred bytes; NIO's adaptive default grows to 4 KiB and more per
            // connection, and there is one next-hop connection per client connection.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 1024))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ReplyCollector()
                    try channel.pipeline.syncOperations.addHandlers([
                        ByteToMessageHandler(SMTPReplyDecoder()), handler,
                    ])
                    collector.withLockedValue { $0 = NIOLoopBound(handler, eventLoop: channel.eventLoop) }
                }
            }
            .connect(host: address.host, port: address.port)
            .get()
        guard let bound = collector.withLockedValue({ $0 }) else {
            channel.close(promise: nil)
            throw NextHopError("the next hop's channel was not set up")
        }
        let connection = SMTPConnection(channel: channel, collector: bound, timeouts: timeouts)
        do {
            let greeting = try await connection.exchange([], replies: 1, timeout: timeouts.nextHopCommand)[0]
            guard greeting.code == 220 else { throw NextHopError("the next hop greeted with \(greeting)") }
            var ehlo = ByteBuffer()
            SMTPCommand.ehlo(hostname).write(into: &ehlo)
            var reply = try await connection.exchange([ehlo], replies: 1, timeout: timeouts.nextHopCommand)[0]
            var capabilities = SMTPCapabilities()
            if reply.code == 250 {
                capabilities = SMTPCapabilities(ehloReply: reply)
                if startTLS, let context = tls.context {
                    capabilities = try await upgrade(connection, context: context, offered: capabilities)
                }
            } else if tls.mode == .required {
                throw NextHopTLSPolicy.required("the next hop refused EHLO: \(reply)")
            } else {
                var helo = ByteBuffer()
                SMTPCommand.helo(hostname).write(into: &helo)
                reply = try await connection.exchange([helo], replies: 1, timeout: timeouts.nextHopCommand)[0]
                guard reply.code == 250 else { throw NextHopError("the next hop refused EHLO and HELO: \(reply)") }
            }
            return SMTPNextHopSession(
                connection: connection, capabilities: capabilities, hostname: hostname, timeouts: timeouts,
                forwardClientIdentity: forwardClientIdentity, logger: logger)
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }
}

/// A next hop failure, for logs; `reply` is what the client is told when the generic 451 4.4.1 would mislead.
struct NextHopError: Error, CustomStringConvertible {
    var description: String
    var reply: SMTPReply?
    init(_ description: String, reply: SMTPReply? = nil) {
        self.description = description
        self.reply = reply
    }
}

/// One downstream connection: writes commands and waits for their replies, in order.
final class SMTPConnection: Sendable {
    let channel: any Channel
    let collector: NIOLoopBound<ReplyCollector>
    private let timeouts: RelayConfiguration.Timeouts

    init(channel: any Channel, collector: NIOLoopBound<ReplyCollector>, timeouts: RelayConfiguration.Timeouts) {
        self.channel = channel
        self.collector = collector
        self.timeouts = timeouts
    }

    /// Writes `payload`, then waits for `replies` replies; a timeout closes the connection (its state is unknown).
    func exchange(_ payload: [ByteBuffer], replies: Int, timeout seconds: Int) async throws -> [SMTPReply] {
        // Sessions run on their connection's loop, which is also this channel's: no hop to get there, and the
        // collector resumes the session itself, without a promise and a future in between.
        if channel.eventLoop.inEventLoop {
            Self.send(payload, on: channel)
            return try await collector.value.replies(replies, timeout: seconds)
        }
        let channel = self.channel
        let collector = self.collector
        return try await channel.eventLoop.flatSubmit {
            Self.send(payload, on: channel)
            return collector.value.expect(replies, on: channel.eventLoop, timeout: seconds)
        }.get()
    }

    /// On the channel's loop: the whole payload in one flush.
    private static func send(_ payload: [ByteBuffer], on channel: any Channel) {
        for buffer in payload { channel.write(buffer, promise: nil) }
        if !payload.isEmpty { channel.flush() }
    }

    /// EHLO (HELO when refused); what the next hop offers.
    func greet(as hostname: String, timeout: Int) async throws -> SMTPCapabilities {
        var reply = try await exchange([SMTPCommand.ehlo(hostname).encoded()], replies: 1, timeout: timeout)[0]
        if reply.code == 250 { return SMTPCapabilities(ehloReply: reply) }
        reply = try await exchange([SMTPCommand.helo(hostname).encoded()], replies: 1, timeout: timeout)[0]
        guard reply.code == 250 else { throw NextHopError("the next hop refused EHLO and HELO: \(reply)") }
        return SMTPCapabilities()
    }

    /// Writes pieces with backpressure: each waits until the previous ones are handed to the kernel.
    func write(_ piece: ByteBuffer, flush: Bool) async throws {
        if flush {
            try await channel.writeAndFlush(piece)
        } else {
            channel.write(piece, promise: nil)
        }
    }

    var isActive: Bool { channel.isActive }

    func close() {
        channel.close(promise: nil)
    }
}

/// Hands replies to whoever waits for them, in order; fails every waiter when the connection goes.
final class ReplyCollector: ChannelInboundHandler, DeadlineTimerOwner {
    typealias InboundIn = SMTPReply

    /// A group of replies someone waits for: how many, those that came, who gets them, and when the next hop's
    /// time for them is up.
    private struct Waiter {
        var count: Int
        var replies: [SMTPReply]
        let completion: Completion
        let deadline: NIODeadline
        let seconds: Int
    }

    /// A session on the loop waits as a continuation; anyone else gets a future.
    private enum Completion {
        case promise(EventLoopPromise<[SMTPReply]>)
        case continuation(UnsafeContinuation<[SMTPReply], any Error>)

        func succeed(_ replies: [SMTPReply]) {
            switch self {
            case .promise(let promise): promise.succeed(replies)
            case .continuation(let continuation): continuation.resume(returning: replies)
            }
        }

        func fail(_ error: any Error) {
            switch self {
            case .promise(let promise): promise.fail(error)
            case .continuation(let continuation): continuation.resume(throwing: error)
            }
        }
    }

    private var waiting = CircularBuffer<Waiter>()
    private var arrived = CircularBuffer<SMTPReply>()
    private var failure: (any Error)?
    private var context: ChannelHandlerContext?
    /// Watches the oldest waiter's deadline: one task per connection rather than one per exchange.
    private var timer = DeadlineTimer()

    /// Replies that arrived before anyone asked for them.
    var unclaimedReplies: Int { arrived.count }

    /// The next `count` replies, in order; the connection is closed if they take longer than `seconds`.
    func expect(_ count: Int, on loop: any EventLoop, timeout seconds: Int) -> EventLoopFuture<[SMTPReply]> {
        switch take(count) {
        case .done(let result):
            return loop.makeCompletedFuture(result)
        case .partly(let replies):
            let promise = loop.makePromise(of: [SMTPReply].self)
            wait(for: count, having: replies, .promise(promise), timeout: seconds)
            return promise.futureResult
        }
    }

    /// The same as `expect`, for a caller on the channel's loop.
    func replies(_ count: Int, timeout seconds: Int) async throws -> [SMTPReply] {
        switch take(count) {
        case .done(let result):
            return try result.get()
        case .partly(let replies):
            // The closure runs at once, on the loop: no reply can come before the waiter is queued.
            return try await withUnsafeThrowingContinuation { continuation in
                wait(for: count, having: replies, .continuation(continuation), timeout: seconds)
            }
        }
    }

    private enum Taken {
        case done(Result<[SMTPReply], any Error>)
        case partly([SMTPReply])
    }

    /// The replies already here for a new group of `count`, and whether that settles it.
    private func take(_ count: Int) -> Taken {
        var replies: [SMTPReply] = []
        replies.reserveCapacity(count)
        while replies.count < count, waiting.isEmpty, let reply = arrived.popFirst() { replies.append(reply) }
        if replies.count == count { return .done(.success(replies)) }
        if let failure { return .done(.failure(failure)) }
        return .partly(replies)
    }

    private func wait(for count: Int, having replies: [SMTPReply], _ completion: Completion, timeout seconds: Int) {
        let deadline = NIODeadline.now() + .seconds(Int64(seconds))
        waiting.append(
            Waiter(count: count, replies: replies, completion: completion, deadline: deadline, seconds: seconds))
        if waiting.count == 1 { schedule(at: deadline) }
    }

    func fail(_ error: any Error) {
        if failure == nil { failure = error }
        while let waiter = waiting.popFirst() { waiter.completion.fail(error) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard !waiting.isEmpty else {
            arrived.append(reply)
            // Unasked, 421 is the next hop closing (Postfix's idle timeout): this connection is done.
            if reply.code == 421 { context.close(promise: nil) }
            return
        }
        waiting[waiting.startIndex].replies.append(reply)
        if waiting[waiting.startIndex].replies.count == waiting[waiting.startIndex].count, let done = waiting.popFirst()
        {
            if let next = waiting.first { schedule(at: next.deadline) }
            done.completion.succeed(done.replies)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer.cancel()
        fail(NextHopError("the next hop closed the connection"))
        context.fireChannelInactive()
    }

    private func schedule(at deadline: NIODeadline) {
        guard let context else { return }
        timer.schedule(at: deadline, on: context.eventLoop, owner: self)
    }

    func deadlineTimerFired() {
        timer.fired()
        guard let oldest = waiting.first else { return }
        guard oldest.deadline <= .now() else {
            schedule(at: oldest.deadline)
            return
        }
        fail(NextHopError("timed out after \(oldest.seconds) s"))
        context?.close(promise: nil)
    }
}

/// Transactions over one downstream connection.
final class SMTPNextHopSession: NextHopSession {
    private let connection: SMTPConnection
    private let hostname: String
    private let timeouts: RelayConfiguration.Timeouts
    private let forwardClientIdentity: RelayConfiguration.ClientIdentityForwarding
    private let logger: Logger
    private let broken = NIOLockedValueBox(false)
    private let state: NIOLockedValueBox<State>

    /// What changes over the session: XCLIENT makes the next hop greet anew.
    private struct State {
        var capabilities: SMTPCapabilities
        /// The identity the last XCLIENT gave, so it is sent again only when the client changes it.
        var identified: ClientIdentity?
        /// The XCLIENT attributes the next hop offered before it took an XCLIENT on this session; from then on the
        /// session speaks for that client, and Postfix no longer lists XCLIENT in its EHLO reply.
        var xclientTaken: [String]?
        var warnedUnsupported = false
        var carriedMail = false
    }

    init(
        connection: SMTPConnection, capabilities: SMTPCapabilities, hostname: String,
        timeouts: RelayConfiguration.Timeouts, forwardClientIdentity: RelayConfiguration.ClientIdentityForwarding,
        logger: Logger
    ) {
        self.connection = connection
        self.hostname = hostname
        self.timeouts = timeouts
        self.forwardClientIdentity = forwardClientIdentity
        self.logger = logger
        self.state = NIOLockedValueBox(State(capabilities: capabilities))
    }

    var capabilities: SMTPCapabilities { state.withLockedValue { $0.capabilities } }

    var isUsable: Bool { !broken.withLockedValue { $0 } && connection.isActive }

    var hasCarriedMail: Bool { state.withLockedValue { $0.carriedMail } }

    private func command(_ command: SMTPCommand, what: String) async -> SMTPReply {
        do {
            return try await connection.exchange([command.encoded()], replies: 1, timeout: timeouts.nextHopCommand)[0]
        } catch {
            markBroken()
            return NextHopReplies.lost("\(what): \(error)")
        }
    }

    private func markBroken() {
        broken.withLockedValue { $0 = true }
        connection.close()
    }

    func mail(
        from: String, parameters: [SMTPParameter], client: ClientIdentity,
        recipients: [(to: String, parameters: [SMTPParameter])]
    ) async -> [SMTPReply] {
        var commands = [SMTPCommand.mail(from: from, parameters: parameters)]
        commands += recipients.map { SMTPCommand.rcpt(to: $0.to, parameters: $0.parameters) }
        var prefix = 0
        switch forwardClientIdentity {
        case .none:
            break
        case .xclient:
            if let failure = await sendXCLIENT(for: client) {
                return Array(repeating: failure, count: commands.count)
            }
        case .xforward:
            // Postfix keeps XFORWARD attributes until the transaction ends, so they go before every MAIL.
            if let names = offered(\.xforward, "XFORWARD") {
                commands.insert(SMTPCommand.xforward(client.attributes(offered: names, xforward: true)), at: 0)
                prefix = 1
            }
        }
        do {
            var replies: [SMTPReply]
            let pipelining = state.withLockedValue { state in
                state.carriedMail = true
                return state.capabilities.pipelining
            }
            if pipelining {
                // One write, one round trip for the whole group.
                var group = ByteBufferAllocator().buffer(capacity: 128 * commands.count)
                for command in commands { command.write(into: &group) }
                replies = try await connection.exchange(
                    [group], replies: commands.count, timeout: timeouts.nextHopCommand)
            } else {
                replies = []
                for command in commands {
                    replies += try await connection.exchange(
                        [command.encoded()], replies: 1, timeout: timeouts.nextHopCommand)
                }
            }
            if prefix == 1 && !replies[0].isPositive {
                logger.warning("the next hop refused XFORWARD", metadata: ["reply": "\(replies[0])"])
            }
            return Array(replies.dropFirst(prefix))
        } catch {
            markBroken()
            return Array(repeating: NextHopReplies.lost("MAIL: \(error)"), count: commands.count - prefix)
        }
    }

    /// The attribute names the next hop offers for this extension, or nil (logged once) when it offers none.
    private func offered(_ names: KeyPath<SMTPCapabilities, [String]?>, _ what: String) -> [String]? {
        let (list, warn) = state.withLockedValue { state -> ([String]?, Bool) in
            let list = state.capabilities[keyPath: names]
            defer { if list == nil { state.warnedUnsupported = true } }
            return (list, list == nil && !state.warnedUnsupported)
        }
        if warn {
            logger.warning(
                "forward_client_identity is \(what.lowercased()) but the next hop does not offer \(what) to Signet (Postfix: smtpd_authorized_\(what.lowercased())_hosts)"
            )
        }
        return list
    }

    /// XCLIENT, then EHLO again as Postfix requires; nil when the transaction may go on.
    private func sendXCLIENT(for client: ClientIdentity) async -> SMTPReply? {
        let (identified, taken) = state.withLockedValue { ($0.identified, $0.xclientTaken) }
        guard identified != client else { return nil }
        // A session that has taken another client's XCLIENT (a kept one, or a client that restated itself) speaks
        // for that client: unless the next hop takes this client's too, it must not carry this mail. It is closed
        // then, and the session's MAIL goes again on a new connection.
        guard let names = taken ?? offered(\.xclient, "XCLIENT") else { return nil }
        do {
            let command = SMTPCommand.xclient(client.attributes(offered: names, xforward: false)).encoded()
            let reply = try await connection.exchange([command], replies: 1, timeout: timeouts.nextHopCommand)[0]
            guard reply.code == 220 else {
                if taken != nil {
                    markBroken()
                    return NextHopReplies.lost("the next hop refused XCLIENT for another client: \(reply)")
                }
                // Refused: the session is unchanged, and the mail still flows with Signet as the client.
                logger.warning("the next hop refused XCLIENT", metadata: ["reply": "\(reply)"])
                state.withLockedValue { $0.identified = client }
                return nil
            }
            // Postfix takes the HELO name from the EHLO that follows XCLIENT, so that EHLO speaks for the client.
            let capabilities = try await connection.greet(
                as: client.helo ?? hostname, timeout: timeouts.nextHopCommand)
            state.withLockedValue {
                $0.capabilities = capabilities
                $0.identified = client
                $0.xclientTaken = names
            }
            return nil
        } catch {
            markBroken()
            return NextHopReplies.lost("XCLIENT: \(error)")
        }
    }

    func recipient(to: String, parameters: [SMTPParameter]) async -> SMTPReply {
        await command(.rcpt(to: to, parameters: parameters), what: "RCPT")
    }

    func reset() async -> SMTPReply {
        await command(.rset, what: "RSET")
    }

    func noop() async -> SMTPReply {
        await command(.noop, what: "NOOP")
    }

    func message(prepending fields: [String], content: MessageContent) async -> SMTPReply {
        let fieldBytes = fields.reduce(0) { $0 + $1.utf8.count }
        var head = ByteBufferAllocator().buffer(capacity: fieldBytes + 32)
        do {
            if capabilities.chunking {
                // BDAT needs no dot-stuffing and no scan for a terminator: the bytes go out as they are, the
                // command and the new fields in one buffer.
                SMTPCommand.bdat(size: fieldBytes + content.count, last: true).write(into: &head)
                for field in fields { head.writeString(field) }
                try await connection.write(head, flush: false)
                try await content.forEachPiece { piece in try await self.connection.write(piece, flush: true) }
            } else {
                let go = try await connection.exchange(
                    [SMTPCommand.data.encoded()], replies: 1, timeout: timeouts.nextHopCommand)[0]
                guard go.code == 354 else { return go }
                for field in fields { head.writeString(field) }
                var stuffer = DotStuffer()
                var out: [ByteBuffer] = []
                stuffer.stuff(head, into: &out)
                for piece in out { try await connection.write(piece, flush: false) }
                try await content.forEachPiece { piece in
                    var stuffed: [ByteBuffer] = []
                    stuffer.stuff(piece, into: &stuffed)
                    for part in stuffed { try await self.connection.write(part, flush: false) }
                    try await self.connection.write(ByteBuffer(), flush: true)
                }
                var end: [ByteBuffer] = []
                stuffer.finish(into: &end)
                for part in end { try await connection.write(part, flush: false) }
            }
            connection.channel.flush()
            return try await connection.exchange([], replies: 1, timeout: timeouts.nextHopDataEnd)[0]
        } catch {
            markBroken()
            return NextHopReplies.lost("sending the message: \(error)")
        }
    }

    func whenClosed(_ callback: @escaping @Sendable () -> Void) {
        connection.channel.closeFuture.whenComplete { _ in callback() }
    }

    func quit() async {
        if isUsable { _ = await command(.quit, what: "QUIT") }
        connection.close()
    }
}
