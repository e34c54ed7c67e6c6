import Foundation
import Histogram
import NIOCore
import NIOPosix
import NIOSSL
import SMTPProtocol
import Synchronization

/// What a load run sends, where, and how.
public struct LoadOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 10025
    public var messages = 1000
    public var connections = 10
    /// Messages sent on one connection before it says QUIT and a new one takes over.
    public var messagesPerConnection = 100
    /// Send MAIL, RCPT and DATA in one write when the server offers PIPELINING.
    public var pipelining = true
    /// Message sizes in bytes, used in turn.
    public var sizes = [4096]
    public var startTLS = false
    /// Skip certificate checks after STARTTLS (load tests against self-signed relays).
    public var insecureAcceptAnyCertificate = false
    public var from = "load@example.com"
    public var to = "sink@example.org"
    public var helo = "signet-load.test"
    /// The whole run gives up after this many seconds.
    public var timeoutSeconds = 600.0
    public var threads = System.coreCount
    /// Messages per second over the whole run (0: as fast as the server answers). Message i is due at
    /// start + i / rate, and its latency counts from when it was due, so a server that falls behind is not
    /// hidden by the generator waiting for it (coordinated omission).
    public var rate = 0.0

    public init() {}
}

/// The SMTP load generator: runs `options` and reports what the server answered.
public enum LoadGenerator {
    public static func run(_ options: LoadOptions) async throws -> LoadReport {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        do {
            let report = try await run(options, on: group)
            try await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func run(_ options: LoadOptions, on group: MultiThreadedEventLoopGroup) async throws -> LoadReport {
        var tls: NIOSSLContext?
        if options.startTLS {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if options.insecureAcceptAnyCertificate { configuration.certificateVerification = .none }
            tls = try NIOSSLContext(configuration: configuration)
        }
        let run = Run(
            options: options, tls: tls,
            factory: MessageFactory(
                from: options.from, to: options.to, sizes: options.sizes,
                runID: String(UInt64.random(in: 0...UInt64.max), radix: 36)
            )
        )
        let start = ContinuousClock.now
        let startedAt = Date().timeIntervalSince1970
        let deadline = NIODeadline.now() + .nanoseconds(Int64(options.timeoutSeconds * 1e9))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for _ in 0..<max(1, min(options.connections, options.messages)) {
                tasks.addTask {
                    // A slot reconnects while messages are left; a connection that got nothing done ends it,
                    // so a refusing or absent server cannot make the run spin.
                    while run.hasWork, NIODeadline.now() < deadline {
                        let tally = await run.connection(on: group.next(), deadline: deadline)
                        if tally.connectionFailed && tally.replyCodes.isEmpty { break }
                    }
                }
            }
            try await tasks.waitForAll()
        }
        let elapsed = start.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let (tally, errors) = run.totals
        return LoadReport(
            options: options, tally: tally, connectionErrors: errors, startedAt: startedAt, elapsedSeconds: seconds)
    }
}

/// State shared by the connections of one run.
final class Run: Sendable {
    let options: LoadOptions
    let tls: NIOSSLContext?
    let factory: MessageFactory
    /// When the run started, for `rate`'s schedule.
    let startNanoseconds = NIODeadline.now().uptimeNanoseconds
    private struct Shared {
        var next = 0
        var tally = ConnectionTally()
        var connectionErrors = 0
    }
    private let shared = Mutex(Shared())

    init(options: LoadOptions, tls: NIOSSLContext?, factory: MessageFactory) {
        self.options = options
        self.tls = tls
        self.factory = factory
    }

    /// When message `index` is due (uptime nanoseconds), or nil without a rate.
    func due(_ index: Int) -> UInt64? {
        guard options.rate > 0 else { return nil }
        return startNanoseconds + UInt64(Double(index) / options.rate * 1e9)
    }

    var hasWork: Bool { shared.withLock { $0.next < options.messages } }

