import Foundation
import Testing

/// `signet run` over time: SIGHUP reloads, RFC 5321 timeouts per phase, a new EHLO in the middle of a
/// transaction, XCLIENT from a trusted MTA. Real processes on loopback: signet, smtp-sink, swaks, dkimpy.
@Suite("Relay lifecycle: reload, timeouts, session resets", .serialized)
struct RelayLifecycleTests {
    typealias E2E = RelayEndToEndTests

    /// `signet run --config` with `yaml` (written to the folder); waits until it listens.
    static func startSignet(_ dir: URL, yaml: String, port: Int) throws -> (E2E.Running, URL) {
        let file = dir.appendingPathComponent("signet.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let relay = try E2E.Running(
            try Tools.signet, ["run", "--config", file.path], log: dir.appendingPathComponent("signet-\(port).log"))
        do {
            try E2E.waitForPort(port)
        } catch {
            throw ToolError("\(error); signet said:\n\(relay.output)")
        }
        return (relay, file)
    }

    static func configuration(
        port: Int, nextHop: Int, keys: E2E.Keys, dir: URL, signWith key: String, extra: String = ""
    ) -> String {
        """
        listen: [127.0.0.1:\(port)]
        next_hop: 127.0.0.1:\(nextHop)
        state_directory: \(dir.appendingPathComponent("state").path)
        signing:
          keys:
            rsa: {domain: example.com, selector: rsa, key_file: \(keys.rsa)}
            ed: {domain: example.com, selector: ed, key_file: \(keys.ed), algorithm: ed25519-sha256}
          table:
            - {from: example.com, keys: [\(key)]}
        \(extra)
        """
    }

    /// Waits (bounded) until the log has gained `count` lines containing `text`.
    static func waitForLog(_ relay: E2E.Running, _ text: String, count: Int = 1, seconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if relay.output.components(separatedBy: text).count - 1 >= count { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ToolError("'\(text)' not logged within \(seconds) s:\n\(relay.output.suffix(3000))")
    }

    /// MAIL, RCPT and DATA on a raw connection that has already greeted, each expected to be accepted.
    static func startData(_ client: WireClient) throws {
        #expect(try client.command("MAIL FROM:<alice@example.com>").code == 250)
        #expect(try client.command("RCPT TO:<bob@example.org>").code == 250)
        #expect(try client.command("DATA").code == 354)
    }

    /// A whole transaction on a raw connection that has already greeted; returns the reply to the end of data.
    static func transaction(_ client: WireClient, subject: String) throws -> String {
        try startData(client)
        return try client.command(
            "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: \(subject)\r\n\r\nbody of \(subject)\r\n."
        ).text
    }

    /// The arrived messages whose Subject is `subject`, verified by dkimpy: the selectors that pass.
    static func passingSelectors(_ dumps: URL, subject: String, keys: E2E.Keys, dir: URL) throws -> [[String]] {
        let messages = try E2E.dumpedMessages(dumps).filter {
            String(decoding: $0.bytes, as: UTF8.self).contains("\r\nSubject: \(subject)\r\n")
        }
        return try messages.enumerated().map { index, message in
            let path = dir.appendingPathComponent("\(subject)-\(index).eml")
            try message.bytes.write(to: path)
            let output = try Tools.run(
                "/usr/bin/python3",
                [Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keys.keyFile, path.path])
            return VerifierResult.parse(output.text).filter { $0.result == "pass" }.map(\.selector).sorted()
        }
    }

    @Test func hangupReloadsForNewConnectionsAndRefusesABadConfiguration() throws {
        let dir = try Tools.makeTemporaryDirectory("reload")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir)
        defer { sink.stop() }
        let port = E2E.freePort()
        let (relay, file) = try Self.startSignet(
            dir, yaml: Self.configuration(port: port, nextHop: sinkPort, keys: keys, dir: dir, signWith: "rsa"),
            port: port)
        defer { relay.stop() }

        // A connection opened before the reload keeps its configuration to the end.
        let held = try WireClient(port: port)
        #expect((try held.reply()).code == 220)
        #expect(try held.command("EHLO held.example").code == 250)

        #expect(try E2E.swaks(port, ["--h-Subject", "before"]).status == 0)
        try Self.configuration(port: port, nextHop: sinkPort, keys: keys, dir: dir, signWith: "ed")
            .write(to: file, atomically: true, encoding: .utf8)
        kill(relay.process.processIdentifier, SIGHUP)
        try Self.waitForLog(relay, "configuration reloaded")
        #expect(try E2E.swaks(port, ["--h-Subject", "after"]).status == 0)
        #expect(try Self.transaction(held, subject: "held").hasPrefix("250"))

        // A key that cannot be read: refused, the running configuration stays, the process keeps serving.
        try Self.configuration(port: port, nextHop: sinkPort, keys: keys, dir: dir, signWith: "ed")
            .replacingOccurrences(of: keys.ed, with: dir.appendingPathComponent("missing.pem").path)
            .write(to: file, atomically: true, encoding: .utf8)
        kill(relay.process.processIdentifier, SIGHUP)
        try Self.waitForLog(relay, "reload refused")
        // And a file that is not a valid configuration at all.
        try "listen: [127.0.0.1:\(port)]\nno_such_key: 1\n".write(to: file, atomically: true, encoding: .utf8)
        kill(relay.process.processIdentifier, SIGHUP)
        try Self.waitForLog(relay, "reload refused", count: 2)
        #expect(relay.output.contains("no_such_key: unknown key"))
        #expect(try E2E.swaks(port, ["--h-Subject", "refused"]).status == 0)
        #expect(relay.process.isRunning)
        #expect(try held.command("QUIT").code == 221)

        #expect(try Self.passingSelectors(dumps, subject: "before", keys: keys, dir: dir) == [["rsa"]])
        #expect(try Self.passingSelectors(dumps, subject: "after", keys: keys, dir: dir) == [["ed"]])
        #expect(try Self.passingSelectors(dumps, subject: "held", keys: keys, dir: dir) == [["rsa"]])
        #expect(try Self.passingSelectors(dumps, subject: "refused", keys: keys, dir: dir) == [["ed"]])
    }

