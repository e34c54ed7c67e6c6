import Foundation
import Testing

/// `signet run` against clients that misbehave on purpose, and the limits that stop them: a client trickling
/// bytes (slowloris), one pipelining far beyond any window without reading, ten thousand connections held open,
/// too many connections from one address, oversized headers. For each: the reply the client gets, that nothing
/// incomplete reaches the next hop, the count in /metrics, and that the relay keeps serving everyone else.
@Suite("Fault injection: misbehaving clients and limits", .serialized)
struct ClientFaultTests {
    typealias H = RelayHarness

    /// A relay with its /metrics on a free port, in front of the recording next hop.
    struct Relay {
        var relay: RelayEndToEndTests.Running
        var port: Int
        var metricsPort: Int
        var recorder: RelayEndToEndTests.Running
        var recorded: URL

        init(_ setup: H.Setup, _ environment: [String: String]) throws {
            let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
            self.recorder = recorder
            self.recorded = recorded
            metricsPort = RelayEndToEndTests.freePort()
            var environment = environment
            environment["SIGNET_METRICS_LISTEN"] = "127.0.0.1:\(metricsPort)"
            (relay, port) = try RelayEndToEndTests.startSignet(
                setup.dir, nextHop: recorderPort, keys: setup.keys, environment: environment)
        }

        func stop() {
            relay.stop()
            recorder.stop()
        }

        /// One sample of /metrics, 0 when absent, e.g. `signet_limits_exceeded_total{limit="recipients"}`.
        func metric(_ name: String) throws -> Double {
            let samples = ObservabilityEndToEndTests.samples(
                try ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body)
            return samples[name] ?? 0
        }
    }

    // MARK: Slowloris

    /// A byte every 0.4 s, in a command and in DATA: without a minimum rate every byte would restart the 3 s
    /// timeout and the client could hold the connection for ever.
    @Test func slowlorisIsEndedByTheTimeouts() throws {
        let setup = try H.Setup("client-slowloris")
        defer { setup.remove() }
        let relay = try Relay(setup, ["SIGNET_TIMEOUTS_COMMAND": "3", "SIGNET_TIMEOUTS_DATA_BLOCK": "3"])
        defer { relay.stop() }

        for phase in ["command", "data"] {
            let client = try H.greetedClient(relay.port, timeout: 30)
            var trickle = Array("NOOP this command never ends ".utf8) + Array(repeating: UInt8(ascii: "x"), count: 200)
            if phase == "data" {
                let replies = try client.pipeline(
                    Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
                #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
                trickle = Mail.message(token: "slowloris", body: Mail.body(bytes: 2000))
            }
            let started = Date()
            var sent = 0
            var ended = false
            // Send a byte, then see whether the relay has given up; bounded at 15 s.
            while Date().timeIntervalSince(started) < 15 && sent < trickle.count {
                do { try client.send([trickle[sent]]) } catch { ended = true; break }
                sent += 1
                if client.closedByPeer(within: 0.4) { ended = true; break }
            }
            let seconds = Date().timeIntervalSince(started)
            #expect(
                ended, "\(phase): the relay still held the trickling connection after \(Int(seconds)) s, \(sent) bytes")
            #expect(seconds < 8, "\(phase): ended after \(seconds) s for a 3 s timeout")
            print("slowloris in \(phase): ended after \(String(format: "%.1f", seconds)) s and \(sent) bytes")
        }
        // What the client was told is in the relay's reply before the close; read it on a fresh trickle.
        let client = try H.greetedClient(relay.port, timeout: 30)
        try client.send("NOOP")
        let reply = try client.reply()
        #expect(reply.code == 421 && reply.text.contains("4.4.2"), "\(reply)")
        #expect(try relay.metric("signet_limits_exceeded_total{limit=\"command_timeout\"}") >= 2)
        #expect(try relay.metric("signet_limits_exceeded_total{limit=\"data_timeout\"}") >= 1)
        // Nothing of the trickled message went on, and the relay still relays.
        let fresh = try H.greetedClient(relay.port)
        #expect(try H.sendWithData(fresh, Mail.message(token: "after-slowloris", body: "Fine.\r\n")).code == 250)
        let arrived = try H.recorded(relay.recorded)
        #expect(arrived.count == 1 && arrived.first.flatMap { H.token(of: $0) } == "after-slowloris")
        #expect(relay.relay.process.isRunning)
    }

    // MARK: Pipelining beyond the window

