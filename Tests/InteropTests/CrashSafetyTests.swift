import Foundation
import Testing

/// SIGKILL of `signet run` at random moments under load, and restart. Signet keeps no queue: it answers a
/// message's end of data only after the next hop has answered it. So from the client's log (which messages got
/// 250) and the next hop's (which messages it stored), every message acknowledged with 250 must be at the next
/// hop exactly once, whenever the kill came. A message may be at the next hop without a 250 to the client (the
/// next hop took it, then Signet died before passing the 250 on): the client retries it and the recipient may get
/// it twice. That is the at-least-once contract of every MTA (RFC 1047); never a 250 without delivery.
@Suite("Crash safety: SIGKILL under load", .serialized)
struct CrashSafetyTests {
    typealias H = RelayHarness

    /// What the clients were told, per message token.
    final class ClientLog: @unchecked Sendable {
        // @unchecked: every access holds the lock.
        let lock = NSLock()
        var replies: [String: String] = [:]
        func record(_ token: String, _ outcome: String) { lock.withLock { replies[token] = outcome } }
    }

    @Test func killedAtRandomUnderLoad() throws {
        let setup = try H.Setup("crash")
        defer { setup.remove() }
        let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
        defer { recorder.stop() }
        let port = RelayEndToEndTests.freePort()
        func startRelay(_ generation: Int) throws -> RelayEndToEndTests.Running {
            let relay = try RelayEndToEndTests.Running(
                try Tools.signet,
                [
                    "run", "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(recorderPort)", "--domain",
                    "example.com", "--selector", "rsa", "--key", setup.keys.rsa, "--selector", "ed", "--key",
                    setup.keys.ed, "--state-dir", setup.dir.appendingPathComponent("state").path,
                    "--metrics-listen", "",
                ],
                log: setup.dir.appendingPathComponent("signet-\(generation).log"))
            relay.killAtOnce = true
            return relay
        }
        var relay = try startRelay(0)
        defer { relay.stop() }
        try RelayEndToEndTests.waitForPort(port)

        // Four clients, 60 messages each, up to 200 kB so some are in flight (read, signed, being sent) at a kill.
        let clients = 4
        let perClient = 60
        let log = ClientLog()
        let done = DispatchGroup()
        let started = Date()
        for clientIndex in 0..<clients {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                var connection: WireClient?
                for index in 0..<perClient {
                    let token = "c\(clientIndex)-m\(index)"
                    let size = [300, 5000, 60_000, 200_000][(clientIndex + index) % 4]
                    let message = Mail.message(token: token, body: Mail.body(bytes: size, seed: index))
                    // Each message is tried once: a retry would make "exactly once" untestable (see above).
                    do {
                        if connection == nil {
                            // The relay may be down: wait for it as a client's queue would, bounded.
                            let deadline = Date().addingTimeInterval(20)
                            while connection == nil && Date() < deadline {
                                connection = try? H.greetedClient(port, timeout: 20)
                                if connection == nil { Thread.sleep(forTimeInterval: 0.1) }
                            }
                        }
                        guard let client = connection else {
                            log.record(token, "no connection")
                            continue
                        }
                        let reply = try H.sendWithData(client, message)
                        log.record(token, "\(reply.code)")
                        if reply.code == 421 { connection = nil }
                    } catch {
                        log.record(token, "error: \(error)")
                        connection = nil
                    }
                }
                connection?.close()
            }
        }

        // Three kills at random moments while the load runs, each followed by a restart on the same port.
        var kills: [String] = []
        for generation in 1...3 {
            Thread.sleep(forTimeInterval: Double.random(in: 0.5...2.0))
            let pid = relay.process.processIdentifier
            kill(pid, SIGKILL)
            relay.process.waitUntilExit()
            let sofar = log.lock.withLock { log.replies.count }
            kills.append(
                "kill \(generation) at \(String(format: "%.1f", Date().timeIntervalSince(started))) s after \(sofar) answers"
            )
            relay = try startRelay(generation)
            try RelayEndToEndTests.waitForPort(port)
        }
        let allDone = done.wait(timeout: .now() + 90) == .success
        #expect(allDone, "the clients did not finish in 90 s")
        let seconds = Date().timeIntervalSince(started)

        // The invariant, from both logs.
        let told = log.lock.withLock { log.replies }
        var atHop: [String: Int] = [:]
        var contents: [String: Data] = [:]
        for wire in try H.recorded(recorded) {
            let content = Data(try RelayLimitsTests().unstuffed(wire))
            guard let token = H.token(of: content) else { continue }
            atHop[token, default: 0] += 1
            contents[token] = content
        }
        let acknowledged = told.filter { $0.value == "250" }.map(\.key)
        let notAcknowledged = told.filter { $0.value != "250" }
        for token in acknowledged {
            #expect(atHop[token] == 1, "\(token): 250 to the client, \(atHop[token] ?? 0) copies at the next hop")
        }
        let deliveredWithout250 = notAcknowledged.keys.filter { atHop[$0] != nil }
        for token in notAcknowledged.keys {
            #expect((atHop[token] ?? 0) <= 1, "\(token): \(atHop[token] ?? 0) copies without a 250")
        }
        #expect(Set(atHop.keys).isSubset(of: Set(told.keys)), "the next hop has messages no client sent")
        // Every copy at the next hop is complete and signed: a kill never leaves half a message delivered.
        for (token, content) in contents {
            guard let parts = token.split(separator: "-").last.flatMap({ Int($0.dropFirst()) }),
                let clientIndex = token.split(separator: "-").first.flatMap({ Int($0.dropFirst()) })
            else { continue }
            let size = [300, 5000, 60_000, 200_000][(clientIndex + parts) % 4]
            H.expectSignedCopy(
                content, of: Mail.message(token: token, body: Mail.body(bytes: size, seed: parts)), token)
        }
        try H.expectVerified(Array(contents.values.prefix(30)), keys: setup.keys, in: setup.dir, verifiers: [.dkimpy])
        #expect(acknowledged.count > clients * perClient / 2, "only \(acknowledged.count) messages got 250")
        print(
            "crash safety: \(told.count) messages tried in \(String(format: "%.1f", seconds)) s, \(acknowledged.count) "
                + "got 250 (each at the next hop once), \(notAcknowledged.count) did not, \(deliveredWithout250.count) "
                + "of those at the next hop anyway (the at-least-once case); \(kills.joined(separator: "; "))")
        #expect(relay.process.isRunning)
    }
}