    @Test func eachPhaseHasItsOwnTimeout() throws {
        let dir = try Tools.makeTemporaryDirectory("timeouts")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        // The next hop takes 4 s to answer the end of data: longer than the client's command timeout.
        let (sink, sinkPort, dumps) = try E2E.startSink(dir, ["-W", ".:4"])
        defer { sink.stop() }
        let port = E2E.freePort()
        let (relay, _) = try Self.startSignet(
            dir,
            yaml: Self.configuration(
                port: port, nextHop: sinkPort, keys: keys, dir: dir, signWith: "rsa",
                extra: "timeouts: {command: 2, data_block: 6}"),
            port: port)
        defer { relay.stop() }

        // A silent client is told 421 4.4.2 and disconnected after the command timeout.
        let silent = try WireClient(port: port)
        #expect((try silent.reply()).code == 220)
        let started = Date()
        let told = (try? silent.reply())?.text
        #expect(told?.hasPrefix("421 4.4.2") == true, "\(told ?? "nothing")")
        #expect(silent.closedByPeer(within: 5))
        // The command timeout (2 s), not the data timeout (6 s).
        #expect(Date().timeIntervalSince(started) < 5)

        // Waiting for the next hop is not the client's silence: the 4 s end-of-data reply is passed on.
        let client = try WireClient(port: port)
        #expect((try client.reply()).code == 220)
        #expect(try client.command("EHLO client.example").code == 250)
        #expect(try Self.transaction(client, subject: "slow next hop").hasPrefix("250"))

        // Inside DATA the data timeout applies: a 3 s pause (over the command timeout) is fine.
        try Self.startData(client)
        try client.send("From: Alice <alice@example.com>\r\nSubject: paused\r\n\r\nfirst half\r\n")
        Thread.sleep(forTimeInterval: 3)
        #expect(try client.command("second half\r\n.").code == 250)

        // Silent past the data timeout in the middle of DATA: 421, and nothing of that message arrives.
        try Self.startData(client)
        try client.send("From: Alice <alice@example.com>\r\nSubject: abandoned\r\n\r\nno end\r\n")
        let abandoned = (try? client.reply())?.text
        #expect(abandoned?.hasPrefix("421 4.4.2") == true, "\(abandoned ?? "nothing")")
        #expect(client.closedByPeer(within: 5))

        sink.stop()
        let subjects = try E2E.dumpedMessages(dumps).map { String(decoding: $0.bytes, as: UTF8.self) }
        #expect(subjects.count == 2, "\(subjects.map { $0.prefix(300) })")
        #expect(!subjects.contains { $0.contains("Subject: abandoned") })
        #expect(relay.process.isRunning)
    }

    @Test func aNewGreetingInATransactionResetsItAtTheNextHopToo() throws {
        let dir = try Tools.makeTemporaryDirectory("rehelo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir)
        defer { sink.stop() }
        let port = E2E.freePort()
        let (relay, _) = try Self.startSignet(
            dir,
            yaml: Self.configuration(
                port: port, nextHop: sinkPort, keys: keys, dir: dir, signWith: "rsa",
                extra: "xclient_networks: [127.0.0.0/8]\nforward_client_identity: xforward"),
            port: port)
        defer { relay.stop() }

        let client = try WireClient(port: port)
        #expect((try client.reply()).code == 220)
        let ehlo = try client.command("EHLO first.example")
        #expect(ehlo.text.contains("XCLIENT"), "\(ehlo)")
        #expect(try client.command("MAIL FROM:<first@example.com>").code == 250)
        #expect(try client.command("RCPT TO:<dropped@example.org>").code == 250)
        // RFC 5321 §4.1.4: EHLO ends the transaction; DATA now is out of sequence.
        #expect(try client.command("EHLO second.example").code == 250)
        #expect(try client.command("DATA").code == 503)
        // A trusted MTA in front restates who its client is; the session starts over with a greeting.
        #expect(try client.command("XCLIENT ADDR=192.0.2.9 HELO=mx.sender.example").code == 220)
        #expect(try client.command("MAIL FROM:<alice@example.com>").code == 503)
        #expect(try client.command("EHLO second.example").code == 250)
        #expect(try client.command("XFORWARD ADDR=not-an-address").text.hasPrefix("501 5.5.4"))
        // If the next hop still had the first transaction open, its MAIL would fail as nested.
        #expect(try Self.transaction(client, subject: "second").hasPrefix("250"))
        #expect(try client.command("QUIT").code == 221)

        sink.stop()
        let arrived = try E2E.dumpedMessages(dumps)
        #expect(arrived.count == 1)
        let raw = try FileManager.default.contentsOfDirectory(atPath: dumps.path).map {
            try String(contentsOf: dumps.appendingPathComponent($0), encoding: .utf8)
        }
        #expect(raw.count == 1 && !raw[0].contains("dropped@example.org"), "\(raw)")
        #expect(try Self.passingSelectors(dumps, subject: "second", keys: keys, dir: dir) == [["rsa"]])
    }
}
