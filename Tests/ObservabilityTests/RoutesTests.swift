import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import Observability

/// A readiness source with fixed answers: the routes only format what the relay reports.
struct FixedReadiness: ReadinessCheck {
    var conditions: [ReadinessCondition]
    func readiness() async -> [ReadinessCondition] { conditions }
}

@Suite("Observability routes and listener")
struct RoutesTests {
    static func routes(ready: Bool = true) -> (ObservabilityRoutes, MetricsRegistry) {
        let registry = MetricsRegistry(descriptions: [
            MetricDescription(name: "test_requests_total", help: "Requests served."),
            MetricDescription(name: "test_wait_seconds", help: "Time waited.", buckets: [0.1, 1]),
        ])
        let routes = ObservabilityRoutes(
            metrics: registry, process: ProcessMetrics(registry: registry, eventLoops: 3),
            readiness: FixedReadiness(conditions: [
                ReadinessCondition(name: "listening", ready: true, detail: "127.0.0.1:25"),
                ReadinessCondition(name: "next_hop", ready: ready, detail: ready ? "reached" : "refused"),
            ]),
            configuration: { #"{"next_hop": "127.0.0.1:26"}"# })
        return (routes, registry)
    }

    static func text(_ answer: HTTPAnswer) -> String { String(decoding: answer.body, as: UTF8.self) }

    @Test func metricsHaveHelpAndTypeForEveryFamily() async throws {
        let (routes, registry) = Self.routes()
        let factory = registry.factory
        Counter(label: "test_requests_total", dimensions: [("code", "200")], factory: factory).increment(by: 3)
        // Made twice with the same name: the registry must hand back the same series, not fatalError on help.
        Counter(label: "test_requests_total", dimensions: [("code", "200")], factory: factory).increment()
        Counter(label: "undescribed_total", factory: factory).increment()
        CoreMetrics.Timer(label: "test_wait_seconds", factory: factory).recordMilliseconds(500)
        let answer = await routes.answer(method: .GET, uri: "/metrics")
        #expect(answer.status == .ok)
        #expect(answer.contentType == ObservabilityRoutes.metricsContentType)
        let text = Self.text(answer)
        #expect(text.contains("# HELP test_requests_total Requests served.\n"))
        #expect(text.contains("test_requests_total{code=\"200\"} 4\n"))
        #expect(text.contains("# HELP undescribed_total "))
        #expect(text.contains("test_wait_seconds_bucket{le=\"1.0\"} 1\n"), "\(text)")
        #expect(text.contains("test_wait_seconds_bucket{le=\"0.1\"} 0\n"))
        #expect(text.contains("signet_event_loops 3"))
        let resident = try #require(
            text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes ") })
        #expect((Double(resident.split(separator: " ")[1]) ?? 0) > 1_000_000)
        let fds = try #require(text.split(separator: "\n").first { $0.hasPrefix("process_open_fds ") })
        #expect((Double(fds.split(separator: " ")[1]) ?? 0) >= 3)
        for line in text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let name = line.split(separator: " ")[2]
            #expect(text.contains("# HELP \(name) "), "\(name) has no HELP")
        }
    }

    @Test func healthReadinessAndConfiguration() async {
        let (ready, _) = Self.routes(ready: true)
        #expect(await ready.answer(method: .GET, uri: "/healthz").status == .ok)
        let readyAnswer = await ready.answer(method: .GET, uri: "/readyz")
        #expect(readyAnswer.status == .ok)
        #expect(Self.text(readyAnswer).hasPrefix("ready\n[+]listening: 127.0.0.1:25\n[+]next_hop: reached\n"))
        let (notReady, _) = Self.routes(ready: false)
        let notReadyAnswer = await notReady.answer(method: .GET, uri: "/readyz?verbose")
        #expect(notReadyAnswer.status == .serviceUnavailable)
        #expect(Self.text(notReadyAnswer).contains("[-]next_hop: refused"))
        let config = await ready.answer(method: .GET, uri: "/debug/config")
        #expect(config.contentType == "application/json")
        #expect(Self.text(config).contains("127.0.0.1:26"))
        #expect(await ready.answer(method: .GET, uri: "/nope").status == .notFound)
        #expect(await ready.answer(method: .POST, uri: "/metrics").status == .methodNotAllowed)
    }

    /// The listener on a free loopback port, asked over a real socket with a bounded wait.
    @Test(.timeLimit(.minutes(3))) func listenerServesOverHTTP() async throws {
        let (routes, _) = Self.routes()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = ObservabilityServer(
            host: "127.0.0.1", port: 0, group: group, routes: routes, logger: Logger(label: "test"))
        let task = Task { try await server.run() }
        let address = try #require(await server.boundAddress())
        let port = try #require(address.port)
        let response = try await Self.get("/healthz", port: port)
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(response.lowercased().contains("connection: close"))
        #expect(response.hasSuffix("\r\n\r\nok\n"))
        let missing = try await Self.get("/missing", port: port)
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        task.cancel()
        _ = try? await task.value
        try await group.shutdownGracefully()
    }

    @Test(.timeLimit(.minutes(5))) func aPortInUseIsReportedNotFatal() async throws {
        let (routes, _) = Self.routes()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let first = ObservabilityServer(
            host: "127.0.0.1", port: 0, group: group, routes: routes, logger: Logger(label: "test"))
        let firstTask = Task { try await first.run() }
        let port = try #require(await first.boundAddress()?.port)
        let second = ObservabilityServer(
            host: "127.0.0.1", port: port, group: group, routes: routes, logger: Logger(label: "test"))
        let secondTask = Task { try await second.run() }
        #expect(await second.boundAddress() == nil)
        secondTask.cancel()
        firstTask.cancel()
        _ = try? await secondTask.value
        _ = try? await firstTask.value
        try await group.shutdownGracefully()
    }

    /// One HTTP/1.1 GET; the whole response. The blocking socket runs on a Dispatch thread: blocking a thread of
    /// the cooperative pool (two on a two-core machine) could starve the server under test, which runs there.
    static func get(_ path: String, port: Int) async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try blockingGet(path, port: port) }) }
        }
    }

    /// The GET itself, with a 90 s receive timeout (other suites in the process may hold the cooperative pool).
    static func blockingGet(_ path: String, port: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 90, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}
