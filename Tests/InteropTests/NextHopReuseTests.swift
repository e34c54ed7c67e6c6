import Foundation
import Testing

/// Next-hop connections kept for the next client (`timeouts.next_hop_idle`, like Postfix's connection cache). What
/// the next hop saw is its own record: the faulty hop's per-connection event log, and Postfix's log and mailbox.
@Suite("Next-hop connection reuse", .serialized)
struct NextHopReuseTests {
    typealias H = RelayHarness
    typealias Hop = FaultInjectionTests.HopRecord

    /// The hop connections that carried a MAIL, in order of first use.
    static func mailConnections(_ record: Hop) -> [Int] {
        var seen: [Int] = []
        for event in record.events where event.line?.hasPrefix("MAIL") == true && !seen.contains(event.connection) {
            seen.append(event.connection)
        }
        return seen
    }

    /// The connection the hop acknowledged the message carrying `token` on.
    static func ackedOn(_ record: Hop, token: String) -> [Int] {
        let acked = record.messages(token: token).acked
        return record.events.filter { $0.event == "acked" && acked.contains($0.message ?? -1) }.map(\.connection)
    }

    /// The hop's record once it shows an acknowledgement for each token. The hop logs "acked" after writing its
    /// 250, so the relay's reply to the client, and the client's QUIT, can come before that line is on disk.
    static func record(_ hopDir: URL, acking tokens: [String]) throws -> Hop {
        var record = try Hop(hopDir)
        _ = H.wait(seconds: 5) {
            record = (try? Hop(hopDir)) ?? record
            return tokens.allSatisfy { !ackedOn(record, token: $0).isEmpty }
        }
        return record
    }

    /// Whether the hop reads a QUIT on `connection` within 5 s (the relay sends it once it has let the connection go).
    static func sawQUIT(_ hopDir: URL, on connection: Int?) -> Bool {
        H.wait(seconds: 5) {
            ((try? Hop(hopDir))?.events ?? []).contains {
                $0.connection == connection && $0.line?.hasPrefix("QUIT") == true
            }
        }
    }

    /// The relay's `signet_next_hop_idle_connections`, read from its metrics endpoint.
    static func kept(metricsPort: Int) -> Double? {
        guard let body = try? ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body else { return nil }
        return ObservabilityEndToEndTests.samples(body)["signet_next_hop_idle_connections"]
    }

    /// Waits at most 10 s until the relay keeps `count` next-hop connections for the next client. A client's
    /// connection goes back to the relay just after its 221, so the next client can come before it is kept.
    static func waitForKept(_ count: Int, metricsPort: Int) -> Bool {
        H.wait(seconds: 10) { kept(metricsPort: metricsPort) == Double(count) }
    }

