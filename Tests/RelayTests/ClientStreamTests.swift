import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import Relay

/// The handler between a client connection and its session: order, end, errors, and when it stops reading.
@Suite("Client stream")
struct ClientStreamTests {
    /// Counts the reads the stream handler passes towards the socket.
    private final class ReadCounter: ChannelOutboundHandler, @unchecked Sendable {
        typealias OutboundIn = ByteBuffer
        // Touched on the channel's loop only.
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    /// A connection over a socketpair on its own loop, autoRead off so only the test asks for reads; returns the
    /// other end's descriptor.
    private static func connection(
        on group: MultiThreadedEventLoopGroup, counter: ReadCounter
    ) async throws -> (ClientConnection, Int32) {
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let connection = try await ClientBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .withConnectedSocket(fds[0]) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(counter)
                    return try ClientConnection.wrapping(channel)
                }
            }
        return (connection, fds[1])
    }

    private static func chunk(_ text: String) -> NIOAny { NIOAny(ByteBuffer(string: text)) }

    @Test(.timeLimit(.minutes(1)))
    func readsStopAtTheHighWatermarkAndResumeBelowTheLow() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let counter = ReadCounter()
        let (connection, other) = try await Self.connection(on: group, counter: counter)
        let loop = connection.channel.eventLoop
        // Ten chunks nobody has read yet: the channel's next read request is held.
        try await loop.submit {
            for index in 0..<10 { connection.channel.pipeline.syncOperations.fireChannelRead(Self.chunk("\(index)")) }
            connection.channel.read()
        }.get()
        #expect(try await loop.submit { counter.reads }.get() == 0)

        try await withTaskExecutorPreference(connection.executor) {
            var seen: [String] = []
            for _ in 0..<8 { seen.append(String(buffer: try #require(await connection.stream.next()))) }
            #expect(seen == (0..<8).map { "\($0)" })
            #expect(counter.reads == 0, "two chunks still wait: at the low watermark, not below")
            _ = try await connection.stream.next()
            #expect(counter.reads == 1, "one chunk left: the held read goes on")
            #expect(String(buffer: try #require(await connection.stream.next())) == "9")
            // Nothing unread: the next chunk goes straight to the waiting session.
            loop.execute { connection.channel.pipeline.syncOperations.fireChannelRead(Self.chunk("late")) }
            #expect(String(buffer: try #require(await connection.stream.next())) == "late")
        }
        close(other)
        try await connection.channel.closeFuture.get()
        try await group.shutdownGracefully()
    }

    @Test(.timeLimit(.minutes(1)))
    func bytesArriveInOrderThenTheEndThenWritesFail() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (connection, other) = try await Self.connection(on: group, counter: ReadCounter())
        try await connection.channel.setOption(.autoRead, value: true).get()
        let sent = Array("EHLO client\r\nMAIL FROM:<a@example.com>\r\n".utf8)
        #expect(write(other, sent, sent.count) == sent.count)
        // Called off the loop (the test's task has no preference): the handler moves to its loop itself.
        var received: [UInt8] = []
        while received.count < sent.count, let chunk = try await connection.stream.next() {
            received += chunk.readableBytesView
        }
        #expect(received == sent)
        try await connection.stream.write(ByteBuffer(string: "250 ok\r\n"))
        var reply = [UInt8](repeating: 0, count: 16)
        #expect(read(other, &reply, reply.count) == 8)
        close(other)
        #expect(try await connection.stream.next() == nil)
        #expect(try await connection.stream.next() == nil, "the end stays the end")
        await #expect(throws: ChannelError.self) { try await connection.stream.write(ByteBuffer(string: "x")) }
        try await group.shutdownGracefully()
    }

    @Test(.timeLimit(.minutes(1)))
    func anErrorIsThrownAfterWhatCameBeforeIt() async throws {
        struct Broken: Error {}
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (connection, other) = try await Self.connection(on: group, counter: ReadCounter())
        try await connection.channel.eventLoop.submit {
            connection.channel.pipeline.syncOperations.fireChannelRead(Self.chunk("before"))
            connection.channel.pipeline.syncOperations.fireErrorCaught(Broken())
        }.get()
        #expect(String(buffer: try #require(await connection.stream.next())) == "before")
        await #expect(throws: Broken.self) { try await connection.stream.next() }
        try await connection.channel.close()
        close(other)
        try await group.shutdownGracefully()
    }
}
