import Foundation
import Testing

/// `signet run` against a next hop that misbehaves on purpose (Tests/Interop/faulty_hop.py), one fault per case:
/// a reset, a 4xx, a 5xx, a slow or byte-by-byte reply, garbage, at every protocol step, and a broken STARTTLS.
/// For every case the test keeps what the client was told and what the next hop received and acknowledged, and
/// checks the relay's contract: a message the client got 250 for was received complete and acknowledged by the
/// next hop exactly once; a message the client did not get 250 for was never acknowledged by the next hop
/// (it may have been received up to its final dot, which is not delivery). After every case the same relay
/// process relays the next message.
@Suite("Fault injection: a misbehaving next hop", .serialized)
struct FaultInjectionTests {
    typealias H = RelayHarness

    /// One fault, and what the client must be told.
    struct Case: CustomStringConvertible {
        var fault: String
        /// The class of the reply the client ends with: 2 (relayed), 4 or 5.
        var outcome: Int
        var description: String { fault }
    }

    /// The faulty hop's event log and stored messages.
    struct HopRecord {
        struct Event: Decodable {
            var connection: Int
            var event: String
            var message: Int?
            var line: String?
        }
        var events: [Event]
        var contents: [Int: Data]

        init(_ dir: URL) throws {
            let log = (try? String(contentsOf: dir.appendingPathComponent("events.log"), encoding: .utf8)) ?? ""
            let decoder = JSONDecoder()
            events = try log.split(separator: "\n").map { try decoder.decode(Event.self, from: Data($0.utf8)) }
            contents = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".raw") {
                if let number = Int(name.dropFirst("message-".count).dropLast(".raw".count)) {
                    contents[number] = try Data(contentsOf: dir.appendingPathComponent(name))
                }
            }
        }