    /// A relay whose next hop is the faulty hop on `hopPort`, with its metrics endpoint: (relay, SMTP port,
    /// metrics port).
    static func startRelay(
        _ setup: H.Setup, hopPort: Int, environment: [String: String]
    ) throws -> (RelayEndToEndTests.Running, Int, Int) {
        let metricsPort = RelayEndToEndTests.freePort()
        var environment = environment
        environment["SIGNET_METRICS_LISTEN"] = "127.0.0.1:\(metricsPort)"
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: hopPort, keys: setup.keys, environment: environment)
        return (relay, port, metricsPort)
    }

    /// The faulty hop (with `fault` written to its fault file, if given) and a relay in front of it with its metrics
    /// endpoint, in a folder of their own; `stop()` ends both and removes the folder.
    struct HopAndRelay {
        let setup: H.Setup
        let hopDir: URL
        let hop: RelayEndToEndTests.Running
        let relay: RelayEndToEndTests.Running
        let port: Int
        let metricsPort: Int

        init(_ name: String, fault: String? = nil, environment: [String: String]) throws {
            setup = try H.Setup(name)
            do {
                hopDir = try setup.subdirectory("hop")
                if let fault { try Data(fault.utf8).write(to: hopDir.appendingPathComponent("fault")) }
                let (hop, hopPort) = try FaultInjectionTests.startHop(hopDir)
                self.hop = hop
                do {
                    (relay, port, metricsPort) = try NextHopReuseTests.startRelay(
                        setup, hopPort: hopPort, environment: environment)
                } catch {
                    hop.stop()
                    throw error
                }
            } catch {
                setup.remove()
                throw error
            }
        }

        func stop() {
            relay.stop()
            hop.stop()
            setup.remove()
        }
    }

    /// Three clients one after another, each with one message and QUIT: the second takes the connection the
    /// first left; the third comes after `next_hop_idle` (1 s) has closed it with QUIT, and gets a new one.
    @Test func aLaterClientTakesTheConnectionAnEarlierOneLeft() throws {
        let run = try HopAndRelay("reuse-hop", environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "1"])
        defer { run.stop() }
        let (setup, hopDir, relay, port, metricsPort) = (run.setup, run.hopDir, run.relay, run.port, run.metricsPort)

        #expect(Self.kept(metricsPort: metricsPort) == 0)
        var told: [[String]] = []
        for (index, token) in ["first", "second", "third"].enumerated() {
            told.append(FaultInjectionTests.transact(port, Mail.message(token: "reuse-\(token)", body: "Reuse.\r\n")))
            #expect(Self.waitForKept(1, metricsPort: metricsPort), "after the \(token) client")
            // The third client comes once next_hop_idle has closed the connection the first two used.
            if index == 1 { #expect(Self.waitForKept(0, metricsPort: metricsPort), "kept past next_hop_idle") }
        }
        #expect(told.map(FaultInjectionTests.outcome) == [2, 2, 2], "\(told)")
        let record = try Self.record(hopDir, acking: ["reuse-first", "reuse-second", "reuse-third"])
        let first = Self.ackedOn(record, token: "reuse-first")
        let second = Self.ackedOn(record, token: "reuse-second")
        let third = Self.ackedOn(record, token: "reuse-third")
        #expect(first.count == 1 && first == second, "first \(first), second \(second)")
        #expect(third.count == 1 && third != first, "third \(third), first \(first)")
        #expect(Self.mailConnections(record).count == 2)
        let metrics = ObservabilityEndToEndTests.samples(
            try ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body)
        #expect(metrics[#"signet_next_hop_connections_total{result="reused"}"#] == 1)
        // The start-up look at the next hop's EHLO, the first client's and the third's.
        #expect(metrics[#"signet_next_hop_connections_total{result="success"}"#] == 3)
        // The idle connection was closed politely.
        #expect(Self.sawQUIT(hopDir, on: first.first), "no QUIT on the idle connection \(first)")
        let arrived = try ["reuse-first", "reuse-second", "reuse-third"].compactMap { token -> Data? in
            guard let number = record.messages(token: token).acked.first, let wire = record.contents[number] else {
                return nil
            }
            return Data(try RelayLimitsTests().unstuffed(wire))
        }
        #expect(arrived.count == 3)
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// A kept connection that dies at its next MAIL (the next hop closed it while idle, and the close crossed the
    /// new client's command): the relay goes again on a new connection, and the client gets 250, once.
    @Test func aKeptConnectionLostAtMAILIsReplacedUnseen() throws {
        let run = try HopAndRelay(
            "reuse-lost", fault: "mail2 reset", environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30"])
        defer { run.stop() }
        let (hopDir, relay, port, metricsPort) = (run.hopDir, run.relay, run.port, run.metricsPort)

        let first = FaultInjectionTests.transact(port, Mail.message(token: "lost-first", body: "Lost.\r\n"))
        #expect(Self.waitForKept(1, metricsPort: metricsPort))
        let second = FaultInjectionTests.transact(port, Mail.message(token: "lost-second", body: "Lost.\r\n"))
        #expect(FaultInjectionTests.outcome(first) == 2, "\(first)")
        #expect(FaultInjectionTests.outcome(second) == 2, "\(second)")
        let record = try Self.record(hopDir, acking: ["lost-first", "lost-second"])
        let connections = Self.mailConnections(record)
        // The first connection got the second client's MAIL and was reset; a third one carried its message.
        #expect(connections.count == 2, "\(connections)")
        let mails = record.events.filter { $0.connection == connections.first && $0.line?.hasPrefix("MAIL") == true }
        #expect(mails.count == 2, "the second client's MAIL did not go over the kept connection")
        #expect(Self.ackedOn(record, token: "lost-first") == [connections[0]])
        #expect(Self.ackedOn(record, token: "lost-second") == Array(connections.dropFirst()))
        #expect(record.messages(token: "lost-second").complete.count == 1)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// `limits.max_idle_next_hop_connections` at 1: two clients, connected at the same time, leave one after the
    /// other. The first one's connection is kept; the second one's would make two, so the older goes with QUIT
    /// long before `next_hop_idle` (30 s), and a third client takes the one kept.
    @Test func keptConnectionsAreCapped() throws {
        let run = try HopAndRelay(
            "reuse-cap",
            environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30", "SIGNET_LIMITS_MAX_IDLE_NEXT_HOP_CONNECTIONS": "1"])
        defer { run.stop() }
        let (hopDir, relay, port, metricsPort) = (run.hopDir, run.relay, run.port, run.metricsPort)

        let clients = try [H.greetedClient(port), H.greetedClient(port)]
        for (index, client) in clients.enumerated() {
            let message = Mail.message(token: "cap-\(index)", body: "Capped.\r\n")
            let replies = try client.pipeline(
                Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
            #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
            #expect(try client.pipeline(Mail.dotStuffed(message), replies: 1)[0].code == 250)
        }
        #expect(try clients[0].command("QUIT").code == 221)
        #expect(Self.waitForKept(1, metricsPort: metricsPort))
        #expect(try clients[1].command("QUIT").code == 221)
        let capped = try Self.record(hopDir, acking: ["cap-0", "cap-1"])
        let first = Self.ackedOn(capped, token: "cap-0")
        let second = Self.ackedOn(capped, token: "cap-1")
        #expect(first.count == 1 && second.count == 1 && first != second, "\(first) \(second)")
        func quitOn(_ connection: Int?) throws -> Bool {
            try Hop(hopDir).events.contains { $0.connection == connection && $0.line?.hasPrefix("QUIT") == true }
        }
        #expect(H.wait(seconds: 5) { (try? quitOn(first.first)) == true }, "the older kept connection was not closed")
        #expect(try !quitOn(second.first), "the connection within the cap was closed")
        #expect(Self.kept(metricsPort: metricsPort) == 1)
        let third = FaultInjectionTests.transact(port, Mail.message(token: "cap-2", body: "Capped.\r\n"))
        #expect(FaultInjectionTests.outcome(third) == 2, "\(third)")
        #expect(try Self.ackedOn(Self.record(hopDir, acking: ["cap-2"]), token: "cap-2") == second)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// XCLIENT (`forward_client_identity: xclient`): a kept session speaks for the client whose XCLIENT it took
    /// last. A next hop that refuses the next client's XCLIENT on it must not get that client's mail in the first
    /// one's name: the relay closes the session and goes again on a new connection, where the XCLIENT is taken.
    @Test func aKeptSessionThatRefusesTheNextClientsXCLIENTIsReplaced() throws {
        let run = try HopAndRelay(
            "reuse-xclient", fault: "xclient2 5xx",
            environment: [
                "SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30", "SIGNET_FORWARD_CLIENT_IDENTITY": "xclient",
                "SIGNET_XCLIENT_NETWORKS": "127.0.0.0/8",
            ])
        defer { run.stop() }
        let (hopDir, relay, port, metricsPort) = (run.hopDir, run.relay, run.port, run.metricsPort)

        for (index, address) in ["192.0.2.55", "192.0.2.66"].enumerated() {
            if index == 1 { #expect(Self.waitForKept(1, metricsPort: metricsPort)) }
            let client = try H.greetedClient(port)
            #expect(try client.command("XCLIENT ADDR=\(address) NAME=[UNAVAILABLE]").code == 220)
            #expect(try client.command("EHLO mx\(index).sender.example").code == 250)
            let reply = try H.sendWithData(client, Mail.message(token: "xc-\(index)", body: "Whose?\r\n"))
            #expect(reply.code == 250, "\(reply)")
            #expect(try client.command("QUIT").code == 221)
        }
        let record = try Self.record(hopDir, acking: ["xc-0", "xc-1"])
        let first = Self.ackedOn(record, token: "xc-0")
        let second = Self.ackedOn(record, token: "xc-1")
        #expect(first.count == 1 && second.count == 1 && first != second, "\(first) \(second)")
        func xclients(_ connection: Int?) -> [String] {
            record.events.filter { $0.connection == connection && $0.line?.hasPrefix("XCLIENT") == true }
                .compactMap(\.line)
        }
        // The kept session got the second client's XCLIENT and refused it; no MAIL followed there.
        let kept = xclients(first.first)
        #expect(kept.count == 2 && kept[1].contains("ADDR=192.0.2.66"), "\(kept)")
        let mails = record.events.filter { $0.connection == first.first && $0.line?.hasPrefix("MAIL") == true }
        #expect(mails.count == 1, "MAIL after a refused XCLIENT on the kept session")
        #expect(xclients(second.first).first?.contains("ADDR=192.0.2.66") == true, "\(xclients(second.first))")
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// SIGHUP: the kept connection, opened under the old settings, is closed with QUIT, and the gauge follows the
    /// old cache and the new one together: 1, then 0 after the reload, then 1 again when the next client leaves.
    @Test func reloadClosesTheKeptConnectionAndTheGaugeFollows() throws {
        let run = try HopAndRelay("reuse-reload", environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30"])
        defer { run.stop() }
        let (hopDir, relay, port, metricsPort) = (run.hopDir, run.relay, run.port, run.metricsPort)

        let first = FaultInjectionTests.transact(port, Mail.message(token: "reload-first", body: "Reload.\r\n"))
        #expect(FaultInjectionTests.outcome(first) == 2, "\(first)")
        #expect(Self.waitForKept(1, metricsPort: metricsPort))
        kill(relay.process.processIdentifier, SIGHUP)
        #expect(H.wait(seconds: 20) { relay.output.contains("configuration reloaded") }, "\(relay.output)")
        #expect(Self.waitForKept(0, metricsPort: metricsPort), "kept after the reload")
        let kept = Self.ackedOn(try Self.record(hopDir, acking: ["reload-first"]), token: "reload-first")
        #expect(Self.sawQUIT(hopDir, on: kept.first), "no QUIT on the connection kept before the reload \(kept)")

        let second = FaultInjectionTests.transact(port, Mail.message(token: "reload-second", body: "Reload.\r\n"))
        #expect(FaultInjectionTests.outcome(second) == 2, "\(second)")
        let again = Self.ackedOn(try Self.record(hopDir, acking: ["reload-second"]), token: "reload-second")
        #expect(again.count == 1 && again != kept, "\(again) \(kept)")
        #expect(Self.waitForKept(1, metricsPort: metricsPort), "after the client that came after the reload")
        // Nothing more moves it: the old cache's close is done, and a gauge set to a total by each cache could
        // have read 0 or 2 here.
        Thread.sleep(forTimeInterval: 0.5)
        #expect(Self.kept(metricsPort: metricsPort) == 1)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// SIGTERM: the kept connections (three, from three clients at once) are closed with QUIT before the relay
    /// exits, though `next_hop_idle` has 30 s to go.
    @Test func shutdownClosesKeptConnectionsWithQUIT() throws {
        let run = try HopAndRelay("reuse-stop", environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30"])
        defer { run.stop() }
        let (hopDir, relay, port, metricsPort) = (run.hopDir, run.relay, run.port, run.metricsPort)
        let clients = try (0..<3).map { _ in try H.greetedClient(port) }
        for (index, client) in clients.enumerated() {
            let reply = try H.sendWithData(client, Mail.message(token: "stop-\(index)", body: "Stop.\r\n"))
            #expect(reply.code == 250, "\(reply)")
        }
        for client in clients { #expect(try client.command("QUIT").code == 221) }
        let tokens = (0..<3).map { "stop-\($0)" }
        let acks = try Self.record(hopDir, acking: tokens)
        let kept = tokens.flatMap { Self.ackedOn(acks, token: $0) }
        #expect(Set(kept).count == 3, "\(kept)")
        func quits() throws -> Set<Int> {
            Set(try Hop(hopDir).events.filter { $0.line?.hasPrefix("QUIT") == true }.map(\.connection))
        }
        #expect(Self.waitForKept(3, metricsPort: metricsPort))
        #expect(try quits().isDisjoint(with: kept), "a kept connection was closed before SIGTERM")
        relay.process.terminate()
        #expect(H.wait(seconds: 20) { !relay.process.isRunning }, "signet did not exit on SIGTERM")
        // The hop logs what it reads from its own threads, which may come just after the relay has gone.
        #expect(H.wait(seconds: 5) { (try? quits().isSuperset(of: kept)) == true }, "kept \(kept)")
    }

    /// With Postfix as the next hop: two clients' messages over one Postfix session, both delivered and verified.
    /// Then Postfix's own idle timeout (`smtpd_timeout = 2s`, shorter than `next_hop_idle`) ends the kept
    /// session with 421; the next client still gets 250, over a new session.
    @Test func postfixSeesOneSessionForTwoClientsAndItsTimeoutIsHonoured() throws {
        let setup = try H.Setup("reuse-postfix")
        defer { setup.remove() }
        let postfix = try PostfixInstance(try setup.subdirectory("postfix"), extraMain: "smtpd_timeout = 2s")
        defer { postfix.stop() }
        try postfix.start()
        let (relay, port, metricsPort) = try Self.startRelay(
            setup, hopPort: postfix.port, environment: ["SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30"])
        defer { relay.stop() }
        // The relay's start-up look at the next hop's EHLO is a session of its own (EHLO, QUIT); the count of
        // sessions starts after it.
        #expect(H.wait(seconds: 30) { postfix.log.contains("ehlo=1 quit=1") }, "\(postfix.log)")
        func sessions() -> Int { postfix.log.components(separatedBy: "]: connect from").count - 1 }
        let before = sessions()

        var messages: [[UInt8]] = []
        for (index, token) in ["pf-first", "pf-second", "pf-third"].enumerated() {
            let message = Mail.message(token: token, body: "Reuse with Postfix.\r\n")
            messages.append(message)
            let told = FaultInjectionTests.transact(port, message)
            #expect(FaultInjectionTests.outcome(told) == 2, "\(token): \(told)\n\(postfix.log)")
            if index < 2 { #expect(Self.waitForKept(1, metricsPort: metricsPort), "after \(token)") }
            if index == 1 {
                #expect(sessions() == before + 1, "\(postfix.log)")
                // The third client comes after Postfix has timed out the kept session, long before next_hop_idle:
                // the relay lets a kept connection go as soon as the next hop closes it.
                #expect(Self.waitForKept(0, metricsPort: metricsPort), "kept after Postfix closed it")
            }
        }
        #expect(H.wait(seconds: 5) { postfix.log.contains("timeout after") }, "\(postfix.log)")
        #expect(sessions() == before + 2, "\(postfix.log)")
        let delivered = H.wait(seconds: 30) { ((try? postfix.delivered()) ?? []).count == 3 }
        #expect(delivered, "Postfix did not deliver three messages:\n\(postfix.log)")
        let arrived = try postfix.delivered().map { H.maildirContent(try Data(contentsOf: $0)) }
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }
}
