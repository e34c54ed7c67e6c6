import NIOHTTP1

/// One condition `/readyz` checks, as the checked component reports it.
public struct ReadinessCondition: Sendable, Equatable {
    public var name: String
    public var ready: Bool
    /// Why, in a few words (shown in the `/readyz` body, never secret).
    public var detail: String

    public init(name: String, ready: Bool, detail: String) {
        self.name = name
        self.ready = ready
        self.detail = detail
    }
}

/// Something whose readiness `/readyz` reports: the relay implements it (listening, signer pool, next hop).
public protocol ReadinessCheck: Sendable {
    /// Every condition, each checked now (bounded in time by the implementer).
    func readiness() async -> [ReadinessCondition]
}

/// An HTTP answer before it is encoded.
public struct HTTPAnswer: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: [UInt8]

    public init(status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    init(_ status: HTTPResponseStatus, _ text: String) {
        self.init(status: status, body: Array(text.utf8))
    }
}

/// What the observability listener serves, apart from the socket: `/metrics`, `/healthz`, `/readyz`,
/// `/debug/config`.
public struct ObservabilityRoutes: Sendable {
    /// The Prometheus text exposition format's content type.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    let metrics: MetricsRegistry
    let process: ProcessMetrics?
    let readiness: any ReadinessCheck
    let configuration: @Sendable () -> String

    /// `configuration` returns the effective configuration as JSON with every secret already left out.
    public init(
        metrics: MetricsRegistry, process: ProcessMetrics?, readiness: any ReadinessCheck,
        configuration: @escaping @Sendable () -> String
    ) {
        self.metrics = metrics
        self.process = process
        self.readiness = readiness
        self.configuration = configuration
    }

    /// The answer to `method` on `uri` (a query string is ignored).
    public func answer(method: HTTPMethod, uri: String) async -> HTTPAnswer {
        let path =
            uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        let known = ["/metrics", "/healthz", "/readyz", "/debug/config"]
        guard known.contains(path) else {
            return HTTPAnswer(.notFound, "not found; try \(known.joined(separator: ", "))\n")
        }
        guard method == .GET || method == .HEAD else { return HTTPAnswer(.methodNotAllowed, "GET or HEAD only\n") }
        switch path {
        case "/metrics":
            process?.update()
            return HTTPAnswer(status: .ok, contentType: Self.metricsContentType, body: metrics.exposition())
        case "/healthz":
            // Alive is all it says: answering at all means the process and its event loops run.
            return HTTPAnswer(.ok, "ok\n")
        case "/readyz":
            let conditions = await readiness.readiness()
            let ready = !conditions.isEmpty && conditions.allSatisfy(\.ready)
            var text = ready ? "ready\n" : "not ready\n"
            for condition in conditions {
                text += "\(condition.ready ? "[+]" : "[-]")\(condition.name): \(condition.detail)\n"
            }
            return HTTPAnswer(ready ? .ok : .serviceUnavailable, text)
        default:
            return HTTPAnswer(status: .ok, contentType: "application/json", body: Array((configuration() + "\n").utf8))
        }
    }
}
