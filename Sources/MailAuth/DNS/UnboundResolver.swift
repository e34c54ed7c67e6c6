import CUnbound
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// DNS through libunbound: caching, asynchronous, DNSSEC-validating when a trust anchor is configured.
///
/// Questions go to libunbound's own worker thread; one poll thread of ours reads the answers and resumes the
/// waiting tasks, so no event loop and no task thread ever blocks on DNS. Each question has a deadline after
/// which it is cancelled and reported as a timeout.
public final class UnboundResolver: DNSResolver, Sendable {
    /// Where questions go and how long they may take.
    public struct Configuration: Sendable, Hashable {
        /// Recursive resolvers to forward to (`address` or `address@port`). Empty: the system's resolvers
        /// from `resolvConf`, or full recursion from the root when `resolvConf` is nil too.
        public var forwarders: [String]
        /// The resolver file read when `forwarders` is empty.
        public var resolvConf: String?
        /// Zones answered by given authoritative servers (`zone` → `address@port` list), as unbound's stub-zone.
        public var stubZones: [String: [String]]
        /// A DNSSEC trust anchor file (for example /usr/share/dns/root.key); answers that fail validation become
        /// server failures (temperror) instead of being believed.
        public var trustAnchorFile: String?
        /// How long one question may take.
        public var timeout: Duration

        public init(
            forwarders: [String] = [],
            resolvConf: String? = "/etc/resolv.conf",
            stubZones: [String: [String]] = [:],
            trustAnchorFile: String? = nil,
            timeout: Duration = .seconds(5)
        ) {
            self.forwarders = forwarders
            self.resolvConf = resolvConf
            self.stubZones = stubZones
            self.trustAnchorFile = trustAnchorFile
            self.timeout = timeout
        }
    }

    /// libunbound refused the configuration; the message names the setting.
    public struct SetupError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private let core: Core
    public let configuration: Configuration

    public init(_ configuration: Configuration = Configuration()) throws(SetupError) {
        self.configuration = configuration
        core = try Core(configuration)
        let core = core
        let thread = PollThread { core.pollLoop() }
        thread.start()
    }

    deinit {
        core.stop()
    }

