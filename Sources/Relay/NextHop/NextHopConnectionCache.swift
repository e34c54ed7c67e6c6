import NIOConcurrencyHelpers
import NIOCore
import SMTPProtocol

/// Keeps the next-hop sessions of clients that have left, for the next client (on the same event loop if it can),
/// like Postfix's SMTP connection cache: a client that sends one message per connection then no longer pays the
/// next hop's connection set-up, greeting, EHLO and TLS handshake, and the next hop sees fewer connections.
final class NextHopConnectionCache: NextHop {
    /// How long and how many sessions are kept.
    struct Limits: Sendable {
        /// Seconds an unused session waits for a client before it is closed (`timeouts.next_hop_idle`).
        var idleSeconds: Int
        /// Seconds after its opening past which a session is closed rather than kept (`timeouts.next_hop_reuse`).
        var reuseSeconds: Int
        /// Most unused sessions kept at once, all loops together (`limits.max_idle_next_hop_connections`).
        var maxIdle: Int
    }

    private struct Idle {
        let id: UInt64
        let session: CachedNextHopSession
    }

    private struct State {
        var idle: [Idle] = []
        var nextID: UInt64 = 0
        /// Set when reload or shutdown closes the cache: the QUITs of what it kept.
        var closing: Task<Void, Never>?
    }

    private let inner: any NextHop
    private let limits: Limits
    private let metrics: RelayMetrics
    private let state = NIOLockedValueBox(State())

    init(inner: any NextHop, limits: Limits, metrics: RelayMetrics) {
        self.inner = inner
        self.limits = limits
        self.metrics = metrics
    }

    func connect(on eventLoop: (any EventLoop)?) async throws -> any NextHopSession {
        guard let eventLoop else { return try await inner.connect(on: nil) }
        let (found, gone) = take(preferring: eventLoop)
        for session in gone { await session.quit() }
        if let found {
            metrics.nextHopConnectionReused()
            return found
        }
        let session = CachedNextHopSession(try await inner.connect(on: eventLoop), loop: eventLoop, opened: .now())
        // A kept session the next hop closes (its idle timeout) leaves the cache then, not at the next look.
        session.whenClosed { [weak self, weak session] in
            guard let self, let session else { return }
            self.changingIdle { state in state.idle.removeAll { $0.session === session } }
        }
        return session
    }

    /// The most recently kept usable session, one on `loop` first (a session on another loop costs a thread hop
    /// per command, far less than a new connection); and those found broken on the way, to be closed.
    private func take(preferring loop: any EventLoop) -> (CachedNextHopSession?, [CachedNextHopSession]) {
        changingIdle { state in
            var gone: [CachedNextHopSession] = []
            for sameLoop in [true, false] {
                var index = state.idle.endIndex
                while index > state.idle.startIndex {
                    index -= 1
                    let session = state.idle[index].session
                    guard !sameLoop || session.loop === loop else { continue }
                    state.idle.remove(at: index)
                    if session.isUsable { return (session, gone) }
                    gone.append(session)
                }
            }
            return (nil, gone)
        }
    }

    func release(_ session: any NextHopSession) async {
        guard let session = session as? CachedNextHopSession, session.isUsable,
            NIODeadline.now() < session.opened + .seconds(Int64(limits.reuseSeconds))
        else {
            await session.quit()
            return
        }
        let (id, evicted) = changingIdle { state -> (UInt64?, [CachedNextHopSession]) in
            guard state.closing == nil, limits.maxIdle > 0 else { return (nil, []) }
            state.nextID += 1
            state.idle.append(Idle(id: state.nextID, session: session))
            let excess = max(0, state.idle.count - limits.maxIdle)
            defer { state.idle.removeFirst(excess) }
            return (state.nextID, state.idle.prefix(excess).map(\.session))
        }
        for old in evicted { await old.quit() }
        guard let id else {
            await session.quit()
            return
        }
        session.loop.scheduleTask(in: .seconds(Int64(limits.idleSeconds))) { self.expire(id) }
    }

    /// Runs `body` under the lock and moves `signet_next_hop_idle_connections` by the change in kept sessions.
    private func changingIdle<Result>(_ body: (inout State) -> Result) -> Result {
        state.withLockedValue { state in
            let before = state.idle.count
            defer { metrics.nextHopIdleConnections(changedBy: state.idle.count - before) }
            return body(&state)
        }
    }

    /// Closes the session kept as `id` if it is still unused.
    private func expire(_ id: UInt64) {
        let expired = changingIdle { state -> CachedNextHopSession? in
            guard let index = state.idle.firstIndex(where: { $0.id == id }) else { return nil }
            return state.idle.remove(at: index).session
        }
        if let expired { Task { await expired.quit() } }
    }

    /// Takes no more sessions and closes those it keeps, all at once; a second call waits for the same QUITs.
    func closeIdleSessions() async {
        let closing = changingIdle { state -> Task<Void, Never> in
            if let closing = state.closing { return closing }
            let kept = state.idle.map(\.session)
            state.idle = []
            let closing = Task {
                await withDiscardingTaskGroup { group in
                    for session in kept { group.addTask { await session.quit() } }
                }
            }
            state.closing = closing
            return closing
        }
        await closing.value
    }
}

/// A session as the cache hands it out: the underlying one, with the loop it runs on and when it was opened.
final class CachedNextHopSession: NextHopSession {
    let inner: any NextHopSession
    let loop: any EventLoop
    let opened: NIODeadline

    init(_ inner: any NextHopSession, loop: any EventLoop, opened: NIODeadline) {
        self.inner = inner
        self.loop = loop
        self.opened = opened
    }

    var capabilities: SMTPCapabilities { inner.capabilities }
    var isUsable: Bool { inner.isUsable }
    var hasCarriedMail: Bool { inner.hasCarriedMail }
    func whenClosed(_ callback: @escaping @Sendable () -> Void) { inner.whenClosed(callback) }

    func mail(
        from: String, parameters: [SMTPParameter], client: ClientIdentity,
        recipients: [(to: String, parameters: [SMTPParameter])]
    ) async -> [SMTPReply] {
        await inner.mail(from: from, parameters: parameters, client: client, recipients: recipients)
    }

    func recipient(to: String, parameters: [SMTPParameter]) async -> SMTPReply {
        await inner.recipient(to: to, parameters: parameters)
    }

    func message(prepending fields: [String], content: MessageContent) async -> SMTPReply {
        await inner.message(prepending: fields, content: content)
    }

    func reset() async -> SMTPReply { await inner.reset() }
    func noop() async -> SMTPReply { await inner.noop() }
    func quit() async { await inner.quit() }
}
