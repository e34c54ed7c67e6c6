import Prometheus

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Process gauges read from `/proc/self` at each scrape, under the names every Prometheus client library uses
/// (`process_*`), so standard dashboards work; the event-loop count is Signet's own.
public final class ProcessMetrics: Sendable {
    static let descriptions = [
        MetricDescription(name: "process_resident_memory_bytes", help: "Resident memory size in bytes."),
        MetricDescription(name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes."),
        MetricDescription(name: "process_open_fds", help: "Number of open file descriptors."),
        MetricDescription(name: "process_max_fds", help: "Maximum number of open file descriptors."),
        MetricDescription(
            name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch in seconds."),
        MetricDescription(name: "signet_event_loops", help: "Number of SwiftNIO event-loop threads serving SMTP."),
    ]

    private let resident: Gauge
    private let virtual: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge

    /// Registers the gauges in `registry`; `eventLoops` is fixed for the life of the process.
    public init(registry: MetricsRegistry, eventLoops: Int) {
        func gauge(_ name: String) -> Gauge {
            registry.registry.makeGauge(descriptor: registry.descriptor(name))
        }
        resident = gauge("process_resident_memory_bytes")
        virtual = gauge("process_virtual_memory_bytes")
        openFDs = gauge("process_open_fds")
        maxFDs = gauge("process_max_fds")
        gauge("signet_event_loops").set(Double(eventLoops))
        if let start = Self.startTime() { gauge("process_start_time_seconds").set(start) }
    }

    /// Reads the current values; called just before each exposition.
    public func update() {
        if let pages = Self.statm() {
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            virtual.set(Double(pages.size) * pageSize)
            resident.set(Double(pages.resident) * pageSize)
        }
        if let count = Self.openFileDescriptors() { openFDs.set(Double(count)) }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
    }

    /// Size and resident pages from `/proc/self/statm`.
    static func statm() -> (size: Int, resident: Int)? {
        guard let text = readSmallFile("/proc/self/statm") else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let size = Int(fields[0]), let resident = Int(fields[1]) else { return nil }
        return (size, resident)
    }

    /// Entries of `/proc/self/fd`, less the one the listing itself holds open.
    static func openFileDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDot { count += 1 }
        }
        return count - 1
    }

    /// The start time from field 22 of `/proc/self/stat` (clock ticks since boot) and the boot time.
    static func startTime() -> Double? {
        guard let stat = readSmallFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }
        guard let procStat = readSmallFile("/proc/stat"),
            let line = procStat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let boot = Double(line.dropFirst(6).filter { $0 != " " })
        else { return nil }
        return boot + ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
