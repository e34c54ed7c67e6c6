import Logging
import NIOCore
import Observability
import Relay
import ServiceLifecycle

/// `signet run`'s wiring of the relay to the observability module; neither knows the other.
enum ObservabilityWiring {
    /// The Prometheus registry with the help texts of every metric the relay makes.
    static func makeRegistry() -> MetricsRegistry {
        MetricsRegistry(
            descriptions: RelayMetrics.descriptions.map {
                MetricDescription(name: $0.name, help: $0.help, buckets: $0.buckets)
            })
    }

    /// The relay's metrics, exported through `registry`; with no listener nothing could read them, so they cost
    /// nothing (swift-metrics' no-op handlers).
    static func relayMetrics(_ registry: MetricsRegistry, for configuration: RelayConfiguration) -> RelayMetrics {
        configuration.metricsListen == nil ? RelayMetrics() : RelayMetrics(factory: registry.factory)
    }

    /// The HTTP listener for `configuration.metricsListen`, or nil when it is turned off.
    static func server(
        for relay: RelayServer, registry: MetricsRegistry, group: any EventLoopGroup, eventLoops: Int, logger: Logger
    ) -> ObservabilityServer? {
        guard let address = relay.configuration.metricsListen else { return nil }
        let routes = ObservabilityRoutes(
            metrics: registry,
            process: ProcessMetrics(registry: registry, eventLoops: eventLoops),
            readiness: RelayReadinessCheck(relay: relay),
            configuration: { relay.configuration.redactedJSON() })
        return ObservabilityServer(host: address.host, port: address.port, group: group, routes: routes, logger: logger)
    }

    /// `--metrics-listen`: host:port, or empty to turn the listener off.
    static func apply(metricsListen: String?, to configuration: inout RelayConfiguration) throws {
        guard let metricsListen else { return }
        if metricsListen.isEmpty {
            configuration.metricsListen = nil
        } else if let address = HostPort(metricsListen) {
            configuration.metricsListen = address
        } else {
            throw CLIError("--metrics-listen \(metricsListen): expected host:port, or \"\" for none")
        }
    }

    /// The root logger: swift-log's text lines, or one JSON object per line.
    static func logger(format: String, level: String) throws -> Logger {
        var logger: Logger
        switch format.lowercased() {
        case "text": logger = Logger(label: "signet")
        case "json": logger = Logger(label: "signet") { JSONLogHandler(label: $0) }
        default: throw CLIError("--log-format \(format): expected text or json")
        }
        guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
            throw CLIError("--log-level \(level): expected trace, debug, info, notice, warning, error or critical")
        }
        logger.logLevel = parsed
        return logger
    }
}

/// `/readyz` asks the relay.
struct RelayReadinessCheck: ReadinessCheck {
    let relay: RelayServer

    func readiness() async -> [ReadinessCondition] {
        await relay.readiness().map { ReadinessCondition(name: $0.name, ready: $0.ready, detail: $0.detail) }
    }
}
