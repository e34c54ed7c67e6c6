import Foundation
import Testing

/// Failures in the middle of a message and bad input, end to end. After each, the relay process is still
/// running and still relays; what the next hop received is checked byte for byte.
extension RelayLimitsTests {
    // MARK: Client gone mid-message

    @Test func clientDisconnectMidMessageSendsNothingOn() throws {
        let setup = try H.Setup("e2e-client-drop")
        defer { setup.remove() }
        let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
        defer { recorder.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: recorderPort, keys: setup.keys, logLevel: "debug")
        defer { relay.stop() }
        let partial = Mail.message(token: "never-complete", body: Mail.body(bytes: 200_000, seed: 7))

        // Four ways to leave: mid-DATA with FIN, mid-DATA with a reset, inside a BDAT chunk, after a chunk that is not
        // the last. Half the message is over 8 KiB, so it is in the relay, hashed and buffered, when the client goes.
        let half = Array(Mail.dotStuffed(partial).prefix(partial.count / 2))
        for (how, abort) in [("DATA, close", false), ("DATA, reset", true)] {
            let client = try H.greetedClient(port)
            let replies = try client.pipeline(
                Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
            #expect(replies.map(\.code) == [250, 250, 354], "\(how): \(replies)")
            try client.send(half)
            if abort { client.abort() } else { client.close() }
        }
        do {
            let client = try H.greetedClient(port)
            try client.send(
                "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nBDAT \(partial.count) LAST\r\n")
            try client.send(Array(partial.prefix(partial.count / 2)))
            #expect(try client.replies(2).map(\.code) == [250, 250])
            client.close()
        }
        do {
            let client = try H.greetedClient(port)
            let first = Array(partial.prefix(partial.count / 2))
            let replies = try client.pipeline(
                Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nBDAT \(first.count)\r\n".utf8)
                    + first, replies: 3)
            #expect(replies.map(\.code) == [250, 250, 250], "BDAT, whole first chunk: \(replies)")
            client.close()
        }
        // Each of the four opened a next-hop transaction at MAIL; each session must end (and with it that transaction).
        let ended = H.wait(seconds: 20) { relay.output.components(separatedBy: "session ended").count - 1 >= 4 }
        #expect(ended, "the relay did not end the four sessions:\n\(relay.output.suffix(3000))")

        // The relay still serves the next client, and that message is the only one that arrives.
        let after = Mail.message(token: "after-drops", body: "The one that is complete.\r\n")
        let client = try H.greetedClient(port)
        let reply = try H.sendWithData(client, after)
        #expect(reply.code == 250, "\(reply)")
        #expect(try client.command("QUIT").code == 221)
        let arrived = try H.recorded(recorded)
        #expect(arrived.count == 1, "\(arrived.count) messages arrived at the next hop")
        let commands = try String(contentsOf: recorded.appendingPathComponent("commands.log"), encoding: .utf8)
        #expect(!commands.contains("BDAT"), "a chunk of an unfinished message was sent on:\n\(commands)")
        if let only = arrived.first {
            let content = Data(try unstuffed(only))
            H.expectSignedCopy(content, of: after, "the message after the drops")
            try H.expectVerified([content], keys: setup.keys, in: setup.dir)
        }
        #expect(relay.process.isRunning, "signet exited: \(relay.output.suffix(2000))")
    }

    // MARK: Next hop gone mid-message

    @Test func nextHopKilledMidMessageGivesATransientFailure() throws {
        let setup = try H.Setup("e2e-hop-killed")
        defer { setup.remove() }
        let hopPort = RelayEndToEndTests.freePort()
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: hopPort, keys: setup.keys)
        defer { relay.stop() }
        // 4 MiB: far more than the 256 KiB the next hop reads before it dies, so the relay is still sending.
        let message = Mail.message(token: "cut-off", body: Mail.body(bytes: 4 * 1024 * 1024, seed: 8))
        let cutoff = 256 * 1024

        var client: WireClient?
        for chunking in [false, true] {
            let how = chunking ? "BDAT" : "DATA"
            let (dying, _, recorded) = try H.startRecorder(
                setup.dir, port: hopPort, options: ["--die-after", "\(cutoff)"] + (chunking ? ["--chunking"] : []))
            defer { dying.stop() }
            // The same client connection for both: after a failed transaction the session goes on.
            if client == nil { client = try H.greetedClient(port) }
            let reply = try H.sendWithData(client!, message)
            #expect(reply.code == 451 || reply.code == 421, "\(how): the client was told \(reply)")
            let died = H.wait(seconds: 10) { !dying.process.isRunning }
            #expect(died, "\(how): the next hop did not die")
            #expect(try H.recorded(recorded).isEmpty, "\(how): the dying next hop stored a message")
            let commands =
                (try? String(contentsOf: recorded.appendingPathComponent("commands.log"), encoding: .utf8)) ?? ""
            #expect(
                commands.contains(chunking ? "BDAT " : "DATA"), "\(how): the relay never started sending: \(commands)")
            if reply.code == 421 {
                #expect(client!.closedByPeer(within: 10), "421 must close the connection")
                client = nil
            } else {
                #expect(try client!.command("RSET").code == 250, "\(how): the session did not survive")
            }
        }

