import Foundation
import Testing

/// `signet-load` and `signet-load sink` as the benchmark uses them: every message the generator saw acknowledged
/// arrived at the sink, refusals are counted by code on both sides, and the JSON reports parse.
@Suite("signet-load → signet run → signet-load sink", .serialized)
struct LoadGeneratorTests {
    typealias E2E = RelayEndToEndTests

    /// The generator's JSON report, the fields the tests read.
    struct LoadReport: Decodable {
        struct Latency: Decodable { var p50: Double; var p99: Double; var max: Double }
        var attempted: Int
        var acknowledged: Int
        var unanswered: Int
        var connectionErrors: Int
        var replyCodes: [String: Int]
        var messagesPerSecond: Double
        var startedAt: Double
        var latencyMilliseconds: Latency
    }

    /// The sink's JSON summary.
    struct SinkSummary: Decodable {
        struct Verification: Decodable { var messages: Int; var passed: Int; var failed: Int }
        var accepted: Int
        var refused: Int
        var bytes: Int
        var lastAnswerAt: Double?
        var verification: Verification?
    }

    /// Starts `signet-load sink` on a free port; it prints its JSON summary and exits after `exitAfter` messages.
    static func startSink(_ dir: URL, exitAfter: Int, _ flags: [String] = []) throws -> (E2E.Running, Int) {
        let port = E2E.freePort()
        let sink = try E2E.Running(
            try Tools.signetLoad,
            ["sink", "--listen", "127.0.0.1:\(port)", "--exit-after", "\(exitAfter)", "--timeout", "120", "--json"]
                + flags,
            log: dir.appendingPathComponent("sink.log"))
        do {
            try E2E.waitForPort(port)
        } catch {
            throw ToolError("\(error); the sink said:\n\(sink.output)")
        }
        return (sink, port)
    }

    /// Waits (bounded) for the sink to exit and decodes the JSON line it printed.
    static func summary(_ sink: E2E.Running) throws -> SinkSummary {
        let done = RelayHarness.wait(seconds: 60) { !sink.process.isRunning }
        try #require(done, "the sink did not get its messages: \(sink.output)")
        let line = try #require(sink.output.split(separator: "\n").last { $0.hasPrefix("{") }, "\(sink.output)")
        return try JSONDecoder().decode(SinkSummary.self, from: Data(line.utf8))
    }

    static func load(_ arguments: [String]) throws -> (Tools.Output, LoadReport) {
        let output = try Tools.run(try Tools.signetLoad, arguments + ["--json"], timeout: 180)
        let report = try JSONDecoder().decode(LoadReport.self, from: output.stdout)
        return (output, report)
    }

