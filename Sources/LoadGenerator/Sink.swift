import Foundation
import NIOCore
import NIOPosix
import SMTPProtocol
import Synchronization

/// What the sink listens on and how it answers.
public struct SinkOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 10026
    public var threads = System.coreCount
    /// Refuse every n-th message at the end of data (0: accept all), with `refusalCode`.
    public var refuseEvery = 0
    public var refusalCode = 554
    /// Keep every n-th message for signature verification (0: keep none).
    public var sampleEvery = 0
    /// Keep at most this many sampled messages.
    public var maximumSamples = 100
    /// Offer CHUNKING (BDAT), as Postfix's smtpd does by default since 3.4.
    public var chunking = true

    public init() {}
}

/// Counters of a running sink; read at any time.
public final class SinkCounters: Sendable {
    let connections = Atomic<Int>(0)
    /// Messages whose data started (DATA answered 354).
    let started = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    /// Messages whose data ended: numbers them for `refuseEvery` across connections.
    let ended = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    /// When the last message was answered (Unix time, µs), so a run's duration does not include the wait for
    /// the sink to notice it is done and exit.
    let lastAnswer = Atomic<Int64>(0)
    let samples = Mutex<[Data]>([])

    /// Messages answered at the end of data, accepted or refused.
    public var answered: Int { accepted.load(ordering: .relaxed) + refused.load(ordering: .relaxed) }

    /// A snapshot for the report.
    public func summary(verification: SinkSummary.Verification? = nil) -> SinkSummary {
        let lastAnswer = lastAnswer.load(ordering: .relaxed)
        return SinkSummary(
            connections: connections.load(ordering: .relaxed), accepted: accepted.load(ordering: .relaxed),
            refused: refused.load(ordering: .relaxed), bytes: bytes.load(ordering: .relaxed),
            lastAnswerAt: lastAnswer > 0 ? Double(lastAnswer) / 1e6 : nil,
            verification: verification)
    }

    /// The sampled messages, as received (dot-unstuffed).
    public var sampledMessages: [Data] { samples.withLock { $0 } }
}

/// What a sink saw, printed as text or JSON when it stops.
public struct SinkSummary: Codable, Sendable {
    /// DKIM verification of the sampled messages.
    public struct Verification: Codable, Sendable {
        public var messages: Int
        /// Messages with at least one signature, every one of which verified.
        public var passed: Int
        public var failed: Int
        public var failures: [String]

        public init(messages: Int, passed: Int, failed: Int, failures: [String]) {
            self.messages = messages
            self.passed = passed
            self.failed = failed
            self.failures = failures
        }
    }
    public var connections: Int
    public var accepted: Int
    public var refused: Int
    public var bytes: Int
    /// When the last message was answered, in seconds since 1970 (nil: none was).
    public var lastAnswerAt: Double?
    public var verification: Verification?

    /// One or two lines for a person.
    public var text: String {
        var out = "sink: \(accepted) accepted, \(refused) refused, \(bytes) bytes, \(connections) connections"
        if let verification {
            out +=
                "\nverified \(verification.messages) sampled messages: \(verification.passed) passed, \(verification.failed) failed"
            for failure in verification.failures.prefix(5) { out += "\n  \(failure)" }
        }
        return out
    }
}

/// A fast SMTP sink: answers every command at once, counts what arrives and discards it.
public final class SinkServer: Sendable {
    public let counters: SinkCounters
    public let options: SinkOptions
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The port actually bound (useful with port 0).
    public var port: Int { channel.localAddress?.port ?? options.port }

    public static func start(_ options: SinkOptions) async throws -> SinkServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.threads))
        let counters = SinkCounters()
        do {
            let channel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            SinkHandler(options: options, counters: counters))
                    }
                }
                .bind(host: options.host, port: options.port).get()
            return SinkServer(options: options, group: group, channel: channel, counters: counters)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private init(options: SinkOptions, group: MultiThreadedEventLoopGroup, channel: any Channel, counters: SinkCounters)
    {
        self.options = options
        self.group = group
        self.channel = channel
        self.counters = counters
    }

    public func stop() async {
        try? await channel.close()
        try? await group.shutdownGracefully()
    }
}

