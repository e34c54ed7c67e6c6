import Foundation
import Logging
import NIOCore
import NIOPosix

/// `signet srs serve`: SRS look-ups over Postfix's socketmap protocol (netstrings; map names `forward` and
/// `reverse`, as postsrsd 2.x) and its older tcp_table protocol (one port per direction, as postsrsd 1.x).
public enum SRSLookupServer {
    /// The wire protocol of one listener.
    public enum WireProtocol: Sendable, Equatable {
        /// `socketmap:inet:HOST:PORT:forward` and `...:reverse` on one port.
        case socketmap
        /// `tcp:HOST:PORT`, answering `forward` or `reverse` look-ups only.
        case tcpTable(forward: Bool)
    }

    /// Largest request accepted, Postfix's default `socketmap_max_reply_size` order of magnitude.
    static let maximumRequest = 100_000

    /// Binds `address` and serves look-ups until the returned channel is closed.
    public static func bind(
        _ address: HostPort, protocol wire: WireProtocol, lookup: SRSLookup, group: any EventLoopGroup, logger: Logger,
        clock: @escaping @Sendable () -> Int = { Int(Date().timeIntervalSince1970) }
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        LookupHandler(wire: wire, lookup: lookup, logger: logger, clock: clock))
                }
            }
            .bind(host: address.host, port: address.port).get()
    }
}

/// Reads requests in either framing, answers each in order, closes on a request it cannot frame.
final class LookupHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let wire: SRSLookupServer.WireProtocol
    private let lookup: SRSLookup
    private let logger: Logger
    private let clock: @Sendable () -> Int
    private var pending = ByteBuffer()

    init(wire: SRSLookupServer.WireProtocol, lookup: SRSLookup, logger: Logger, clock: @escaping @Sendable () -> Int) {
        self.wire = wire
        self.lookup = lookup
        self.logger = logger
        self.clock = clock
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        pending.writeBuffer(&chunk)
        var out = context.channel.allocator.buffer(capacity: 128)
        var close = false
        loop: while true {
            switch nextRequest() {
            case .none: break loop
            case .some(.success(let request)):
                write(answer(request), into: &out)
            case .some(.failure(let reason)):
                logger.notice("SRS look-up: bad request, closing", metadata: ["reason": "\(reason)"])
                write(.refused(reason.description), into: &out)
                close = true
                break loop
            }
        }
        if pending.readableBytes > SRSLookupServer.maximumRequest {
            write(.refused("request too long"), into: &out)
            close = true
        }
        if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
        if close { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// A request as the protocol framed it: the map name (socketmap) or nil, and the key.
    private struct Request {
        var map: String?
        var key: String
    }

    private enum Reply {
        case answer(SRSLookup.Answer)
        /// The request could not be served (bad framing, unknown map).
        case refused(String)
    }

    private func nextRequest() -> Result<Request, RequestError>? {
        switch wire {
        case .socketmap: return nextNetstring()
        case .tcpTable: return nextLine()
        }
    }

    struct RequestError: Error, CustomStringConvertible {
        let description: String
    }

    /// `LEN:DATA,` with DATA = `map key`.
    private func nextNetstring() -> Result<Request, RequestError>? {
        let view = pending.readableBytesView
        guard let colon = view.firstIndex(of: UInt8(ascii: ":")) else {
            if view.count > 7 || !view.allSatisfy({ (0x30...0x39).contains($0) }) {
                return .failure(RequestError(description: "not a netstring"))
            }
            return nil
        }
        let digits = view[view.startIndex..<colon]
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ (0x30...0x39).contains($0) }),
            let length = Int(String(decoding: digits, as: UTF8.self)), length <= SRSLookupServer.maximumRequest
        else { return .failure(RequestError(description: "not a netstring length")) }
        let start = colon + 1
        guard view.endIndex - start >= length + 1 else { return nil }
        guard view[start + length] == UInt8(ascii: ",") else {
            return .failure(RequestError(description: "netstring without its comma"))
        }
        let data = String(decoding: view[start..<(start + length)], as: UTF8.self)
        pending.moveReaderIndex(forwardBy: start + length + 1 - view.startIndex)
        pending.discardReadBytes()
        guard let space = data.firstIndex(of: " ") else {
            return .failure(RequestError(description: "socketmap request without a map name"))
        }
        return .success(Request(map: String(data[..<space]), key: String(data[data.index(after: space)...])))
    }

    /// `get KEY\n`, KEY %-encoded.
    private func nextLine() -> Result<Request, RequestError>? {
        let view = pending.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var line = view[view.startIndex..<newline]
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        let text = String(decoding: line, as: UTF8.self)
        pending.moveReaderIndex(forwardBy: newline + 1 - view.startIndex)
        pending.discardReadBytes()
        guard text.hasPrefix("get "), let key = Self.percentDecoded(text.dropFirst(4)) else {
            return .failure(RequestError(description: "not a tcp_table get request"))
        }
        return .success(Request(map: nil, key: key))
    }

    private func answer(_ request: Request) -> Reply {
        let now = clock()
        let forward: Bool
        switch (wire, request.map) {
        case (.tcpTable(let isForward), _): forward = isForward
        case (.socketmap, "forward"): forward = true
        case (.socketmap, "reverse"): forward = false
        case (.socketmap, let other): return .refused("unknown map '\(other ?? "")': use forward or reverse")
        }
        let answer = forward ? lookup.forward(request.key, now: now) : lookup.reverse(request.key, now: now)
        logger.debug(
            "SRS look-up",
            metadata: ["map": "\(forward ? "forward" : "reverse")", "key": "\(request.key)", "answer": "\(answer)"])
        return .answer(answer)
    }

    private func write(_ reply: Reply, into out: inout ByteBuffer) {
        switch wire {
        case .socketmap:
            let text: String
            switch reply {
            case .answer(.found(let value)): text = "OK " + value
            case .answer(.notFound(let reason)): text = "NOTFOUND " + reason
            case .answer(.temporary(let reason)): text = "TEMP " + reason
            case .refused(let reason): text = "PERM " + reason
            }
            out.writeString("\(text.utf8.count):")
            out.writeString(text)
            out.writeString(",")
        case .tcpTable:
            switch reply {
            case .answer(.found(let value)): out.writeString("200 " + Self.percentEncoded(value) + "\n")
            case .answer(.notFound(let reason)): out.writeString("500 " + Self.percentEncoded(reason) + "\n")
            case .answer(.temporary(let reason)): out.writeString("400 " + Self.percentEncoded(reason) + "\n")
            case .refused(let reason): out.writeString("500 " + Self.percentEncoded(reason) + "\n")
            }
        }
    }

    /// tcp_table(5) encoding: `%XX` for white space, control and non-ASCII bytes, and `%` itself.
    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte <= 0x20 || byte >= 0x7f || byte == UInt8(ascii: "%") {
                out +=
                    "%" + String(byte >> 4, radix: 16, uppercase: true) + String(byte & 15, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = utf8.popFirst().flatMap(hexValue), let low = utf8.popFirst().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
