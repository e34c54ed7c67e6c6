import Foundation
import Testing

/// `signet run` seen from Prometheus: a known mix of traffic through swaks → signet → smtp-sink (signed, unsigned,
/// refused, tempfailed, SRS-rewritten and ARC-sealed), then every counter on the live `/metrics` must have moved
/// by exactly the expected amount, and promtool must accept the exposition and the alert rules.
@Suite("Observability end to end: /metrics, /readyz, promtool", .serialized)
struct ObservabilityEndToEndTests {
    typealias E2E = RelayEndToEndTests

    static let promtool = "/usr/bin/promtool"

    /// A port below Linux's ephemeral range (32768 and up), so no outgoing connection of a parallel test holds it:
    /// the metrics listener only logs a port it cannot bind, which would leave nothing to scrape.
    static func freePort() -> Int { 20000 + Int.random(in: 0..<12000) }

    /// One HTTP GET on loopback with a bounded wait: status line and body.
    static func get(_ path: String, port: Int) throws -> (status: Int, body: String) {
        let fd = try Tools.connectToLoopback(port: port, timeout: 10)
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"),
            let status = Int(text.split(separator: " ").dropFirst().first ?? "")
        else { throw ToolError("not an HTTP response: \(text.prefix(200))") }
        return (status, String(text[split.upperBound...]))
    }