    public func txt(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> {
        try await core.ask(name, type: 16) { rdata in
            var text: [UInt8] = []
            var index = rdata.startIndex
            while index < rdata.endIndex {
                let length = Int(rdata[index])
                let end = min(index + 1 + length, rdata.endIndex)
                text += rdata[(index + 1)..<end]
                index = end
            }
            return String(decoding: text, as: UTF8.self)
        }
    }

    public func a(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> {
        try await core.ask(name, type: 1) { $0.count == 4 ? IPAddress(bytes: $0) : nil }
    }

    public func aaaa(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> {
        try await core.ask(name, type: 28) { $0.count == 16 ? IPAddress(bytes: $0) : nil }
    }

    public func mx(_ name: String) async throws(DNSFailure) -> DNSAnswer<MXRecord> {
        try await core.ask(name, type: 15) { rdata in
            guard rdata.count > 2, let exchange = Self.wireName(rdata.dropFirst(2)) else { return nil }
            return MXRecord(preference: UInt16(rdata[0]) << 8 | UInt16(rdata[1]), exchange: exchange)
        }
    }

    public func ptr(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> {
        try await core.ask(name, type: 12) { Self.wireName($0[...]) }
    }

    /// An uncompressed wire-format name (rdata from libunbound is stored decompressed) as dotted text.
    static func wireName(_ bytes: ArraySlice<UInt8>) -> String? {
        var labels: [String] = []
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let length = Int(bytes[index])
            if length == 0 { return DNSName.normalize(labels.joined(separator: ".")) }
            guard length < 64, index + 1 + length <= bytes.endIndex else { return nil }
            labels.append(String(decoding: bytes[(index + 1)..<(index + 1 + length)], as: UTF8.self))
            index += 1 + length
        }
        return nil
    }
}

/// The libunbound context and the questions in flight. Everything that touches `pending` holds the mutex.
private final class Core: Sendable {
    /// One question waiting for its answer.
    struct Pending {
        var continuation: CheckedContinuation<Outcome, Never>
        var deadline: ContinuousClock.Instant
        var asyncID: Int32?
        var query: Unmanaged<Query>
    }

    /// What libunbound said, copied out of its result before it is freed.
    enum Outcome: Sendable {
        case answer(rcode: Int32, rdata: [[UInt8]], bogus: String?)
        case failure(DNSFailure.Kind, String)
    }

    struct State {
        var pending: [Int: Pending] = [:]
        var nextToken = 1
        var stopped = false
    }

    // The context pointer is only used through libunbound's thread-safe calls (resolve, cancel, process, fd).
    nonisolated(unsafe) let context: OpaquePointer
    let state = Mutex(State())
    let timeout: Duration

    init(_ configuration: UnboundResolver.Configuration) throws(UnboundResolver.SetupError) {
        guard let context = ub_ctx_create() else {
            throw UnboundResolver.SetupError(description: "ub_ctx_create failed")
        }
        self.context = context
        timeout = configuration.timeout
        func check(_ status: Int32, _ what: String) throws(UnboundResolver.SetupError) {
            guard status == 0 else {
                ub_ctx_delete(context)
                throw UnboundResolver.SetupError(description: "\(what): \(String(cString: ub_strerror(status)))")
            }
        }
        let servers = configuration.forwarders + configuration.stubZones.values.flatMap { $0 }
        if servers.contains(where: { $0.hasPrefix("127.") || $0.hasPrefix("::1") }) {
            // Unbound refuses to ask loopback servers unless told to; a local resolver or test server is one.
            try check(ub_ctx_set_option(context, "do-not-query-localhost:", "no"), "do-not-query-localhost")
        }
        for forwarder in configuration.forwarders {
            try check(ub_ctx_set_fwd(context, forwarder), "forwarder \(forwarder)")
        }
        if configuration.forwarders.isEmpty, let resolvConf = configuration.resolvConf {
            try check(ub_ctx_resolvconf(context, resolvConf), "resolver file \(resolvConf)")
        }
        for (zone, addresses) in configuration.stubZones.sorted(by: { $0.key < $1.key }) {
            // Unbound answers names under RFC 6761's special zones (test., private in-addr.arpa ranges) itself with
            // NXDOMAIN; a transparent local zone lets a configured stub zone there be asked.
            try check(ub_ctx_set_option(context, "local-zone:", "\(zone) transparent"), "stub zone \(zone)")
            for address in addresses {
                try check(ub_ctx_set_stub(context, zone, address, 0), "stub zone \(zone) at \(address)")
            }
        }
        if let anchor = configuration.trustAnchorFile {
            try check(ub_ctx_add_ta_file(context, anchor), "trust anchor file \(anchor)")
        }
        // Threads, not the fork libunbound would otherwise use for asynchronous queries.
        try check(ub_ctx_async(context, 1), "asynchronous mode")
    }

    func ask<Record: Sendable & Hashable>(
        _ name: String,
        type: Int32,
        decode: ([UInt8]) -> Record?
    ) async throws(DNSFailure) -> DNSAnswer<Record> {
        let normalized = DNSName.normalize(name)
        try DNSName.validate(normalized)
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            submit(normalized, type: type, continuation: continuation)
        }
        switch outcome {
        case .failure(let kind, let detail):
            throw DNSFailure(kind, name: normalized, detail: detail)
        case .answer(let rcode, let rdata, let bogus):
            if let bogus { throw DNSFailure(.serverFailure, name: normalized, detail: "DNSSEC: \(bogus)") }
            switch rcode {
            case 0:
                let records = rdata.compactMap(decode)
                return records.isEmpty ? .noData : .records(records)
            case 3:
                return .nameError
            default:
                throw DNSFailure(.serverFailure, name: normalized, detail: "rcode \(rcode)")
            }
        }
    }

    private func submit(_ name: String, type: Int32, continuation: CheckedContinuation<Outcome, Never>) {
        let deadline = ContinuousClock.now + timeout
        let token: Int? = state.withLock { state in
            guard !state.stopped else { return nil }
            let token = state.nextToken
            state.nextToken += 1
            let query = Unmanaged.passRetained(Query(core: self, token: token))
            state.pending[token] = Pending(continuation: continuation, deadline: deadline, asyncID: nil, query: query)
            return token
        }
        guard let token else {
            continuation.resume(returning: .failure(.serverFailure, "resolver is shut down"))
            return
        }
        let query = state.withLock { $0.pending[token]!.query }
        var asyncID: Int32 = 0
        let status = ub_resolve_async(context, name, type, 1, query.toOpaque(), unboundCallback, &asyncID)
        if status != 0 {
            if let pending = state.withLock({ $0.pending.removeValue(forKey: token) }) {
                pending.query.release()
                pending.continuation.resume(returning: .failure(.serverFailure, String(cString: ub_strerror(status))))
            }
            return
        }
        state.withLock { $0.pending[token]?.asyncID = asyncID }
    }

    /// Called on the poll thread, from inside `ub_process`, with libunbound's result.
    func deliver(token: Int, error: Int32, result: UnsafeMutablePointer<ub_result>?) {
        let outcome: Outcome
        if error != 0 {
            outcome = .failure(.serverFailure, String(cString: ub_strerror(error)))
        } else if let result {
            var rdata: [[UInt8]] = []
            if result.pointee.havedata != 0, let data = result.pointee.data, let lengths = result.pointee.len {
                var index = 0
                while let pointer = data[index] {
                    let length = Int(lengths[index])
                    rdata.append(Array(UnsafeRawBufferPointer(start: pointer, count: length)))
                    index += 1
                }
            }
            let bogus =
                result.pointee.bogus != 0 ? result.pointee.why_bogus.map { String(cString: $0) } ?? "bogus" : nil
            outcome = .answer(rcode: result.pointee.rcode, rdata: rdata, bogus: bogus)
        } else {
            outcome = .failure(.serverFailure, "no result")
        }
        if let result { ub_resolve_free(result) }
        if let pending = state.withLock({ $0.pending.removeValue(forKey: token) }) {
            pending.continuation.resume(returning: outcome)
        }
    }

    /// Runs on the poll thread until `stop`: processes answers and times out late questions.
    func pollLoop() {
        let descriptor = ub_fd(context)
        while true {
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            // 50 ms keeps deadlines accurate enough without waking often.
            if poll(&entry, 1, 50) > 0 { ub_process(context) }
            let now = ContinuousClock.now
            let (expired, stopped) = state.withLock { state in
                let late = state.pending.filter { state.stopped || $0.value.deadline <= now }
                for token in late.keys { state.pending.removeValue(forKey: token) }
                return (Array(late.values), state.stopped)
            }
            for pending in expired {
                // A cancelled query's callback never runs, so its retained box is released here.
                if let asyncID = pending.asyncID, ub_cancel(context, asyncID) == 0 { pending.query.release() }
                pending.continuation.resume(
                    returning: .failure(stopped ? .serverFailure : .timeout, stopped ? "resolver is shut down" : "")
                )
            }
            if stopped { break }
        }
        ub_ctx_delete(context)
    }

    func stop() {
        state.withLock { $0.stopped = true }
    }
}

/// The callback's context: which question an answer belongs to.
private final class Query {
    weak var core: Core?
    let token: Int

    init(core: Core, token: Int) {
        self.core = core
        self.token = token
    }
}

private func unboundCallback(
    _ context: UnsafeMutableRawPointer?, _ error: Int32, _ result: UnsafeMutablePointer<ub_result>?
) {
    guard let context else { return }
    let query = Unmanaged<Query>.fromOpaque(context).takeRetainedValue()
    if let core = query.core {
        core.deliver(token: query.token, error: error, result: result)
    } else if let result {
        ub_resolve_free(result)
    }
}

/// A plain POSIX thread for the poll loop (Foundation's Thread is not needed for one loop).
private final class PollThread: @unchecked Sendable {
    let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
    }

    func start() {
        var thread = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(
            &thread,
            nil,
            { argument in
                let thread = Unmanaged<PollThread>.fromOpaque(argument!).takeRetainedValue()
                thread.body()
                return nil
            },
            box
        )
        pthread_detach(thread)
    }
}