    @Test func everyAcknowledgedMessageArrivesSigned() throws {
        let setup = try RelayHarness.Setup("load-e2e")
        defer { setup.remove() }
        let count = 300
        // Every 10th message is kept and verified with dkimpy by the sink.
        let (sink, sinkPort) = try Self.startSink(
            setup.dir, exitAfter: count, ["--verify-every", "10", "--key-file", setup.keys.keyFile])
        defer { sink.stop() }
        let (relay, relayPort) = try E2E.startSignet(
            setup.dir, nextHop: sinkPort, keys: setup.keys, logLevel: "warning")
        defer { relay.stop() }
        // Sizes in turn, fewer messages per connection than the count so connections are replaced.
        let launched = Date().timeIntervalSince1970
        let (output, report) = try Self.load([
            "--server", "127.0.0.1:\(relayPort)", "--count", "\(count)", "--connections", "8", "--per-connection", "7",
            "--size", "700,4096,20000",
        ])
        #expect(output.status == 0, "\(output.stderr)\n\(relay.output)")
        #expect(report.acknowledged == count && report.attempted == count && report.unanswered == 0)
        #expect(report.replyCodes == ["250": count], "\(report.replyCodes)")
        #expect(report.connectionErrors == 0)
        #expect(report.latencyMilliseconds.p50 > 0 && report.latencyMilliseconds.p50 <= report.latencyMilliseconds.p99)
        let returned = Date().timeIntervalSince1970
        let summary = try Self.summary(sink)
        #expect(summary.accepted == count && summary.refused == 0, "\(sink.output)")
        // The run's end-to-end window, as bench-e2e.sh takes it: within the generator's process, and the sink's
        // last answer came before the generator saw its last reply.
        let lastAnswer = try #require(summary.lastAnswerAt, "\(sink.output)")
        #expect(launched <= report.startedAt && report.startedAt < lastAnswer && lastAnswer <= returned)
        // Each message grew by its signatures on the way.
        #expect(summary.bytes > count * (700 + 4096 + 20000) / 3)
        #expect(
            summary.verification?.messages == count / 10 && summary.verification?.passed == count / 10, "\(sink.output)"
        )
    }

    /// The benchmark's sealed-only path (bench-e2e.sh (t)): messages with an ARC set and no DKIM-Signature. The
    /// sink checks their chains with dkimpy's arc_verify: all pass against the sealing key's record, and all fail
    /// when the record it is given is another key's.
    @Test func sampledARCChainsAreVerified() throws {
        let setup = try RelayHarness.Setup("load-arc")
        defer { setup.remove() }
        // The relay's own chain validation reads the record from a zone file, as in the benchmark.
        let record = try #require(
            try String(contentsOfFile: setup.keys.keyFile, encoding: .utf8).split(separator: "\n")
                .first { $0.hasPrefix("rsa._domainkey.") })
        let value = String(record.split(separator: "\t", maxSplits: 1)[1])
        let zone = setup.dir.appendingPathComponent("keys.zone")
        let chunks = stride(from: 0, to: value.count, by: 250).map { start -> String in
            let from = value.index(value.startIndex, offsetBy: start)
            return "\"" + value[from..<(value.index(from, offsetBy: 250, limitedBy: value.endIndex) ?? value.endIndex)]
                + "\""
        }
        try "rsa._domainkey.example.com. TXT \(chunks.joined(separator: " "))\n".write(
            to: zone, atomically: true, encoding: .utf8)
        // Another key's record under the same name, for the sink that must see every chain fail.
        let other = setup.dir.appendingPathComponent("other.pem").path
        let keygen = try Tools.run(try Tools.signet, ["keygen", "--algorithm", "rsa-sha256", "--out", other])
        try #require(keygen.status == 0, "\(keygen.stderr)")
        let wrongKeys = setup.dir.appendingPathComponent("wrong-keys.txt")
        try "rsa._domainkey.example.com\tv=DKIM1; k=rsa; p=\(try Tools.publicKeyBase64(privateKeyPEM: other))\n".write(
            to: wrongKeys, atomically: true, encoding: .utf8)

        for (keyFile, passes) in [(setup.keys.keyFile, true), (wrongKeys.path, false)] {
            let count = 40
            let (sink, sinkPort) = try Self.startSink(
                setup.dir, exitAfter: count, ["--verify-every", "10", "--key-file", keyFile])
            defer { sink.stop() }
            let port = E2E.freePort()
            let config = setup.dir.appendingPathComponent("sealed-\(passes).yaml")
            try """
            listen: ["127.0.0.1:\(port)"]
            next_hop: 127.0.0.1:\(sinkPort)
            metrics_listen: ""
            state_directory: \(setup.dir.appendingPathComponent("state-\(passes)").path)
            dns: {zone_file: \(zone.path)}
            signing:
              keys: {rsa: {domain: example.com, selector: rsa, key_file: \(setup.keys.rsa)}}
              table: []
            arc:
              rules: [{key: rsa, authserv_id: relay.example.com}]

            """.write(to: config, atomically: true, encoding: .utf8)
            let relay = try E2E.Running(
                try Tools.signet, ["run", "--config", config.path, "--log-level", "warning"],
                log: setup.dir.appendingPathComponent("signet-\(passes).log"))
            defer { relay.stop() }
            try E2E.waitForPort(port)
            let (output, report) = try Self.load([
                "--server", "127.0.0.1:\(port)", "--count", "\(count)", "--connections", "4",
            ])
            #expect(output.status == 0 && report.acknowledged == count, "\(output.stderr)\n\(relay.output)")
            let verification = try #require(try Self.summary(sink).verification, "\(sink.output)")
            #expect(verification.messages == count / 10, "\(sink.output)")
            if passes {
                #expect(verification.passed == count / 10 && verification.failed == 0, "\(sink.output)")
            } else {
                #expect(verification.passed == 0 && verification.failed == count / 10, "\(sink.output)")
                #expect(sink.output.contains("ARC cv=fail"), "\(sink.output)")
            }
        }
    }

    @Test func refusalsAreCountedByCode() throws {
        let setup = try RelayHarness.Setup("load-refuse")
        defer { setup.remove() }
        let count = 40
        let (sink, sinkPort) = try Self.startSink(setup.dir, exitAfter: count, ["--refuse-every", "4"])
        defer { sink.stop() }
        let (relay, relayPort) = try E2E.startSignet(
            setup.dir, nextHop: sinkPort, keys: setup.keys, logLevel: "warning")
        defer { relay.stop() }
        // Without pipelining, so each reply is read before the next command goes out.
        let (output, report) = try Self.load([
            "--server", "127.0.0.1:\(relayPort)", "--count", "\(count)", "--connections", "3", "--no-pipelining",
        ])
        // Not every message was acknowledged: the generator says so in its exit status.
        #expect(output.status == 1)
        let summary = try Self.summary(sink)
        #expect(summary.accepted == 30 && summary.refused == 10, "\(sink.output)")
        // The relay passes the next hop's refusal on, so the generator sees exactly what the sink said.
        #expect(report.replyCodes == ["250": 30, "554": 10], "\(report.replyCodes)\n\(relay.output)")
        #expect(report.acknowledged == 30 && report.attempted == count)
    }

    @Test func directToSinkWithPipelining() throws {
        let dir = try Tools.makeTemporaryDirectory("load-direct")
        defer { try? FileManager.default.removeItem(at: dir) }
        let count = 500
        let (sink, sinkPort) = try Self.startSink(
            dir, exitAfter: count, ["--refuse-every", "100", "--refusal-code", "451"])
        defer { sink.stop() }
        let (_, report) = try Self.load([
            "--server", "127.0.0.1:\(sinkPort)", "--count", "\(count)", "--connections", "20", "--size", "4096",
        ])
        #expect(report.replyCodes == ["250": 495, "451": 5], "\(report.replyCodes)")
        let summary = try Self.summary(sink)
        #expect(summary.accepted == 495 && summary.refused == 5)
        #expect(summary.bytes == count * 4096, "every message is exactly --size bytes")
    }

    /// STARTTLS to a relay with a self-signed certificate: refused unless the generator is told to accept any.
    @Test func startTLSThroughTheRelay() throws {
        let setup = try RelayHarness.Setup("load-tls")
        defer { setup.remove() }
        let count = 60
        let certificate = try RelayTLSAuthTests.makeCertificate(in: setup.dir)
        let (sink, sinkPort) = try Self.startSink(setup.dir, exitAfter: count)
        defer { sink.stop() }
        let (relay, relayPort) = try RelayTLSAuthTests.startSignet(
            setup.dir, name: "tls", nextHop: sinkPort, keys: setup.keys,
            extra: RelayTLSAuthTests.tlsSection(certificate))
        defer { relay.stop() }
        let arguments = [
            "--server", "127.0.0.1:\(relayPort)", "--count", "\(count)", "--connections", "4", "--starttls",
        ]
        // Without the flag the certificate is checked, and a self-signed one fails the handshake.
        let (checked, refused) = try Self.load(arguments)
        #expect(checked.status == 1 && refused.acknowledged == 0 && refused.connectionErrors > 0)
        let (output, report) = try Self.load(arguments + ["--insecure-accept-any-certificate"])
        #expect(output.status == 0 && report.acknowledged == count, "\(output.text)\n\(relay.output.suffix(2000))")
        #expect(try Self.summary(sink).accepted == count)
        #expect(relay.output.contains("TLS established"), "\(relay.output.suffix(2000))")
    }

    @Test func nothingListeningIsAConnectionError() throws {
        let port = E2E.freePort()
        let (output, report) = try Self.load(["--server", "127.0.0.1:\(port)", "--count", "5", "--connections", "2"])
        #expect(output.status == 1)
        #expect(report.acknowledged == 0 && report.connectionErrors == 2 && report.replyCodes.isEmpty)
    }
}