    /// Sample lines of an exposition: `name{labels}` → value.
    static func samples(_ exposition: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in exposition.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            result[String(line[..<space])] = value
        }
        return result
    }

    /// smtp-sink on a given port (the next hop keeps its address while its behaviour changes).
    static func startSink(_ dir: URL, port: Int, _ flags: [String]) throws -> E2E.Running {
        let dumps = dir.appendingPathComponent("dumps-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dumps, withIntermediateDirectories: true)
        // smtp-sink runs as nobody: it needs the folders, not the key files, which must stay private (0600).
        _ = try Tools.run("/bin/chmod", ["a+rwx", dir.path, dumps.path])
        let sink = try E2E.Running(
            "/usr/sbin/smtp-sink",
            ["-u", "nobody", "-d", dumps.path + "/%H%M%S."] + flags + ["127.0.0.1:\(port)", "64"],
            log: dir.appendingPathComponent("sink-\(UUID().uuidString).log"))
        try E2E.waitForPort(port)
        return sink
    }

    static func swaks(
        _ port: Int, from: String = "alice@example.com", to: String = "bob@example.org", _ extra: [String] = []
    ) throws -> Tools.Output {
        try Tools.run(
            "/usr/bin/swaks",
            [
                "--server", "127.0.0.1", "--port", "\(port)", "--from", from, "--to", to,
                "--h-From", "<\(from)>", "--h-Subject", "metrics mix", "--body", "Counted.\n",
            ] + extra,
            timeout: 60)
    }

    @Test(.timeLimit(.minutes(4))) func everyCounterMovesByExactlyTheExpectedAmount() throws {
        let dir = try Tools.makeTemporaryDirectory("obs-e2e")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let sinkPort = Self.freePort()
        var sink = try Self.startSink(dir, port: sinkPort, [])
        defer { sink.stop() }
        let port = Self.freePort()
        let metricsPort = Self.freePort()
        // SPF and DMARC for example.com; other.org publishes nothing.
        let zone = dir.appendingPathComponent("zone.txt")
        try """
        example.com TXT "v=spf1 ip4:127.0.0.0/8 -all"
        _dmarc.example.com TXT "v=DMARC1; p=none"

        """.write(to: zone, atomically: true, encoding: .utf8)
        let yaml = """
            listen: [127.0.0.1:\(port)]
            next_hop: 127.0.0.1:\(sinkPort)
            metrics_listen: 127.0.0.1:\(metricsPort)
            dns: {zone_file: \(zone.path)}
            arc:
              rules:
                - {recipient_domain: lists.example, key: rsa, authserv_id: signet.example.com}
            state_directory: \(dir.appendingPathComponent("state").path)
            client_networks: [127.0.0.1/32]
            limits: {max_message_size: 4000}
            # Each scenario opens its own next-hop connection, so that the connection counts below are exact.
            timeouts: {next_hop_idle: 0}
            srs: {mode: both, domain: fwd.example, secrets: [metrics-mix-test-secret], local_domains: [example.com]}
            signing:
              keys:
                rsa: {domain: example.com, selector: rsa, key_file: \(keys.rsa)}
                ed: {domain: example.com, selector: ed, key_file: \(keys.ed), algorithm: ed25519-sha256, expires: 2030-01-01}
              table:
                - {from: example.com, keys: [rsa, ed]}
            """
        let file = dir.appendingPathComponent("signet.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let relay = try E2E.Running(
            try Tools.signet, ["run", "--config", file.path, "--log-format", "json"],
            log: dir.appendingPathComponent("signet.log"))
        defer { relay.stop() }
        try E2E.waitForPort(port)
        try E2E.waitForPort(metricsPort)

        // The baseline once the start-up EHLO to the next hop (learning its capabilities) is counted, and the
        // connection waitForPort made has been accepted and closed (the relay counts it when it serves it, which
        // can come after waitForPort returns).
        var before: [String: Double] = [:]
        let deadline = Date().addingTimeInterval(15)
        repeat {
            before = Self.samples(try Self.get("/metrics", port: metricsPort).body)
            if before["signet_next_hop_connections_total{result=\"success\"}"] == 1
                && before["signet_connections_accepted_total"] == 1 && before["signet_connections_active"] == 0
            {
                break
            }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        #expect(before["signet_next_hop_connections_total{result=\"success\"}"] == 1, "\(relay.output)")

        // A: signed twice (rsa and ed) and relayed.
        let signed = try Self.swaks(port)
        #expect(signed.status == 0, "\(signed.text)")
        // B: no key for other.org: relayed unsigned.
        let unsigned = try Self.swaks(port, from: "carol@other.org")
        #expect(unsigned.status == 0, "\(unsigned.text)")
        // C: over limits.max_message_size: Signet's own 552.
        let large = try Self.swaks(port, ["--body", String(repeating: "0123456789abcdef\n", count: 400)])
        #expect(large.text.contains("<** 552 5.3.4"), "\(large.text)")
        // D: from an address outside client_networks: refused at connect.
        let outsider = try Self.swaks(port, ["--local-interface", "127.0.0.2"])
        #expect(outsider.text.contains("554 5.7.1"), "\(outsider.text)")
        // E: the next hop is down: Signet's 451 4.4.1 at MAIL.
        sink.stop()
        let down = try Self.swaks(port)
        #expect(down.text.contains("<** 451 4.4.1"), "\(down.text)")
        // F: the next hop refuses the content: its 554 passed back, after both signatures were made.
        sink = try Self.startSink(dir, port: sinkPort, ["-B", "554 5.7.1 content refused", "-f", "."])
        let refused = try Self.swaks(port)
        #expect(refused.text.contains("<** 554 5.7.1"), "\(refused.text)")
        sink.stop()
        // G: the next hop refuses the recipient with a 4xx.
        sink = try Self.startSink(dir, port: sinkPort, ["-r", "RCPT"])
        let recipient = try Self.swaks(port)
        #expect(recipient.text.contains("<** 450 4.3.0"), "\(recipient.text)")
        sink.stop()
        // H: the next hop drops the connection at the end of data: Signet's 451 4.4.2, never 250.
        sink = try Self.startSink(dir, port: sinkPort, ["-q", "."])
        let lost = try Self.swaks(port)
        #expect(lost.text.contains("<** 451 4.4.2"), "\(lost.text)")
        sink.stop()
        sink = try Self.startSink(dir, port: sinkPort, [])
        // I: a bounce to an SRS address of ours with a forged hash: Signet's 550 5.1.1 at RCPT.
        let forged = try Self.swaks(port, to: "SRS0=AAAA=2Q=example.net=dave@fwd.example")
        #expect(forged.text.contains("<** 550 5.1.1"), "\(forged.text)")
        // J: a bounce to a real SRS address of ours: reversed to dave@example.net, signed and relayed.
        let address = try Tools.run(
            try Tools.signet,
            ["srs", "forward", "--domain", "fwd.example", "--secret", "metrics-mix-test-secret", "dave@example.net"])
        let bounce = try Self.swaks(port, to: address.text.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(bounce.status == 0, "\(address.text)\(address.stderr)\(bounce.text)")
        // K: to a list address: signed and ARC-sealed (no chain on the way in: cv=none).
        let listed = try Self.swaks(port, to: "team@lists.example")
        #expect(listed.status == 0, "\(listed.text)")

        // Every session has closed once the active gauge is back at 0.
        var exposition = ""
        let settle = Date().addingTimeInterval(15)
        repeat {
            exposition = try Self.get("/metrics", port: metricsPort).body
            if Self.samples(exposition)["signet_connections_active"] == 0 { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < settle
        let after = Self.samples(exposition)

        let rsa =
            #"signet_signatures_total{algorithm="rsa-sha256",backend="in-process",domain="example.com",result="success",selector="rsa"}"#
        let ed =
            #"signet_signatures_total{algorithm="ed25519-sha256",backend="in-process",domain="example.com",result="success",selector="ed"}"#
        let expected: [String: Double] = [
            "signet_connections_accepted_total": 10,  // A B C E F G H I J K
            #"signet_connections_refused_total{reason="access"}"#: 1,  // D
            "signet_messages_received_total": 7,  // A B C F H J K
            "signet_messages_relayed_total": 4,  // A B J K
            #"signet_messages_rejected_total{reason="too_large"}"#: 1,  // C
            #"signet_messages_tempfailed_total{reason="next_hop_unavailable"}"#: 1,  // E
            #"signet_messages_tempfailed_total{reason="next_hop_lost"}"#: 1,  // H
            #"signet_next_hop_refused_total{class="5xx",command="data"}"#: 1,  // F
            #"signet_next_hop_refused_total{class="4xx",command="rcpt"}"#: 1,  // G
            rsa: 5, ed: 5,  // A F H J K
            #"signet_messages_unsigned_total{reason="no_key"}"#: 1,  // B
            #"signet_next_hop_connections_total{result="success"}"#: 9,  // A B C F G H I J K
            #"signet_next_hop_connections_total{result="failure"}"#: 1,  // E
            "signet_end_of_data_reply_seconds_count": 7,  // every end of data answered: A B C F H J K
            "signet_added_latency_seconds_count": 7,
            "signet_transaction_seconds_count": 7,
            "signet_signing_seconds_count": 5,  // A F H J K (C was refused before signing)
            "signet_next_hop_reply_seconds_count": 6,  // A B F H J K
            // SRS looks at every MAIL FROM that reaches it (E's too: before the next hop is asked) and at RCPT TO
            // addresses in fwd.example.
            #"signet_srs_rewrites_total{direction="forward",result="unchanged"}"#: 9,  // A C E F G H I J K
            #"signet_srs_rewrites_total{direction="forward",result="rewritten"}"#: 1,  // B
            #"signet_srs_rewrites_total{direction="reverse",result="forged"}"#: 1,  // I
            #"signet_srs_rewrites_total{direction="reverse",result="reversed"}"#: 1,  // J
            // With arc.rules the relay verifies every message that reaches the end of data (C is refused during
            // DATA): none is signed on the way in, example.com's SPF passes for loopback and aligns for DMARC.
            #"signet_authentication_results_total{method="dkim",result="none"}"#: 6,  // A B F H J K
            #"signet_authentication_results_total{method="spf",result="pass"}"#: 5,  // A F H J K
            #"signet_authentication_results_total{method="spf",result="none"}"#: 1,  // B
            #"signet_authentication_results_total{method="dmarc",result="pass"}"#: 5,  // A F H J K
            #"signet_authentication_results_total{method="dmarc",result="none"}"#: 1,  // B
            #"signet_authentication_results_total{method="arc",result="none"}"#: 6,
            #"signet_arc_seals_total{cv="none"}"#: 1,  // K
        ]
        // Byte counters move by the sizes of the messages; checked for movement, not an exact amount.
        let sized: Set<String> = ["signet_received_bytes_total", "signet_relayed_bytes_total"]
        for name in sized {
            #expect((after[name] ?? 0) > (before[name] ?? 0), "\(name) did not move")
        }
        let counters = Set(after.keys).union(before.keys).filter { key in
            let name = key.split(separator: "{").first.map(String.init) ?? key
            return (name.hasSuffix("_total") || name.hasSuffix("_count")) && !sized.contains(name)
        }
        for key in counters.sorted() {
            let moved = (after[key] ?? 0) - (before[key] ?? 0)
            #expect(moved == expected[key] ?? 0, "\(key) moved by \(moved), expected \(expected[key] ?? 0)")
        }
        for key in expected.keys { #expect(after[key] != nil, "\(key) is not exported") }
        #expect(after["signet_signer_pool_queue_depth"] == 0)
        #expect(after[#"signet_key_expiry_timestamp_seconds{domain="example.com",selector="ed"}"#] == 1_893_456_000)
        #expect(!after.keys.contains { $0.hasPrefix("signet_key_expiry_timestamp_seconds{") && $0.contains("rsa") })

        // The one log line per transaction: JSON, with its facts, and no message body.
        let lines = relay.output.split(separator: "\n").filter { $0.contains(#""msg":"transaction""#) }
        #expect(lines.count == 10, "\(relay.output.suffix(3000))")  // A to K but D (refused at connect)
        // G and I: RCPT refused, then QUIT.
        #expect(lines.filter { $0.contains(#""outcome":"abandoned""#) }.count == 2)
        let first = try #require(
            lines.first.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(first["sender_domain"] as? String == "example.com")
        #expect(first["recipients"] as? String == "1")
        #expect(first["outcome"] as? String == "relayed")
        #expect(first["signatures"] as? [String] == ["d=example.com s=rsa", "d=example.com s=ed"])
        #expect((first["next_hop_reply"] as? String)?.hasPrefix("250") == true)
        #expect(!relay.output.contains("Counted."), "a message body reached the log")
        #expect(!relay.output.contains("PRIVATE KEY"))

        // promtool lints the live exposition (names, units, HELP, TYPE).
        let check = try Tools.run(Self.promtool, ["check", "metrics"], stdin: Data(exposition.utf8), timeout: 60)
        #expect(check.status == 0, "promtool check metrics:\n\(check.text)\(check.stderr)")
    }

    @Test(.timeLimit(.minutes(5))) func probesAndConfigurationWithoutSecrets() throws {
        let dir = try Tools.makeTemporaryDirectory("obs-probes")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let (sink, sinkPort, _) = try E2E.startSink(dir)
        defer { sink.stop() }
        let port = Self.freePort()
        let metricsPort = Self.freePort()
        let relay = try E2E.Running(
            try Tools.signet,
            [
                "run", "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(sinkPort)", "--domain",
                "example.com",
                "--selector", "rsa", "--key", keys.rsa, "--state-dir", dir.appendingPathComponent("state").path,
                "--metrics-listen", "127.0.0.1:\(metricsPort)",
            ],
            log: dir.appendingPathComponent("signet.log"))
        defer { relay.stop() }
        try E2E.waitForPort(port)
        try E2E.waitForPort(metricsPort)
        #expect(try Self.get("/healthz", port: metricsPort).status == 200)
        // Ready once listening, the signer pool answers and the next hop was reached (at start).
        var ready = try Self.get("/readyz", port: metricsPort)
        let deadline = Date().addingTimeInterval(15)
        while ready.status != 200 && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.2)
            ready = try Self.get("/readyz", port: metricsPort)
        }
        #expect(ready.status == 200, "\(ready.body)")
        #expect(ready.body.contains("[+]listening"))
        #expect(ready.body.contains("[+]signer_pool"))
        #expect(ready.body.contains("[+]next_hop"))

        let config = try Self.get("/debug/config", port: metricsPort)
        #expect(config.status == 200)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(config.body.utf8)) as? [String: Any])
        #expect(object["next_hop"] as? String == "127.0.0.1:\(sinkPort)")
        #expect(config.body.contains(keys.rsa), "key files are shown as paths")
        let pem = try String(contentsOfFile: keys.rsa, encoding: .utf8)
        let material = pem.split(separator: "\n").dropFirst().first.map(String.init) ?? "unreachable"
        #expect(!config.body.contains(material), "key material must never be served")
        #expect(!config.body.contains("PRIVATE KEY"))

        // The next hop goes away: not ready within the readiness interval's probe, still alive.
        sink.stop()
        #expect(try Self.get("/healthz", port: metricsPort).status == 200)
    }

    @Test func alertRulesPassPromtool() throws {
        let rules = Tools.packageRoot.appendingPathComponent("k8s/alerts.yaml").path
        let check = try Tools.run(Self.promtool, ["check", "rules", rules], timeout: 60)
        #expect(check.status == 0, "promtool check rules:\n\(check.text)\(check.stderr)")
        let dashboard = try Data(contentsOf: Tools.packageRoot.appendingPathComponent("k8s/grafana-dashboard.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: dashboard) as? [String: Any])
        #expect((object["panels"] as? [Any])?.isEmpty == false)
    }
}