        // A working next hop on the same port: the relay, and the same client session, relay again.
        let (sink, _, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"), port: hopPort)
        defer { sink.stop() }
        let retry = try client ?? H.greetedClient(port)
        let reply = try H.sendWithData(retry, message)
        #expect(reply.code == 250, "retry: \(reply)")
        #expect(try retry.command("QUIT").code == 221)
        let arrived = try H.sinkMessages(dumps)
        #expect(arrived.count == 1, "\(arrived.count) messages arrived")
        if let only = arrived.first { H.expectSignedCopy(only, of: message, "retried message") }
        #expect(relay.process.isRunning, "signet exited: \(relay.output.suffix(2000))")
    }

    // MARK: Bad input

    @Test func badInputGetsAClearReplyAndTheSessionSurvives() throws {
        let setup = try H.Setup("e2e-bad-input")
        defer { setup.remove() }
        // The recorder keeps the exact bytes on the wire: smtp-sink and Postfix would hide a bare LF by rewriting it.
        let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
        defer { recorder.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: recorderPort, keys: setup.keys)
        defer { relay.stop() }
        let client = try H.greetedClient(port)
        func expectReply(
            _ line: String, _ code: Int, _ enhanced: String? = nil, _ what: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) throws {
            let reply = try client.command(line)
            #expect(reply.code == code, "\(what): \(reply)", sourceLocation: sourceLocation)
            if let enhanced {
                #expect(reply.text.contains(" \(enhanced) "), "\(what): \(reply)", sourceLocation: sourceLocation)
            }
        }

        // Overlong command lines (RFC 5321 §4.5.3.1.4: 512 octets with CRLF): 500 5.5.6, and the session goes on.
        try expectReply(
            "MAIL FROM:<" + String(repeating: "a", count: 600) + "@example.com>", 500, "5.5.6", "600-octet MAIL")
        try expectReply("NOOP " + String(repeating: "n", count: 100_000), 500, "5.5.6", "100 kB line")
        try expectReply("NOOP", 250, nil, "NOOP after long lines")
        // Exactly at the limit: 510 octets and CRLF is still a command.
        try expectReply("NOOP " + String(repeating: "n", count: 505), 250, nil, "512-octet NOOP")

        // Out of order: 503 for each, nothing opened downstream.
        try expectReply("RCPT TO:<bob@example.org>", 503, "5.5.1", "RCPT before MAIL")
        try expectReply("DATA", 503, "5.5.1", "DATA before MAIL")
        // BDAT before MAIL: the chunk is read and discarded (RFC 3030), then refused; its bytes are no command.
        try client.send("BDAT 12\r\nQUIT\r\nQUIT\r\n")
        let bdat = try client.reply()
        #expect(bdat.code == 503, "BDAT before MAIL: \(bdat)")
        try expectReply("MAIL FROM:<alice@example.com>", 250, nil, "MAIL")
        try expectReply("MAIL FROM:<alice@example.com>", 503, "5.5.1", "second MAIL")
        // RFC 5321 §3.3 allows 503 or 554 ("no valid recipients") here.
        let dataWithoutRecipient = try client.command("DATA")
        #expect([503, 554].contains(dataWithoutRecipient.code), "DATA before RCPT: \(dataWithoutRecipient)")
        try expectReply("RSET", 250, nil, "RSET")

        // NUL and other control bytes in a command: a syntax error, not a crash and not a command.
        try client.send(Array("NOOP\u{0}x\r\n".utf8))
        let nul = try client.reply()
        #expect(nul.code >= 500 && nul.code < 600, "NUL in a command: \(nul)")
        let control = try client.command("HELP\u{1}")
        #expect(control.code >= 500 && control.code < 600, "control byte in a command: \(control)")
        // A bare LF ends a command line (as in Postfix).
        try client.send("NOOP\n")
        #expect(try client.reply().code == 250, "NOOP with bare LF")

        // Message data with bare LF and bare CR, and attempts to end the message early with them (SMTP smuggling):
        // only CRLF.CRLF ends DATA, the text after a fake end is content, and the next hop sees CRLF everywhere.
        let smuggle =
            "\n.\nMAIL FROM:<smuggled@evil.example>\nRCPT TO:<victim@example.org>\nDATA\nSubject: smuggled\n\nbad\n"
            + "\r\n.\nMAIL FROM:<smuggled2@evil.example>\r\n" + "\n.\r\nRSET\r\n" + "\r.\r\nNOOP\r\n"
        let bareLF = Array(
            ("From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: relay test bare-lf\nDate: Sun, 29 Nov 2026 10:00:00 +0000\n"
                + "Message-ID: <bare-lf@example.com>\n\nLine one\nLine two\r\nbare CR\rend" + smuggle + "Last line\r\n")
                .utf8)
        let bareLFReply = try H.sendWithData(client, bareLF)
        #expect(bareLFReply.code == 250, "bare LF message: \(bareLFReply)")

        // NUL in message data: refused (it cannot be signed reliably), nothing sent on, the session goes on.
        let withNUL = Mail.message(token: "nul", body: "before\u{0}after\r\n")
        let nulReply = try H.sendWithData(client, withNUL)
        #expect(nulReply.code >= 500 && nulReply.code < 600, "NUL in data: \(nulReply)")
        try expectReply("NOOP", 250, nil, "NOOP after the NUL message")

        // Garbage right after the end of data, in the same write: the message is relayed, the garbage answered as
        // bad commands, the session goes on.
        let clean = Mail.message(token: "clean", body: "Clean message.\r\n")
        let head = try client.pipeline(
            Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
        #expect(head.map(\.code) == [250, 250, 354], "\(head)")
        let tail = try client.pipeline(
            Mail.dotStuffed(clean) + Array("GARBAGE after the end\r\n".utf8) + [0xFF, 0xFE, 0x01, 13, 10], replies: 3)
        #expect(tail.first?.code == 250, "end of data: \(tail)")
        #expect(tail.dropFirst().allSatisfy { $0.code >= 500 && $0.code < 600 }, "two garbage lines: \(tail)")
        try expectReply("QUIT", 221, nil, "QUIT")
        #expect(client.closedByPeer(within: 10), "the relay did not close after QUIT")

        // What arrived: the bare-LF message normalized and the clean one, each once; no smuggled command downstream.
        let arrived = try H.recorded(recorded)
        #expect(arrived.count == 2, "\(arrived.count) messages arrived")
        let contents = try arrived.map { Data(try unstuffed($0)) }
        for content in contents {
            switch H.token(of: content) {
            case "bare-lf": H.expectSignedCopy(content, of: bareLF, "bare LF message")
            case "clean": H.expectSignedCopy(content, of: clean, "clean message")
            case let other: Issue.record("unexpected message \(other ?? "?") arrived")
            }
            // On the wire, every line ends in CRLF.
            let raw = [UInt8](content)
            let bare = raw.indices.filter {
                (raw[$0] == 10 && ($0 == 0 || raw[$0 - 1] != 13))
                    || (raw[$0] == 13 && ($0 + 1 == raw.count || raw[$0 + 1] != 10))
            }
            #expect(bare.isEmpty, "bare CR or LF at \(bare.prefix(5)) on the wire")
        }
        let commands = try String(contentsOf: recorded.appendingPathComponent("commands.log"), encoding: .utf8)
        #expect(
            !commands.contains("smuggled") && !commands.contains("victim"),
            "smuggled commands reached the next hop:\n\(commands)")
        // Only the two complete, acceptable messages were sent on (the NUL one ended with RSET downstream).
        let dataCommands = commands.split(whereSeparator: \.isNewline).filter {
            $0.hasPrefix("DATA") || $0.hasPrefix("BDAT")
        }
        #expect(dataCommands.count == 2, "message commands downstream:\n\(commands)")
        try H.expectVerified(contents, keys: setup.keys, in: setup.dir)

        // The process keeps serving: a fresh client (swaks) gets through.
        let swaks = try RelayEndToEndTests.swaks(port)
        #expect(swaks.status == 0, "swaks after the bad input: \(swaks.text)")
        #expect(relay.process.isRunning, "signet exited: \(relay.output.suffix(2000))")
    }