        /// Messages carrying `token` that reached their final dot, and those of them the hop acknowledged.
        func messages(token: String) -> (complete: [Int], acked: [Int]) {
            let mine = Set(contents.filter { H.token(of: $0.value) == token }.map(\.key))
            let complete = events.filter { $0.event == "complete" }.compactMap(\.message).filter { mine.contains($0) }
            let acked = events.filter { $0.event == "acked" }.compactMap(\.message).filter { mine.contains($0) }
            return (complete, acked)
        }
    }

    /// What a client was told in one transaction; stops at the first refusal like a real client.
    static func transact(_ port: Int, _ message: [UInt8]) -> [String] {
        var told: [String] = []
        do {
            let client = try WireClient(port: port, timeout: 30)
            let greeting = try client.reply()
            told.append("\(greeting.code)")
            guard greeting.code == 220 else { return told }
            for command in [
                "EHLO client.example.com", "MAIL FROM:<alice@example.com>", "RCPT TO:<bob@example.org>", "DATA",
            ] {
                let reply = try client.command(command)
                told.append(reply.lines.last.map { String($0.prefix(60)) } ?? "?")
                guard reply.isPositive else { return told }
            }
            let end = try client.pipeline(Mail.dotStuffed(message), replies: 1)[0]
            told.append(end.lines.last.map { String($0.prefix(60)) } ?? "?")
            _ = try? client.command("QUIT")
        } catch {
            told.append("error: \(error)")
        }
        return told
    }

    /// The last reply's class: 2, 4, 5, or 0 when the connection broke without a reply.
    static func outcome(_ told: [String]) -> Int {
        guard let last = told.last, let code = Int(last.prefix(3)) else { return 0 }
        return code == 354 ? 0 : code / 100
    }

    static let cases: [Case] = {
        var all: [Case] = []
        // A reset or a refusal at any step before the end of data: never 250.
        for step in ["greeting", "ehlo", "mail", "rcpt", "data"] {
            all.append(Case(fault: "\(step) reset", outcome: 4))
            // A refused EHLO is followed by HELO (as Postfix does), which this hop accepts: relayed. A 5xx
            // greeting is the next hop's state, not the message's: Signet says 4xx.
            all.append(Case(fault: "\(step) 4xx", outcome: step == "ehlo" ? 2 : 4))
            all.append(Case(fault: "\(step) 5xx", outcome: step == "ehlo" ? 2 : step == "greeting" ? 4 : 5))
        }
        all.append(Case(fault: "content reset", outcome: 4))
        all.append(Case(fault: "dot reset", outcome: 4))
        all.append(Case(fault: "dot 4xx", outcome: 4))
        all.append(Case(fault: "dot 5xx", outcome: 5))
        // Slow within the timeouts (2 s for a command, 3 s for the end of data): relayed.
        for step in ["greeting", "ehlo", "mail", "rcpt", "data"] {
            all.append(Case(fault: "\(step) slow 1", outcome: 2))
        }
        all.append(Case(fault: "dot slow 1.5", outcome: 2))
        // Slower than the timeouts: 4xx in time, and the late reply is never taken as delivery.
        all.append(Case(fault: "mail slow 4", outcome: 4))
        all.append(Case(fault: "rcpt slow 4", outcome: 4))
        all.append(Case(fault: "dot slow 5", outcome: 4))
        // Replies split byte by byte: relayed.
        for step in ["greeting", "ehlo", "mail", "rcpt", "data", "dot"] {
            all.append(Case(fault: "\(step) bytewise", outcome: 2))
        }
        // Garbage replies: 4xx (the next hop cannot be understood, so its state is unknown).
        for step in ["greeting", "ehlo", "mail", "dot"] {
            for garbage in ["nonnumeric", "badmultiline", "overlong"] {
                all.append(Case(fault: "\(step) \(garbage)", outcome: 4))
            }
        }
        return all
    }()

    @Test func everyFaultKeepsTheContract() throws {
        let setup = try H.Setup("faults-hop")
        defer { setup.remove() }
        let hopDir = try setup.subdirectory("hop")
        let (hop, hopPort) = try Self.startHop(hopDir)
        defer { hop.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: hopPort, keys: setup.keys,
            environment: [
                "SIGNET_TIMEOUTS_NEXT_HOP_CONNECT": "3", "SIGNET_TIMEOUTS_NEXT_HOP_COMMAND": "2",
                "SIGNET_TIMEOUTS_NEXT_HOP_DATA_END": "3",
                // Each case's fault is its own next-hop connection's: none is kept for the next case.
                "SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "0",
            ])
        defer { relay.stop() }
        let faultFile = hopDir.appendingPathComponent("fault")
        var table: [String] = []
        var sent: [String: [UInt8]] = [:]
        var told: [String: [String]] = [:]
        var mismatches: [String] = []
        let started = Date()
        for (index, fault) in Self.cases.enumerated() {
            try Data(fault.fault.utf8).write(to: faultFile)
            let token = "fault-\(index)"
            let message = Mail.message(token: token, body: Mail.body(bytes: 6000, seed: index))
            sent[token] = message
            let answer = Self.transact(port, message)
            told[token] = answer
            let got = Self.outcome(answer)
            if got != fault.outcome { mismatches.append("\(fault): expected \(fault.outcome)xx, told \(answer)") }
            // Recovery: with the fault gone, the same relay relays the next message.
            try FileManager.default.removeItem(at: faultFile)
            let cleanToken = "clean-\(index)"
            let clean = Mail.message(token: cleanToken, body: "After \(fault).\r\n")
            sent[cleanToken] = clean
            let cleanAnswer = Self.transact(port, clean)
            told[cleanToken] = cleanAnswer
            if Self.outcome(cleanAnswer) != 2 { mismatches.append("after \(fault): \(cleanAnswer)") }
            table.append("\(fault.fault)\t\(answer.joined(separator: " | "))")
            #expect(relay.process.isRunning, "signet exited after \(fault): \(relay.output.suffix(2000))")
            if !relay.process.isRunning { break }
        }
        let seconds = Date().timeIntervalSince(started)
        print(
            "fault table (\(Self.cases.count) faults in \(String(format: "%.1f", seconds)) s):\n"
                + table.joined(separator: "\n"))
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")

        // The contract, from both ends' records.
        // The hop logs each 250 after sending it: wait until it has logged as many as the clients were given (on a
        // loaded machine that can take a moment), then half a second more for late replies.
        let toldOK = told.values.filter { Self.outcome($0) == 2 }.count
        H.wait(seconds: 10) {
            ((try? HopRecord(hopDir))?.events.filter { $0.event == "acked" }.count ?? 0) >= toldOK
        }
        Thread.sleep(forTimeInterval: 0.5)
        let record = try HopRecord(hopDir)
        var delivered: [Data] = []
        for (token, answer) in told {
            let (complete, acked) = record.messages(token: token)
            if Self.outcome(answer) == 2 {
                #expect(
                    acked.count == 1, "\(token): 250 to the client, acknowledged \(acked.count) times by the next hop")
                #expect(complete.count == 1, "\(token): 250 to the client, received complete \(complete.count) times")
                if let number = acked.first, let wire = record.contents[number], let original = sent[token] {
                    let content = Data(try RelayLimitsTests().unstuffed(wire))
                    H.expectSignedCopy(content, of: original, token)
                    delivered.append(content)
                }
            } else {
                #expect(acked.isEmpty, "\(token): told \(answer), yet the next hop acknowledged it")
            }
        }
        // Every message the hop acknowledged was acknowledged to a client (no delivery behind the client's back).
        let ackedAll = record.events.filter { $0.event == "acked" }.compactMap(\.message)
        #expect(Set(ackedAll).count == ackedAll.count, "a message was acknowledged twice")
        try H.expectVerified(Array(delivered.prefix(20)), keys: setup.keys, in: setup.dir, verifiers: [.dkimpy])
    }

    /// The TLS failure: STARTTLS offered, then bytes that are no TLS handshake.
    @Test(arguments: ["opportunistic", "required"])
    func brokenStartTLS(mode: String) throws {
        let setup = try H.Setup("faults-tls-\(mode)")
        defer { setup.remove() }
        let hopDir = try setup.subdirectory("hop")
        let (hop, hopPort) = try Self.startHop(hopDir)
        defer { hop.stop() }
        try Data("starttls garbage".utf8).write(to: hopDir.appendingPathComponent("fault"))
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: hopPort, keys: setup.keys,
            environment: [
                "SIGNET_NEXT_HOP_TLS_MODE": mode, "SIGNET_NEXT_HOP_TLS_VERIFY": "false",
                "SIGNET_TIMEOUTS_NEXT_HOP_CONNECT": "3", "SIGNET_TIMEOUTS_NEXT_HOP_COMMAND": "3",
            ])
        defer { relay.stop() }
        let message = Mail.message(token: "tls-\(mode)", body: "Over a broken STARTTLS.\r\n")
        let answer = Self.transact(port, message)
        // The hop logs its own 250 after sending it, so the relay (and the client) can hear it first: read the
        // record again until it has settled.
        var record = try HopRecord(hopDir)
        if mode == "opportunistic" {
            H.wait(seconds: 10) {
                record = (try? HopRecord(hopDir)) ?? record
                return record.messages(token: "tls-\(mode)").acked.count == 1
            }
        }
        let (complete, acked) = record.messages(token: "tls-\(mode)")
        let startTLS = record.events.filter { $0.line?.hasPrefix("STARTTLS") == true }
        #expect(!startTLS.isEmpty, "the relay never tried STARTTLS")
        if mode == "opportunistic" {
            // Postfix `may`: one retry in plain text, which the hop accepts.
            #expect(Self.outcome(answer) == 2, "opportunistic: \(answer)")
            #expect(acked.count == 1 && complete.count == 1, "opportunistic: acked \(acked), complete \(complete)")
        } else {
            #expect(Self.outcome(answer) == 4, "required: \(answer)")
            #expect(complete.isEmpty && acked.isEmpty, "required: the message went out in plain text")
            #expect(
                !record.events.contains { $0.line?.hasPrefix("MAIL") == true },
                "required: MAIL was sent without TLS")
        }
        #expect(relay.process.isRunning)
    }

    static func startHop(_ dir: URL) throws -> (RelayEndToEndTests.Running, Int) {
        let port = RelayEndToEndTests.freePort()
        let hop = try RelayEndToEndTests.Running(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("faulty_hop.py").path, "\(port)", dir.path],
            log: dir.appendingPathComponent("hop.log"))
        hop.killAtOnce = true
        guard H.wait(seconds: 20, { hop.output.contains("ready") }) else {
            throw ToolError("faulty_hop.py did not start: \(hop.output)")
        }
        return (hop, port)
    }
}
