import Foundation
import Testing

/// `signet run` as a new user meets it (no configuration at all), `signet check-config`, and SIGTERM with a
/// transaction in flight.
@Suite("signet run and check-config from the command line", .serialized)
struct RelayCommandLineTests {
    typealias E2E = RelayEndToEndTests
    typealias H = RelayHarness

    /// The README's first run: `signet run` with nothing else listens on 127.0.0.1:10025, makes a development key
    /// once, and captures signed mail in signet-state/captured; the record it writes is the one to publish.
    @Test func firstRunWithoutConfigurationCapturesSignedMail() throws {
        let dir = try Tools.makeTemporaryDirectory("first-run")
        defer { try? FileManager.default.removeItem(at: dir) }
        let relay = try E2E.Running(
            try Tools.signet, ["run"], log: dir.appendingPathComponent("signet.log"), directory: dir)
        defer { relay.stop() }
        do {
            try E2E.waitForPort(10025)
        } catch {
            throw ToolError("\(error); signet said:\n\(relay.output)")
        }
        // The README's own command.
        let swaks = try Tools.run(
            "/usr/bin/swaks",
            ["--server", "127.0.0.1", "--port", "10025", "--from", "alice@example.com", "--to", "bob@example.org"],
            timeout: 60)
        #expect(swaks.status == 0, "\(swaks.text)\n\(relay.output)")
        // jemalloc is linked into signet and is the malloc the process actually uses (DESIGN.md), except in the
        // builds made with SIGNET_ALLOCATOR=system (the sanitizer runs and the benchmark's glibc build).
        if ProcessInfo.processInfo.environment["SIGNET_ALLOCATOR"] == "system" {
            #expect(relay.output.contains("allocator: ") && !relay.output.contains("allocator: jemalloc"))
        } else {
            #expect(relay.output.contains("allocator: jemalloc 5."), "\(relay.output)")
        }
        let state = dir.appendingPathComponent("signet-state")
        let captured = state.appendingPathComponent("captured")
        let files = try FileManager.default.contentsOfDirectory(atPath: captured.path).filter { $0.hasSuffix(".eml") }
        #expect(files.count == 1, "\(files)")
        let key = state.appendingPathComponent("dev-rsa.pem")
        let attributes = try FileManager.default.attributesOfItem(atPath: key.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "the development key must be private")

        // The zone-file line signet wrote, as an operator would publish it, checked by dkimpy.
        let zone = try String(contentsOf: state.appendingPathComponent("dev-rsa.dns.txt"), encoding: .utf8)
        #expect(zone.hasPrefix("dev._domainkey.signet.test."), "\(zone)")
        let value = zone.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            .joined()
        let keyFile = dir.appendingPathComponent("keys.txt")
        try "dev._domainkey.signet.test\t\(value)\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let output = try Tools.run(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keyFile.path]
                + files.map { captured.appendingPathComponent($0).path })
        let results = VerifierResult.parse(output.text)
        #expect(results.map(\.result) == ["pass"] && results.first?.domain == "signet.test", "\(output.text)")