    /// 100,000 EHLO commands of 256 octets (each answered with several lines) sent without reading a reply: once the replies
    /// fill the socket buffers the relay must stop reading, not queue replies in memory, so the client's sending
    /// stalls; once the client reads, every command gets its reply.
    @Test func pipeliningBeyondTheWindowIsBackPressured() throws {
        let setup = try H.Setup("client-pipelining")
        defer { setup.remove() }
        let relay = try Relay(setup, [:])
        defer { relay.stop() }
        let pid = relay.relay.process.processIdentifier
        let client = try H.greetedClient(relay.port, timeout: 120)
        // A small receive window on the client's side, so the replies back up in the relay soon.
        client.setReceiveBuffer(65536)
        let baseline = try H.memory(of: pid)

        let count = 100_000
        // A long (valid) name makes each command 256 octets: 25 MB in all, more than the socket buffers on the way
        // in can hold once the relay stops reading.
        let name =
            (0..<4).map { String(repeating: Character(UnicodeScalar(UInt8(ascii: "a") + UInt8($0))), count: 60) }
            .joined(separator: ".") + ".example.com"
        let line = Array("EHLO \(name)\r\n".utf8)
        final class Progress: @unchecked Sendable {
            // @unchecked: `sent` is only touched with the lock held.
            let lock = NSLock()
            var sent = 0
            var error: String?
        }
        let progress = Progress()
        let writer = DispatchGroup()
        writer.enter()
        Thread.detachNewThread {
            defer { writer.leave() }
            // Batches of 1000 commands: `sent` shows how far the client got while nobody reads.
            for _ in 0..<(count / 1000) {
                do { try client.send(Array([[UInt8]](repeating: line, count: 1000).joined())) } catch {
                    progress.lock.withLock { progress.error = "\(error)" }
                    return
                }
                progress.lock.withLock { progress.sent += 1000 }
            }
        }
        // Wait until the client's sending stops moving (1 s without progress), at most 20 s.
        var stalledAt = 0
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let before = progress.lock.withLock { progress.sent }
            Thread.sleep(forTimeInterval: 1)
            stalledAt = progress.lock.withLock { progress.sent }
            if stalledAt == before { break }
        }
        let held = try H.memory(of: pid)
        #expect(stalledAt < count, "all \(count) commands went in without a reply being read: nothing pushed back")
        let growth = (held.current - baseline.current) / 1024
        #expect(growth < 32, "RSS grew by \(growth) MiB while the client did not read")

