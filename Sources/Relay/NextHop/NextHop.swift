import NIOCore
import SMTPProtocol

/// Where relayed mail goes: one SMTP session's worth of transactions. The inbound session drives it and hands
/// its replies back to the client unchanged (before-queue semantics).
protocol NextHopSession: AnyObject, Sendable {
    /// What the next hop supports, for the EHLO reply Signet gives its client.
    var capabilities: SMTPCapabilities { get }
    /// Starts a transaction for `client` (which the next hop may be told of with XCLIENT or XFORWARD), with
    /// `recipients` pipelined behind MAIL when the next hop offers PIPELINING; the replies to MAIL and to each
    /// recipient, in order.
    func mail(
        from: String, parameters: [SMTPParameter], client: ClientIdentity,
        recipients: [(to: String, parameters: [SMTPParameter])]
    ) async -> [SMTPReply]
    func recipient(to: String, parameters: [SMTPParameter]) async -> SMTPReply
    /// Sends one whole message (signature fields first) and returns the next hop's reply to its end.
    func message(prepending fields: [String], content: MessageContent) async -> SMTPReply
    func reset() async -> SMTPReply
    /// NOOP: keeps a connection that waits for the client's message from reaching the next hop's idle timeout.
    func noop() async -> SMTPReply
    /// Whether the session can take another transaction.
    var isUsable: Bool { get }
    /// Whether a MAIL has gone over this session (a kept one's earlier client's, or this client's): a session
    /// that did and then fails at MAIL was most likely closed by the next hop while idle, worth one retry.
    var hasCarriedMail: Bool { get }
    /// Calls `callback` once the connection has closed, by either side (at once if it already has).
    func whenClosed(_ callback: @escaping @Sendable () -> Void)
    func quit() async
}

/// Opens next-hop sessions.
protocol NextHop: Sendable {
    /// `eventLoop`: the client connection's loop, so both sides of a session run on one thread (nil: any loop).
    func connect(on eventLoop: (any EventLoop)?) async throws -> any NextHopSession
    /// Takes back a session its client is done with, with no transaction open: closed, or kept for the next client.
    func release(_ session: any NextHopSession) async
    /// Closes the sessions kept for later clients (on reload and shutdown).
    func closeIdleSessions() async
}

extension NextHopSession {
    /// MAIL alone.
    func mail(from: String, parameters: [SMTPParameter], client: ClientIdentity) async -> SMTPReply {
        await mail(from: from, parameters: parameters, client: client, recipients: [])[0]
    }
}

extension NextHop {
    func connect() async throws -> any NextHopSession { try await connect(on: nil) }
    func release(_ session: any NextHopSession) async { await session.quit() }
    func closeIdleSessions() async {}
}

/// Replies Signet gives on the next hop's behalf when it cannot be reached or fails mid-way: all transient, so
/// the client keeps the message and retries.
enum NextHopReplies {
    static func unavailable(_ why: String) -> SMTPReply {
        SMTPReply(code: 451, EnhancedStatusCode(4, 4, 1), "next hop unavailable, try again later (\(why))")
    }
    static func lost(_ why: String) -> SMTPReply {
        SMTPReply(code: 451, EnhancedStatusCode(4, 4, 2), "connection to the next hop lost, try again later (\(why))")
    }
    static func timedOut(_ what: String) -> SMTPReply {
        SMTPReply(
            code: 451, EnhancedStatusCode(4, 4, 2), "the next hop did not answer \(what) in time, try again later")
    }
}