/// One sink connection: frames commands and data with the relay's own framer and answers in batches.
final class SinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let options: SinkOptions
    private let counters: SinkCounters
    private var framer = SMTPServerFramer(maximumLineLength: 4096)
    private var input: ByteBuffer?
    private var out = ByteBuffer()
    private var sample: ByteBuffer?
    private var closeAfterFlush = false
    /// Between the first BDAT of a message and its LAST chunk.
    private var inChunkedMessage = false

    init(options: SinkOptions, counters: SinkCounters) {
        self.options = options
        self.counters = counters
    }

    func channelActive(context: ChannelHandlerContext) {
        counters.connections.add(1, ordering: .relaxed)
        out.writeStaticString("220 signet-load.sink ESMTP\r\n")
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        out.clear()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if input == nil || input!.readableBytes == 0 {
            input = bytes
        } else {
            input!.writeBuffer(&bytes)
        }
        while let frame = framer.next(from: &input!) {
            handle(frame)
            if closeAfterFlush { break }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Replies to a pipelined batch go out in one write.
        if out.readableBytes > 0 {
            let flushed = context.writeAndFlush(wrapOutboundOut(out))
            out = context.channel.allocator.buffer(capacity: 256)
            if closeAfterFlush {
                let channel = context.channel
                flushed.whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    private func handle(_ frame: SMTPServerFramer.Frame) {
        switch frame {
        case .command(let command):
            switch command {
            case .ehlo:
                out.writeStaticString("250-signet-load.sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 0\r\n")
                if options.chunking { out.writeStaticString("250-CHUNKING\r\n") }
                out.writeStaticString("250 ENHANCEDSTATUSCODES\r\n")
            case .helo: out.writeStaticString("250 signet-load.sink\r\n")
            case .mail: out.writeStaticString("250 2.1.0 Ok\r\n")
            case .rcpt: out.writeStaticString("250 2.1.5 Ok\r\n")
            case .data:
                startMessage()
                framer.startMessageData()
                out.writeStaticString("354 End data with <CR><LF>.<CR><LF>\r\n")
            case .bdat where options.chunking:
                // The framer reads the chunk by itself; the reply comes at its end.
                if !inChunkedMessage {
                    inChunkedMessage = true
                    startMessage()
                }
            case .rset, .noop: out.writeStaticString("250 2.0.0 Ok\r\n")
            case .quit:
                out.writeStaticString("221 2.0.0 Bye\r\n")
                closeAfterFlush = true
            case .starttls: out.writeStaticString("454 4.7.0 TLS not available\r\n")
            default: out.writeStaticString("502 5.5.1 Not implemented\r\n")
            }
        case .invalidCommand, .lineTooLong:
            out.writeStaticString("500 5.5.2 Syntax error\r\n")
        case .messageData(var data):
            counters.bytes.add(data.readableBytes, ordering: .relaxed)
            if sample != nil { sample!.writeBuffer(&data) }
        case .chunkData(var data):
            // A refused BDAT's chunk (CHUNKING off) is read and dropped.
            guard inChunkedMessage else { break }
            counters.bytes.add(data.readableBytes, ordering: .relaxed)
            if sample != nil { sample!.writeBuffer(&data) }
        case .chunkEnd(let last):
            guard inChunkedMessage else { break }
            if last {
                inChunkedMessage = false
                endMessage()
            } else {
                out.writeStaticString("250 2.0.0 Ok: chunk received\r\n")
            }
        case .messageEnd:
            endMessage()
        case .authenticationResponse:
            out.writeStaticString("502 5.5.1 Not implemented\r\n")
        }
    }

    private func startMessage() {
        let number = counters.started.add(1, ordering: .relaxed).newValue
        if options.sampleEvery > 0 && number % options.sampleEvery == 0 { sample = ByteBuffer() }
    }

    private func endMessage() {
        let number = counters.ended.add(1, ordering: .relaxed).newValue
        if options.refuseEvery > 0 && number % options.refuseEvery == 0 {
            counters.refused.add(1, ordering: .relaxed)
            out.writeString(
                "\(options.refusalCode) \(options.refusalCode / 100).7.1 Refused by signet-load sink\r\n")
        } else {
            counters.accepted.add(1, ordering: .relaxed)
            out.writeStaticString("250 2.0.0 Ok: queued\r\n")
        }
        counters.lastAnswer.store(Int64(Date().timeIntervalSince1970 * 1e6), ordering: .relaxed)
        if let kept = sample {
            sample = nil
            counters.samples.withLock { samples in
                if samples.count < options.maximumSamples { samples.append(Data(kept.readableBytesView)) }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