        // Read every reply; counting line ends is enough to know each EHLO got its whole reply.
        var replies = 0
        var ok = true
        while replies < count {
            let reply = try client.reply()
            if reply.code != 250 { ok = false }
            replies += 1
        }
        #expect(writer.wait(timeout: .now() + 60) == .success)
        #expect(ok, "a pipelined EHLO got no 250")
        #expect(progress.lock.withLock { progress.error } == nil)
        #expect(try client.command("QUIT").code == 221)
        print(
            "pipelining: the client stalled after \(stalledAt) of \(count) EHLO while not reading; "
                + "signet RSS \(baseline.current / 1024) → \(held.current / 1024) MiB; all \(replies) answered")
        #expect(relay.relay.process.isRunning)
    }

    // MARK: Ten thousand connections

    /// 10,000 connections opened and held (by Tests/Interop/hold_connections.py, so the descriptors live outside
    /// the test runner): max_connections (2000 here) are served, the rest get 421 4.7.0 at once, held connections
    /// still relay, and once they close a new connection is served.
    @Test func tenThousandConnectionsHeld() throws {
        // signet inherits this process's descriptor limit; it needs one per held connection.
        let limit = Tools.raiseDescriptorLimit(to: 16384)
        try #require(
            limit.rlim_cur >= 16384,
            "ulimit -n is \(limit.rlim_cur) (hard \(limit.rlim_max)); 10,000 connections need 16384")
        let setup = try H.Setup("client-10k")
        defer { setup.remove() }
        let relay = try Relay(
            setup, ["SIGNET_LIMITS_MAX_CONNECTIONS": "2000", "SIGNET_LIMITS_MAX_CONNECTIONS_PER_CLIENT": "20000"])
        defer { relay.stop() }

        let total = 10_000
        let output = try Tools.run(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("hold_connections.py").path, "\(relay.port)", "\(total)"],
            timeout: 120)
        #expect(output.status == 0, "hold_connections.py: \(output.stderr)")
        struct Summary: Decodable {
            var greeted: Int
            var refused: Int
            var other: [String]
            var seconds: Double
            var held: [String]
        }
        let summary = try JSONDecoder().decode(Summary.self, from: output.stdout)
        print(
            "10,000 connections: \(summary.greeted) greeted, \(summary.refused) refused with 421 4.7.0 in "
                + "\(String(format: "%.1f", summary.seconds)) s")
        #expect(summary.greeted == 2000, "greeted \(summary.greeted)")
        #expect(summary.refused == total - 2000, "refused \(summary.refused); other: \(summary.other)")
        #expect(summary.seconds < 60, "\(summary.seconds) s to open \(total) connections")
        // Held connections still work: the first and the last greeted one each sent a message.
        #expect(summary.held.count == 2 && summary.held.allSatisfy { $0.hasPrefix("250") }, "\(summary.held)")
        #expect(try relay.metric("signet_connections_refused_total{reason=\"limit\"}") == Double(total - 2000))
        let again = H.wait(seconds: 20) { (try? H.greetedClient(relay.port)) != nil }
        #expect(again, "no connection served after the 10,000 closed")
        #expect(try H.recorded(relay.recorded).count == 2)
        #expect(relay.relay.process.isRunning)
    }

    // MARK: Per client address

    /// limits.max_connections_per_client: one address holding its share does not lock out another.
    @Test func connectionsPerClientAddress() throws {
        let setup = try H.Setup("client-per-ip")
        defer { setup.remove() }
        let relay = try Relay(
            setup, ["SIGNET_LIMITS_MAX_CONNECTIONS_PER_CLIENT": "5", "SIGNET_CLIENT_NETWORKS": "127.0.0.0/8"])
        defer { relay.stop() }
        let mine = try (0..<5).map { _ in try H.greetedClient(relay.port) }
        let sixth = try WireClient(port: relay.port, timeout: 10)
        let refusal = try sixth.reply()
        #expect(
            refusal.code == 421 && refusal.text.contains("4.7.0") && refusal.text.contains("127.0.0.1"), "\(refusal)")
        #expect(sixth.closedByPeer(within: 5))
        // Another address is served while 127.0.0.1 is at its limit.
        let neighbour = try WireClient(port: relay.port, timeout: 10, from: "127.0.0.2")
        #expect(try neighbour.reply().code == 220)
        #expect(try neighbour.command("EHLO neighbour.example.com").code == 250)
        #expect(try H.sendWithData(neighbour, Mail.message(token: "neighbour", body: "Hi.\r\n")).code == 250)
        #expect(try relay.metric("signet_connections_refused_total{reason=\"per_client\"}") == 1)
        // One closes: 127.0.0.1 gets a slot again.
        mine[0].close()
        #expect(H.wait(seconds: 10) { (try? H.greetedClient(relay.port)) != nil })
        #expect(relay.relay.process.isRunning)
    }

    // MARK: Header and recipient limits

    @Test func headerAndRecipientLimitsAreRefusedAndCounted() throws {
        let setup = try H.Setup("client-header-limits")
        defer { setup.remove() }
        let relay = try Relay(
            setup,
            [
                "SIGNET_LIMITS_MAX_HEADER_SIZE": "4KiB", "SIGNET_LIMITS_MAX_HEADER_FIELDS": "40",
                "SIGNET_LIMITS_MAX_RECIPIENTS": "2",
            ])
        defer { relay.stop() }
        let client = try H.greetedClient(relay.port)
        func withExtraFields(_ token: String, _ fields: [String]) -> [UInt8] {
            Array((fields.joined(separator: "\r\n") + "\r\n").utf8) + Mail.message(token: token, body: "Body.\r\n")
        }
        let manyFields = withExtraFields("many-fields", (0..<40).map { "X-Filler-\($0): \($0)" })
        let bigHeader = withExtraFields("big-header", ["X-Big: " + String(repeating: "b", count: 5000)])
        let fine = withExtraFields("fine", (0..<20).map { "X-Filler-\($0): \($0)" })
        for (what, message) in [("41+ fields", manyFields), ("5 kB header", bigHeader)] {
            let reply = try H.sendWithData(client, message)
            #expect(
                reply.code == 552 && reply.text.contains("5.3.4") && reply.text.contains("header"), "\(what): \(reply)")
        }
        #expect(try H.sendWithData(client, fine).code == 250)
        // Recipients: the third of two gets 452 4.5.3.
        #expect(try client.command("MAIL FROM:<alice@example.com>").code == 250)
        let codes = try (1...3).map { try client.command("RCPT TO:<r\($0)@example.org>").code }
        #expect(codes == [250, 250, 452], "\(codes)")
        #expect(try client.command("RSET").code == 250)
        #expect(try relay.metric("signet_messages_rejected_total{reason=\"header_too_large\"}") == 2)
        #expect(try relay.metric("signet_limits_exceeded_total{limit=\"recipients\"}") == 1)
        let arrived = try H.recorded(relay.recorded)
        #expect(arrived.map { H.token(of: $0) } == ["fine"], "\(arrived.count) arrived")
    }
}