    /// DATA content as the recorder stored it (dot-stuffed, with the final ".CRLF"), or BDAT content as it is.
    func unstuffed(_ wire: Data) throws -> [UInt8] {
        let bytes = [UInt8](wire)
        guard bytes.suffix(3) == Array(".\r\n".utf8) else { return bytes }
        var out: [UInt8] = []
        var atLineStart = true
        var index = 0
        let end = bytes.count - 3
        while index < end {
            let byte = bytes[index]
            if atLineStart && byte == UInt8(ascii: ".") {
                index += 1
                atLineStart = false
                continue
            }
            out.append(byte)
            atLineStart = byte == 10 && index > 0 && bytes[index - 1] == 13
            index += 1
        }
        return out
    }
}

extension RelayLimitsTests {
    // MARK: Next hop too slow

    /// RelayLifecycleTests covers the client's side (silence, a stall in DATA, a next hop slower than the client's
    /// timeout); this is the next hop's side: too slow at MAIL or at the end of data gives a 4xx in time, never 250.
    @Test func nextHopTooSlowGivesATransientFailureInTime() throws {
        let setup = try H.Setup("e2e-slow-hop")
        defer { setup.remove() }
        // Seconds, not minutes: 2 s for the next hop's reply to a command, 4 s for its reply to the end of data.
        let environment = ["SIGNET_TIMEOUTS_NEXT_HOP_COMMAND": "2", "SIGNET_TIMEOUTS_NEXT_HOP_DATA_END": "4"]
        for (flags, stage, limit) in [(["-W", "MAIL:6"], "MAIL", 2.0), (["-W", ".:8"], "end of data", 4.0)] {
            let name = stage.replacingOccurrences(of: " ", with: "-")
            let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory(name), flags)
            defer { sink.stop() }
            let (relay, port) = try RelayEndToEndTests.startSignet(
                try setup.subdirectory(name + "-relay"), nextHop: sinkPort, keys: setup.keys, environment: environment)
            defer { relay.stop() }
            let client = try H.greetedClient(port)
            let started = Date()
            let reply: WireClient.Reply
            if stage == "MAIL" {
                reply = try client.command("MAIL FROM:<alice@example.com>")
            } else {
                reply = try H.sendWithData(client, Mail.message(token: "too-slow", body: "Too slow.\r\n"))
            }
            let waited = Date().timeIntervalSince(started)
            #expect(reply.isTransientFailure, "next hop too slow at \(stage): \(reply)")
            #expect(waited < limit + 3, "the client waited \(waited) s at \(stage) for a \(limit) s timeout")
            if reply.code == 421 {
                #expect(client.closedByPeer(within: 5), "421 must close the connection")
            } else {
                #expect(try client.command("QUIT").code == 221, "the session did not survive")
            }
            // The next hop may still take the message after the relay gave up (RFC 1047's duplicate problem):
            // the client retries, so at most this one extra copy.
            #expect(try H.sinkMessages(dumps).count <= (stage == "MAIL" ? 0 : 1))
            #expect(relay.process.isRunning)
        }
    }
}