extension RelayCommandLineTests {
    /// The README's first run with the load generator: `signet-load --count 1` sends one message to 127.0.0.1:10025.
    /// In this suite because the other first-run test uses the same fixed port and the suite is serialized.
    @Test func firstRunTakesOneMessageFromSignetLoad() throws {
        let dir = try Tools.makeTemporaryDirectory("first-run-load")
        defer { try? FileManager.default.removeItem(at: dir) }
        let relay = try E2E.Running(
            try Tools.signet, ["run"], log: dir.appendingPathComponent("signet.log"), directory: dir)
        defer { relay.stop() }
        do {
            try E2E.waitForPort(10025)
        } catch {
            throw ToolError("\(error); signet said:\n\(relay.output)")
        }
        let output = try Tools.run(try Tools.signetLoad, ["--count", "1"], timeout: 60)
        #expect(output.status == 0, "\(output.text)\(output.stderr)\n\(relay.output)")
        #expect(output.text.contains("acknowledged 1,"), "\(output.text)")
        let captured = dir.appendingPathComponent("signet-state/captured")
        let files = try FileManager.default.contentsOfDirectory(atPath: captured.path).filter { $0.hasSuffix(".eml") }
        #expect(files.count == 1, "\(files)")
        let message = try String(contentsOf: captured.appendingPathComponent(files[0]), encoding: .utf8)
        #expect(message.contains("DKIM-Signature:") && message.contains("Subject: signet-load message"))
    }
}

extension Tools {
    /// `signet-load`, built next to `signet`.
    static var signetLoad: String {
        get throws {
            let path = URL(fileURLWithPath: try signet).deletingLastPathComponent().appendingPathComponent(
                "signet-load"
            ).path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw ToolError("cannot find signet-load next to signet (\(path)): build it with `swift build`")
            }
            return path
        }
    }
}
