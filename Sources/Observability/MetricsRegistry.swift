import CoreMetrics
import Prometheus

/// What the exposition says about one metric family: its `# HELP` text and, for histograms, its buckets.
public struct MetricDescription: Sendable {
    public var name: String
    public var help: String
    /// Upper bounds in base units (seconds for timers); nil takes the registry's default.
    public var buckets: [Double]?

    public init(name: String, help: String, buckets: [Double]? = nil) {
        self.name = name
        self.help = help
        self.buckets = buckets
    }
}

/// The process's Prometheus registry and a swift-metrics factory that feeds it.
///
/// swift-prometheus refuses (fatalError) a family registered twice with different help texts, and its own
/// `PrometheusMetricsFactory` always registers an empty help, which promtool then reports. Here the help text is a
/// function of the name alone (looked up in the descriptions given at start), so every registration of a name
/// carries the same text and every family gets a `# HELP` line.
public final class MetricsRegistry: Sendable {
    /// The registry `/metrics` renders.
    public let registry: PrometheusCollectorRegistry
    private let descriptions: [String: MetricDescription]
    private let defaultSecondsBuckets: [Double]

    /// A registry that knows `descriptions` (names that are not there get a generic help line).
    public init(descriptions: [MetricDescription]) {
        self.registry = PrometheusCollectorRegistry()
        var table: [String: MetricDescription] = [:]
        for description in descriptions + ProcessMetrics.descriptions { table[description.name] = description }
        self.descriptions = table
        self.defaultSecondsBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    }

    /// The factory to hand to code that makes swift-metrics `Counter`s, `Meter`s and `Timer`s.
    public var factory: any MetricsFactory { RegistryFactory(owner: self) }

    func help(for name: String) -> String {
        descriptions[name]?.help ?? "\(name) (no description registered)"
    }

    /// The whole name as `metricName` (the descriptor joins its non-empty parts with `_`) and the help text.
    func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help(for: name))
    }

    func buckets(for name: String) -> [Double] {
        descriptions[name]?.buckets ?? defaultSecondsBuckets
    }

    /// The exposition, in the Prometheus text format 0.0.4.
    public func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// swift-metrics → Prometheus, with help texts and buckets from the owner's descriptions.
private struct RegistryFactory: MetricsFactory {
    let owner: MetricsRegistry

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        owner.registry.makeCounter(descriptor: owner.descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        owner.registry.makeCounter(descriptor: owner.descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        let descriptor = owner.descriptor(label)
        guard aggregate else { return owner.registry.makeGauge(descriptor: descriptor, labels: dimensions) }
        return owner.registry.makeValueHistogram(
            descriptor: descriptor, labels: dimensions, buckets: owner.buckets(for: label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        owner.registry.makeGauge(descriptor: owner.descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        let buckets = owner.buckets(for: label).map { Duration.nanoseconds(Int64(($0 * 1e9).rounded())) }
        return owner.registry.makeDurationHistogram(
            descriptor: owner.descriptor(label), labels: dimensions, buckets: buckets)
    }

    // Signet's metrics live as long as the process; nothing is ever destroyed, so these only unregister.
    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { owner.registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { owner.registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { owner.registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { owner.registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { owner.registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { owner.registry.unregisterDurationHistogram(histogram) }
    }
}