    /// The index of the next message to send, or nil when all have been handed out.
    func claim() -> Int? {
        shared.withLock { state in
            guard state.next < options.messages else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    var totals: (ConnectionTally, Int) { shared.withLock { ($0.tally, $0.connectionErrors) } }

    /// One connection, from connect to close; its tally is merged into the run's.
    func connection(on loop: any EventLoop, deadline: NIODeadline) async -> ConnectionTally {
        let done = loop.makePromise(of: ConnectionTally.self)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(SMTPReplyDecoder()))
                    try channel.pipeline.syncOperations.addHandler(LoadConnectionHandler(run: self, done: done))
                }
            }
        var tally: ConnectionTally
        do {
            let channel = try await bootstrap.connect(host: options.host, port: options.port).get()
            // The deadline closes a stuck connection; what it had in flight counts as unanswered.
            let timer = loop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
            tally = try await done.futureResult.get()
            timer.cancel()
        } catch {
            done.fail(error)
            tally = ConnectionTally()
            tally.connectionFailed = true
            tally.error = "\(error)"
        }
        shared.withLock { state in
            state.tally.add(tally)
            if tally.connectionFailed { state.connectionErrors += 1 }
        }
        return tally
    }
}

/// Drives one SMTP connection through its transactions; all state lives on the channel's event loop.
final class LoadConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = SMTPReply
    typealias OutboundOut = ByteBuffer

    private enum Expect { case greeting, ehlo, startTLS, mail, rcpt, data, body, rset, quit }

    private let run: Run
    private let done: EventLoopPromise<ConnectionTally>
    private var tally = ConnectionTally()
    private var expected: [Expect] = [.greeting]
    private var expectedHead = 0
    private var serverPipelining = false
    private var hasTLS = false
    private var sentOnConnection = 0
    /// The message in flight: its index, start time and first refusal.
    private var current: (index: Int, start: UInt64, refusal: Int?)?
    private var finished = false

    private let mailCommand: ByteBuffer
    private let rcptCommand: ByteBuffer
    private static let dataCommand = ByteBuffer(string: "DATA\r\n")
    private static let endMark = ByteBuffer(string: ".\r\n")
    private static let rsetCommand = ByteBuffer(string: "RSET\r\n")
    private static let quitCommand = ByteBuffer(string: "QUIT\r\n")

    init(run: Run, done: EventLoopPromise<ConnectionTally>) {
        self.run = run
        self.done = done
        mailCommand = ByteBuffer(string: "MAIL FROM:<\(run.options.from)>\r\n")
        rcptCommand = ByteBuffer(string: "RCPT TO:<\(run.options.to)>\r\n")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard expectedHead < expected.count else {
            fail(context, "unexpected reply \(reply.code)")
            return
        }
        let stage = expected[expectedHead]
        expectedHead += 1
        if expectedHead == expected.count {
            expected.removeAll(keepingCapacity: true)
            expectedHead = 0
        }
        switch stage {
        case .greeting:
            guard reply.code == 220 else { return fail(context, "greeting \(reply.code)", code: reply.code) }
            sendEHLO(context)
        case .ehlo:
            guard reply.isPositive else { return fail(context, "EHLO \(reply.code)", code: reply.code) }
            let keywords = Set(
                reply.lines.dropFirst().map { $0.split(separator: " ").first.map { $0.uppercased() } ?? "" })
            serverPipelining = keywords.contains("PIPELINING")
            if run.options.startTLS && !hasTLS {
                guard keywords.contains("STARTTLS") else { return fail(context, "STARTTLS not offered") }
                send(context, ByteBuffer(string: "STARTTLS\r\n"), expecting: .startTLS)
                context.flush()
            } else {
                nextTransaction(context)
            }
        case .startTLS:
            guard reply.code == 220, let tls = run.tls else {
                return fail(context, "STARTTLS \(reply.code)", code: reply.code)
            }
            do {
                try context.pipeline.syncOperations.addHandler(
                    NIOSSLClientHandler(context: tls, serverHostname: nil), position: .first)
            } catch {
                return fail(context, "TLS: \(error)")
            }
            hasTLS = true
            sendEHLO(context)
        case .mail, .rcpt:
            if !reply.isPositive, current?.refusal == nil { current?.refusal = reply.code }
            if !usesPipelining {
                if reply.isPositive {
                    send(
                        context, stage == .mail ? rcptCommand : Self.dataCommand,
                        expecting: stage == .mail ? .rcpt : .data)
                    context.flush()
                } else {
                    finishMessage(context, code: reply.code)
                }
            }
        case .data:
            if reply.code == 354 {
                guard let message = current else { return fail(context, "354 without a message") }
                context.write(wrapOutboundOut(run.factory.header(index: message.index)), promise: nil)
                context.write(wrapOutboundOut(run.factory.body(index: message.index)), promise: nil)
                send(context, Self.endMark, expecting: .body)
                context.flush()
            } else {
                finishMessage(context, code: current?.refusal ?? reply.code)
            }
        case .body:
            finishMessage(context, code: current?.refusal ?? reply.code)
        case .rset:
            nextTransaction(context)
        case .quit:
            context.close(promise: nil)
        }
    }

    private var usesPipelining: Bool { run.options.pipelining && serverPipelining }

    private func sendEHLO(_ context: ChannelHandlerContext) {
        send(context, ByteBuffer(string: "EHLO \(run.options.helo)\r\n"), expecting: .ehlo)
        context.flush()
    }

    private func send(_ context: ChannelHandlerContext, _ buffer: ByteBuffer, expecting: Expect) {
        expected.append(expecting)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func nextTransaction(_ context: ChannelHandlerContext) {
        guard sentOnConnection < run.options.messagesPerConnection, let index = run.claim() else {
            send(context, Self.quitCommand, expecting: .quit)
            context.flush()
            return
        }
        sentOnConnection += 1
        if let due = run.due(index), due > NIODeadline.now().uptimeNanoseconds {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(due)) {
                let (handler, context) = bound.value
                handler.begin(context, index: index, start: due)
            }
        } else {
            begin(context, index: index, start: run.due(index) ?? NIODeadline.now().uptimeNanoseconds)
        }
    }

    private func begin(_ context: ChannelHandlerContext, index: Int, start: UInt64) {
        guard context.channel.isActive else { return }
        current = (index, start, nil)
        send(context, mailCommand, expecting: .mail)
        if usesPipelining {
            send(context, rcptCommand, expecting: .rcpt)
            send(context, Self.dataCommand, expecting: .data)
        }
        context.flush()
    }

    private func finishMessage(_ context: ChannelHandlerContext, code: Int) {
        guard let message = current else { return }
        current = nil
        tally.replyCodes[code, default: 0] += 1
        if (200..<300).contains(code) {
            tally.acknowledged += 1
            tally.acknowledgedBytes +=
                run.factory.header(index: message.index).readableBytes
                + run.factory.body(index: message.index).readableBytes
            let micros = (NIODeadline.now().uptimeNanoseconds - message.start) / 1000
            _ = tally.latency.record(max(1, micros))
            nextTransaction(context)
        } else {
            // A refused transaction is reset before the next; in pipelining mode its last reply (DATA's) is in.
            send(context, Self.rsetCommand, expecting: .rset)
            context.flush()
        }
    }

    private func fail(_ context: ChannelHandlerContext, _ message: String, code: Int? = nil) {
        if tally.error == nil { tally.error = message }
        if let code, current != nil {
            finishMessage(context, code: code)
        }
        tally.connectionFailed = true
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if tally.error == nil { tally.error = "\(error)" }
        tally.connectionFailed = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        if current != nil {
            tally.unanswered += 1
            tally.connectionFailed = true
            if tally.error == nil { tally.error = "connection closed with a message in flight" }
        }
        done.succeed(tally)
        context.fireChannelInactive()
    }
}