        // A second start keeps the key it made.
        let before = try Data(contentsOf: key)
        relay.stop()
        let again = try E2E.Running(
            try Tools.signet, ["run"], log: dir.appendingPathComponent("again.log"), directory: dir)
        defer { again.stop() }
        try E2E.waitForPort(10025)
        #expect(try Data(contentsOf: key) == before)
    }

    /// `threads.event_loops` and `threads.signers` (here from the environment) set the relay's threads, counted in
    /// /proc, and one event loop still serves the listener and every connection.
    @Test func threadCountsComeFromTheConfiguration() throws {
        let setup = try H.Setup("threads")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try E2E.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        let (relay, port) = try E2E.startSignet(
            setup.dir, nextHop: sinkPort, keys: setup.keys,
            environment: ["SIGNET_THREADS_EVENT_LOOPS": "1", "SIGNET_THREADS_SIGNERS": "3"])
        defer { relay.stop() }
        let tasks = "/proc/\(relay.process.processIdentifier)/task"
        let names = try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap { task in
            try? String(contentsOfFile: "\(tasks)/\(task)/comm", encoding: .utf8)
        }
        #expect(names.filter { $0.hasPrefix("NIO-ELT-") }.count == 1, "\(names)")
        #expect(names.filter { $0.hasPrefix("TP-#") }.count == 3, "\(names)")
        for index in 0..<3 {
            let client = try H.greetedClient(port)
            #expect(
                try H.sendWithData(client, Mail.message(token: "threads-\(index)", body: "One loop.\r\n")).code == 250)
        }
        #expect(H.wait(seconds: 10) { ((try? E2E.dumpedMessages(dumps))?.count ?? 0) == 3 })
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// The relay listens with one socket per event loop, sharing the port (SO_REUSEPORT). A second relay started
    /// on the same port must still fail as with one socket, naming the address, and not take a share of the first
    /// one's connections.
    @Test func aSecondRelayOnTheSamePortIsRefused() throws {
        let setup = try H.Setup("port-in-use")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try E2E.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        let (relay, port) = try E2E.startSignet(setup.dir, nextHop: sinkPort, keys: setup.keys)
        defer { relay.stop() }
        let second = try E2E.Running(
            try Tools.signet,
            [
                "run", "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(sinkPort)", "--domain",
                "example.com", "--selector", "ed", "--key", setup.keys.ed, "--state-dir",
                setup.dir.appendingPathComponent("second").path, "--metrics-listen", "",
            ],
            log: setup.dir.appendingPathComponent("second.log"))
        defer { second.stop() }
        #expect(H.wait(seconds: 20) { !second.process.isRunning }, "a second relay runs on the same port")
        #expect(!second.process.isRunning && second.process.terminationStatus != 0)
        #expect(
            second.output.contains("listen: cannot listen on 127.0.0.1:\(port): Address already in use"),
            "\(second.output)")
        // Connections still reach the first relay, over whichever of its sockets the kernel picks.
        for index in 0..<8 {
            let client = try H.greetedClient(port)
            #expect(try H.sendWithData(client, Mail.message(token: "port-\(index)", body: "Mine.\r\n")).code == 250)
            #expect(try client.command("QUIT").code == 221)
        }
        #expect(H.wait(seconds: 10) { ((try? E2E.dumpedMessages(dumps))?.count ?? 0) == 8 })
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    @Test func checkConfigNamesTheProblem() throws {
        let setup = try H.Setup("check-config")
        defer { setup.remove() }
        let good = setup.dir.appendingPathComponent("good.yaml")
        try """
        listen: [127.0.0.1:2525]
        next_hop: 127.0.0.1:2526
        signing:
          keys:
            rsa: {domain: example.com, selector: rsa, key_file: \(setup.keys.rsa)}
          table: [{from: example.com, keys: [rsa]}]
        """.write(to: good, atomically: true, encoding: .utf8)
        // SIGNET_BIN (how the tests find signet) would itself be reported as an unknown configuration key.
        let signet = try Tools.signet
        func checkConfig(_ file: URL) throws -> Tools.Output {
            try Tools.run("/usr/bin/env", ["-u", "SIGNET_BIN", signet, "check-config", file.path])
        }
        let ok = try checkConfig(good)
        #expect(ok.status == 0 && ok.text.contains("configuration OK"), "\(ok.text)\(ok.stderr)")

        for (name, yaml, expected) in [
            ("typo", "listen: [127.0.0.1:2525]\nnext_hopp: 127.0.0.1:2526\n", "next_hopp: unknown key"),
            (
                "missing key",
                "signing:\n  keys:\n    k: {domain: example.com, selector: s, key_file: /nonexistent/k.pem}\n  table: [{from: example.com, keys: [k]}]\n",
                "/nonexistent/k.pem"
            ),
            ("bad network", "client_networks: [10.0.0.0/33]\n", "client_networks: '10.0.0.0/33'"),
        ] {
            let file = setup.dir.appendingPathComponent("\(name).yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            let result = try checkConfig(file)
            #expect(result.status != 0, "\(name): accepted")
            #expect(result.stderr.contains(expected), "\(name): \(result.stderr)")
        }
    }

    /// SIGTERM: no new connections, idle ones closed with 421, the transaction in flight still gets the next hop's
    /// 250, then the process exits without waiting out the grace period.
    @Test func sigtermFinishesTheTransactionInFlight() throws {
        let setup = try H.Setup("sigterm")
        defer { setup.remove() }
        // The next hop takes 3 s to accept the message: SIGTERM lands while Signet waits for it.
        let (sink, sinkPort, dumps) = try E2E.startSink(try setup.subdirectory("sink"), ["-W", ".:3"])
        defer { sink.stop() }
        let (relay, port) = try E2E.startSignet(
            setup.dir, nextHop: sinkPort, keys: setup.keys, environment: ["SIGNET_TIMEOUTS_SHUTDOWN_GRACE": "60"])
        defer { relay.stop() }

        // An idle client (an MTA's cached connection): told 421 and closed at once, not held for the grace period.
        let idle = try H.greetedClient(port, timeout: 10)
        let client = try H.greetedClient(port)
        let message = Mail.message(token: "in-flight", body: "Finish me.\r\n")
        let replies = try client.pipeline(
            Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
        #expect(replies.map(\.code) == [250, 250, 354])
        try client.send(Mail.dotStuffed(message))
        Thread.sleep(forTimeInterval: 1)
        let stopped = Date()
        kill(relay.process.processIdentifier, SIGTERM)
        let drained = try idle.reply()
        #expect(drained.text.hasPrefix("421 4.3.2"), "\(drained)")
        #expect(Date().timeIntervalSince(stopped) < 2)
        #expect(idle.closedByPeer(within: 2))
        let reply = try client.reply()
        #expect(reply.code == 250, "\(reply)\n\(relay.output)")
        // The listener is closed: a new client cannot connect.
        Thread.sleep(forTimeInterval: 0.5)
        #expect(throws: (any Error).self) { try WireClient(port: port, timeout: 5) }
        // Once the transaction in flight is answered, nothing holds the exit (the grace period is 60 s).
        #expect(H.wait(seconds: 15) { !relay.process.isRunning }, "signet still running\n\(relay.output)")
        #expect(Date().timeIntervalSince(stopped) < 10)
        sink.stop()
        let arrived = try E2E.dumpedMessages(dumps)
        #expect(arrived.count == 1)
    }
}
