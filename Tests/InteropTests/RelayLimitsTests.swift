import Foundation
import Testing

/// `signet run` pushed on size, concurrency and pipelining, with real next hops (a Postfix instance, smtp-sink).
/// Each test checks both ends: what the client was told, and what the next hop received: every acknowledged
/// message arrived once, signed, and byte for byte what was sent; nothing arrived that was not acknowledged.
/// One suite, run serially: the tests share two cores and measure memory.
@Suite("Relay limits and failures, end to end", .serialized)
struct RelayLimitsTests {
    typealias H = RelayHarness

    // MARK: Postfix as the next hop

    @Test func postfixInstanceAsNextHop() throws {
        let setup = try H.Setup("e2e-postfix")
        defer { setup.remove() }
        let postfix = try PostfixInstance(try setup.subdirectory("postfix"))
        defer { postfix.stop() }
        try postfix.start()
        // A 128 KiB spool threshold: the 300 kB message below goes through the spool file and out as BDAT.
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: postfix.port, keys: setup.keys, environment: ["SIGNET_LIMITS_SPOOL_THRESHOLD": "128KiB"]
        )
        defer { relay.stop() }

        // swaks over DATA, with the message from a file so the bytes sent are known.
        let swaksMessage = Mail.message(
            token: "swaks", body: "Hello through Signet and Postfix.\r\n\r\n-- \r\nAlice\r\n")
        let swaksFile = setup.dir.appendingPathComponent("swaks.eml")
        // swaks writes CRLF.CRLF after the data itself, so the file leaves out the final CRLF.
        try Data(swaksMessage.dropLast(2)).write(to: swaksFile)
        let swaks = try Tools.run(
            "/usr/bin/swaks",
            [
                "--server", "127.0.0.1", "--port", "\(port)", "--from", "alice@example.com", "--to", "bob@example.org",
                "--data", swaksFile.path,
            ],
            timeout: 60)
        #expect(swaks.status == 0, "swaks: \(swaks.text)")

        // A BDAT message with 8-bit text, lines starting with "." and a long body: Postfix takes BDAT (CHUNKING),
        // so the relay sends it on as BDAT too, read back from its spool file.
        let bdatMessage = Mail.message(
            token: "bdat", body: "Grüße, naïve café — ünïcödé.\r\n" + Mail.body(bytes: 300_000, seed: 1))
        let client = try H.greetedClient(port)
        let bdatReplies = try client.pipeline(
            Array(
                "MAIL FROM:<alice@example.com> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\nBDAT \(bdatMessage.count) LAST\r\n"
                    .utf8)
                + bdatMessage,
            replies: 3)
        #expect(bdatReplies.map(\.code) == [250, 250, 250], "\(bdatReplies)")
        // And one more over DATA on the same connection, which keeps its downstream connection.
        let dataMessage = Mail.message(token: "data", body: Mail.body(bytes: 20_000, seed: 2))
        let dataReply = try H.sendWithData(client, dataMessage)
        #expect(dataReply.code == 250, "\(dataReply)")
        #expect(try client.command("QUIT").code == 221)

        // The client was told Postfix's own "queued as ID"; each ID must be delivered by Postfix, once.
        let queued = ([swaks.text] + bdatReplies.map(\.text) + [dataReply.text]).flatMap { text in
            text.components(separatedBy: "queued as ").dropFirst().map { String($0.prefix { $0.isHexDigit }) }
        }
        #expect(queued.count == 3, "queue IDs in the replies: \(queued)\n\(swaks.text)")
        let allDelivered = H.wait(seconds: 30) {
            queued.allSatisfy { id in postfix.log.contains("\(id): to=<bob@example.org>, relay=virtual") }
        }
        #expect(allDelivered, "Postfix did not deliver \(queued) in 30 s:\n\(postfix.log)")
        for id in queued {
            let deliveries = postfix.log.components(separatedBy: "\n").filter {
                $0.contains("\(id): to=<") && $0.contains("status=sent")
            }
            #expect(deliveries.count == 1, "\(id): \(deliveries)")
        }

        // Postfix logs its per-session command counts when the session ends (the relay keeps it for
        // `timeouts.next_hop_idle` first): the relay spoke BDAT to it, not DATA.
        #expect(H.wait(seconds: 30) { postfix.log.contains(" bdat=") }, "\(postfix.log)")
        #expect(!postfix.log.contains(" data="), "\(postfix.log)")
        let files = try postfix.delivered()
        #expect(files.count == 3, "\(files.count) messages in the Maildir")
        var arrived: [Data] = []
        for file in files {
            let content = H.maildirContent(try Data(contentsOf: file))
            arrived.append(content)
            switch H.token(of: content) {
            case "swaks": H.expectSignedCopy(content, of: swaksMessage, "swaks via Postfix")
            case "bdat": H.expectSignedCopy(content, of: bdatMessage, "BDAT via Postfix")
            case "data": H.expectSignedCopy(content, of: dataMessage, "DATA via Postfix")
            case let other: Issue.record("unexpected message \(other ?? "?") in the Maildir")
            }
        }
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// A client slower than the next hop's idle timeout: Postfix with `smtpd_timeout = 3s` waits for the relay,
    /// which holds the connection open (MAIL and RCPT sent) while the client sends its message over about
    /// seven seconds. With `timeouts.next_hop_keepalive` at 1 s the relay's NOOPs keep Postfix waiting and the
    /// message is delivered, signed; with it off, Postfix hangs up mid-message and the client gets 451 4.4.2,
    /// nothing delivered. Postfix's log says which commands it got from the relay.
    @Test(arguments: [1, 0])
    func slowClientKeepsTheNextHopAwake(keepalive: Int) throws {
        let setup = try H.Setup("e2e-keepalive-\(keepalive)")
        defer { setup.remove() }
        let postfix = try PostfixInstance(try setup.subdirectory("postfix"), extraMain: "smtpd_timeout = 3s")
        defer { postfix.stop() }
        try postfix.start()
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: postfix.port, keys: setup.keys,
            environment: [
                "SIGNET_TIMEOUTS_NEXT_HOP_KEEPALIVE": "\(keepalive)", "SIGNET_TIMEOUTS_MIN_DATA_RATE": "0",
            ])
        defer { relay.stop() }

        let message = Mail.message(token: "slow-\(keepalive)", body: Mail.body(bytes: 7000, seed: 7))
        let client = try H.greetedClient(port)
        let replies = try client.pipeline(
            Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8), replies: 3)
        #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
        let content = Mail.dotStuffed(message)
        let pieces = 14
        let size = (content.count + pieces - 1) / pieces
        for start in stride(from: 0, to: content.count, by: size) {
            try client.send(Array(content[start..<min(start + size, content.count)]))
            Thread.sleep(forTimeInterval: 0.5)
        }
        let final = try client.pipeline(Array(".\r\n".utf8), replies: 1)[0]
        _ = try? client.command("QUIT")

        if keepalive > 0 {
            #expect(final.code == 250, "\(final)\n\(postfix.log)")
            // Postfix counts a session's commands in its disconnect line, written when the relay quits.
            let counted = H.wait(seconds: 30) { postfix.log.contains("noop=") }
            #expect(counted, "Postfix logged no NOOP from the relay:\n\(postfix.log)")
            let delivered = H.wait(seconds: 30) { ((try? postfix.delivered()) ?? []).count == 1 }
            #expect(delivered, "Postfix did not deliver the message:\n\(postfix.log)")
            if let file = try postfix.delivered().first {
                let arrived = H.maildirContent(try Data(contentsOf: file))
                H.expectSignedCopy(arrived, of: message, "slow upload via Postfix")
                try H.expectVerified([arrived], keys: setup.keys, in: setup.dir)
            }
        } else {
            // The control: without the NOOPs the same upload outlives Postfix's patience.
            #expect(final.code == 451 && final.text.contains("4.4.2"), "\(final)")
            #expect(H.wait(seconds: 30) { postfix.log.contains("timeout after") }, "\(postfix.log)")
            Thread.sleep(forTimeInterval: 1)
            #expect(try postfix.delivered().isEmpty)
        }
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    /// RCPTs the client pipelines behind MAIL go to the next hop with MAIL in one write. What each side sees must
    /// be what it would see one command at a time: a recipient the next hop refuses is refused to the client and
    /// never delivered, one over Signet's own limit never reaches the next hop, and after a refused MAIL nothing
    /// is delivered. Postfix counts what it got per session ("rcpt=accepted/sent" in its disconnect line).
    @Test func pipelinedRecipientsReachPostfixAsTheClientWasTold() throws {
        let setup = try H.Setup("e2e-pipelined-rcpt")
        defer { setup.remove() }
        let postfix = try PostfixInstance(
            try setup.subdirectory("postfix"),
            extraMain: """
                smtpd_delay_reject = no
                smtpd_sender_restrictions = check_sender_access inline:{ {refused@example.com = REJECT sender refused} }
                smtpd_recipient_restrictions = check_recipient_access inline:{ {refused@example.org = REJECT no such user} }, permit_mynetworks, reject_unauth_destination
                """)
        defer { postfix.stop() }
        try postfix.start()
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: postfix.port, keys: setup.keys,
            // Postfix's per-session counts below need one next-hop session per client: none is kept for the next.
            environment: ["SIGNET_LIMITS_MAX_RECIPIENTS": "4", "SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "0"])
        defer { relay.stop() }

        func transaction(
            _ token: String, sender: String, recipients: [String]
        ) throws -> (replies: [Int], final: WireClient.Reply?, message: [UInt8]) {
            let client = try H.greetedClient(port)
            let message = Mail.message(token: token, body: "Pipelined recipients.\r\n")
            var group = "MAIL FROM:<\(sender)>\r\n"
            for recipient in recipients { group += "RCPT TO:<\(recipient)>\r\n" }
            group += "DATA\r\n"
            let replies = try client.pipeline(Array(group.utf8), replies: recipients.count + 2)
            var final: WireClient.Reply?
            if replies.last?.code == 354 {
                final = try client.pipeline(message + Array(".\r\n".utf8), replies: 1)[0]
            }
            _ = try? client.command("QUIT")
            return (replies.map(\.code), final, message)
        }

        // 1. Postfix refuses one recipient; the others are delivered, that one is not.
        let partial = try transaction(
            "partial", sender: "alice@example.com",
            recipients: ["a@example.org", "refused@example.org", "c@example.org"])
        #expect(partial.replies == [250, 250, 554, 250, 354], "\(partial.replies)")
        #expect(partial.final?.code == 250, "\(String(describing: partial.final))")
        // 2. Five recipients over Signet's limit of four: the fifth gets Signet's 452 and never reaches Postfix.
        let overLimit = try transaction(
            "over-limit", sender: "alice@example.com",
            recipients: ["a@example.org", "b@example.org", "c@example.org", "d@example.org", "e@example.org"])
        #expect(overLimit.replies == [250, 250, 250, 250, 250, 452, 354], "\(overLimit.replies)")
        #expect(overLimit.final?.code == 250, "\(String(describing: overLimit.final))")
        // 3. Postfix refuses MAIL: the recipients sent with it are refused by both, DATA is refused, nothing goes.
        let refusedSender = try transaction(
            "refused-sender", sender: "refused@example.com", recipients: ["a@example.org", "b@example.org"])
        #expect(refusedSender.replies == [554, 503, 503, 503], "\(refusedSender.replies)")
        #expect(refusedSender.final == nil)

        let queued = [partial.final, overLimit.final].compactMap { $0?.text }.flatMap { text in
            text.components(separatedBy: "queued as ").dropFirst().map { String($0.prefix { $0.isHexDigit }) }
        }
        #expect(queued.count == 2, "\(queued)")
        let expected: [String: Set<String>] = [
            queued.first ?? "?": ["a@example.org", "c@example.org"],
            queued.last ?? "?": ["a@example.org", "b@example.org", "c@example.org", "d@example.org"],
        ]
        let allDelivered = H.wait(seconds: 30) {
            let log = postfix.log
            return expected.allSatisfy { id, recipients in
                recipients.allSatisfy { log.contains("\(id): to=<\($0)>") && log.contains("status=sent") }
            }
        }
        #expect(allDelivered, "Postfix did not deliver \(expected) in 30 s:\n\(postfix.log)")
        let lines = postfix.log.components(separatedBy: "\n")
        for (id, recipients) in expected {
            let deliveredTo = Set(
                lines.filter { $0.contains("\(id): to=<") }.compactMap { line -> String? in
                    guard let start = line.range(of: "to=<"), let end = line[start.upperBound...].firstIndex(of: ">")
                    else { return nil }
                    return String(line[start.upperBound..<end])
                })
            #expect(deliveredTo == recipients, "\(id) went to \(deliveredTo)")
        }
        // Postfix's own count per session: the fifth recipient never reached it, the refused sender's
        // recipients did (with MAIL) and were refused there.
        // ("rcpt=4": all accepted.) Postfix logs a session when it ends, which may be after the client's QUIT.
        var sessions: [String] = []
        _ = H.wait(seconds: 10) {
            sessions = postfix.log.components(separatedBy: "\n").filter {
                $0.contains("disconnect from") && $0.contains(" mail=")
            }
            return sessions.count >= 3
        }
        #expect(sessions.contains { $0.contains(" rcpt=2/3 ") }, "\(sessions)")
        #expect(sessions.contains { $0.contains(" rcpt=4 ") }, "\(sessions)")
        #expect(sessions.contains { $0.contains(" mail=0/1 ") && $0.contains(" rcpt=0/2 ") }, "\(sessions)")
        #expect(!lines.contains { $0.contains("refused@example.org") && $0.contains("status=sent") })
        #expect(relay.process.isRunning, "signet exited: \(relay.output)")
    }

    // MARK: BDAT

    @Test func bdatChunksFromOneByteToOneMebibyte() throws {
        let setup = try H.Setup("e2e-bdat")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: sinkPort, keys: setup.keys)
        defer { relay.stop() }

        // Lines of only "." and lines starting with "." are plain content in BDAT; smtp-sink takes DATA, so the
        // relay has to dot-stuff them, and a "." line must not end the message early downstream.
        let dots = ".\r\n..\r\n.hidden\r\n"
        let sizeCycle = [1, 2, 3, 511, 512, 513, 4095, 65536, 1_048_576]
        let messages: [(token: String, bytes: [UInt8], chunks: [Int])] = [
            ("one-byte-chunks", Mail.message(token: "one-byte-chunks", body: "Short.\r\n" + dots), []),
            (
                "cycle", Mail.message(token: "cycle", body: dots + Mail.body(bytes: 3_200_000, seed: 3) + dots),
                sizeCycle
            ),
            ("one-mebibyte", Mail.message(token: "one-mebibyte", exactSize: 1_048_576, seed: 4), [1_048_576]),
            // BDAT may end without CRLF; the relay completes the line before hashing.
            ("no-final-crlf", Mail.message(token: "no-final-crlf", body: "No line end at the end"), [7]),
        ]
        let client = try H.greetedClient(port)
        var expected: [String: [UInt8]] = [:]
        for (token, message, cycle) in messages {
            // Cut the message into chunks: sizes from the cycle in turn, or 1 byte each.
            var chunks: [ArraySlice<UInt8>] = []
            var offset = 0
            var turn = 0
            while offset < message.count {
                let size = cycle.isEmpty ? 1 : cycle[turn % cycle.count]
                chunks.append(message[offset..<min(offset + size, message.count)])
                offset += size
                turn += 1
            }
            var payload = Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\n".utf8)
            for (index, chunk) in chunks.enumerated() {
                payload += Array("BDAT \(chunk.count)\(index == chunks.count - 1 ? " LAST" : "")\r\n".utf8) + chunk
            }
            let replies = try client.pipeline(payload, replies: 2 + chunks.count)
            #expect(replies[0].code == 250 && replies[1].code == 250, "\(token): \(replies.prefix(2))")
            let chunkReplies = replies.dropFirst(2)
            #expect(
                chunkReplies.dropLast().allSatisfy { $0.code == 250 },
                "\(token): \(chunkReplies.filter { $0.code != 250 }.prefix(3))")
            #expect(chunkReplies.last?.code == 250, "\(token): end of data \(chunkReplies.last.map { "\($0)" } ?? "-")")
            expected[token] = token == "no-final-crlf" ? message + [13, 10] : message
            print("BDAT \(token): \(message.count) bytes in \(chunks.count) chunks")
        }
        #expect(try client.command("NOOP").code == 250)
        #expect(try client.command("QUIT").code == 221)

        let arrived = try H.sinkMessages(dumps)
        #expect(arrived.count == messages.count, "\(arrived.count) messages arrived")
        var seen: [String: Int] = [:]
        for message in arrived {
            guard let token = H.token(of: message), let sent = expected[token] else {
                Issue.record("an unexpected message arrived: \(String(decoding: message.prefix(300), as: UTF8.self))")
                continue
            }
            seen[token, default: 0] += 1
            H.expectSignedCopy(message, of: sent, "BDAT \(token)")
        }
        #expect(seen.values.allSatisfy { $0 == 1 } && seen.count == messages.count, "arrivals per message: \(seen)")
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
    }

    // MARK: A 50 MiB message

    @Test func fiftyMebibyteMessageWithBoundedMemory() throws {
        let setup = try H.Setup("e2e-50mib")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        // Default limits: 50 MiB is the default max_message_size, 8 MiB the spool threshold.
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: sinkPort, keys: setup.keys)
        defer { relay.stop() }
        let pid = relay.process.processIdentifier

        // Warm up with a small message, so the baseline includes the threads, key and buffers every relay has.
        let warmup = Mail.message(token: "warmup", body: Mail.body(bytes: 100_000))
        let client = try H.greetedClient(port, timeout: 300)
        #expect(try H.sendWithData(client, warmup).code == 250)
        let baseline = try H.memory(of: pid)

        let size = 50 * 1024 * 1024
        let message = Mail.message(token: "fifty-mebibytes", exactSize: size, seed: 5)
        #expect(message.count == size)
        let stuffed = Mail.dotStuffed(message)
        let started = Date()
        let replies = try client.pipeline(
            Array("MAIL FROM:<alice@example.com> SIZE=\(size)\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8),
            replies: 3)
        #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
        // While the message goes through, look for the spool file among signet's descriptors: it must exist,
        // be unlinked already and readable by its owner only.
        let spool = SpoolWatcher(pid: pid)
        let end = try client.pipeline(stuffed, replies: 1)[0]
        let seconds = Date().timeIntervalSince(started)
        let spoolFiles = spool.stop()
        #expect(!spoolFiles.isEmpty, "no spool file was seen among signet's open files")
        for file in spoolFiles {
            #expect(file.target.hasSuffix("(deleted)"), "spool file not unlinked: \(file.target)")
            #expect(
                file.mode & 0o777 == 0o600, "spool file mode \(String(file.mode & 0o777, radix: 8)): \(file.target)")
        }
        #expect(end.code == 250, "end of data: \(end)\n\(relay.output.suffix(2000))")
        let after = try H.memory(of: pid)
        #expect(try client.command("QUIT").code == 221)
        let growth = (after.peak - baseline.peak) / 1024
        print(
            "50 MiB: relayed in \(String(format: "%.1f", seconds)) s; signet VmHWM \(baseline.peak / 1024) MiB after warm-up, "
                + "\(after.peak / 1024) MiB after (+\(growth) MiB), VmRSS now \(after.current / 1024) MiB")
        // Spooled above 8 MiB and sent on in 256 KiB pieces: the message must never be in memory whole. Measured:
        // +8 MiB (the part held before spooling); with spooling turned off (threshold 100 MiB) +50 MiB. The bound
        // allows the 8 MiB plus 16 MiB for receive and send buffers in flight.
        #expect(growth < 24, "peak RSS grew by \(growth) MiB for a 50 MiB message")

        try Self.expectWarmupAndBigMessage(dumps, token: "fifty-mebibytes", sent: message, "50 MiB", setup)
    }

    // MARK: A 100 MiB message adds no more than the spool threshold to RSS (issue 9)

    @Test func hundredMebibyteMessageAddsAtMostTheSpoolThreshold() throws {
        let setup = try H.Setup("e2e-100mib")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        let mebibyte = 1024 * 1024
        // 100 MiB with the default 8 MiB spool threshold through the release build when it is there and newer
        // than every source file; a debug relay takes 30 s for that (55 s the whole test), so without one the
        // same ratio, 25 MiB over 2 MiB. The threshold is set explicitly so the bound below follows it;
        // max_message_size (50 MiB by default) must let the message in.
        let release = Self.currentReleaseSignet()
        let size = (release == nil ? 25 : 100) * mebibyte
        let threshold = (release == nil ? 2 : 8) * mebibyte
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: sinkPort, keys: setup.keys,
            environment: [
                "SIGNET_LIMITS_MAX_MESSAGE_SIZE": "\(size / mebibyte + 1)MiB",
                "SIGNET_LIMITS_SPOOL_THRESHOLD": "\(threshold / mebibyte)MiB",
            ], binary: release)
        defer { relay.stop() }
        let pid = relay.process.processIdentifier

        // The baseline includes what every relay has after one message: threads, key, pooled buffers.
        let client = try H.greetedClient(port, timeout: 300)
        #expect(try H.sendWithData(client, Mail.message(token: "warmup", body: Mail.body(bytes: 100_000))).code == 250)
        let baseline = try H.memory(of: pid)

        let message = Mail.message(token: "big", exactSize: size, seed: 9)
        let stuffed = Mail.dotStuffed(message)
        let started = Date()
        let replies = try client.pipeline(
            Array("MAIL FROM:<alice@example.com> SIZE=\(size)\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8),
            replies: 3)
        #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
        let end = try client.pipeline(stuffed, replies: 1)[0]
        let seconds = Date().timeIntervalSince(started)
        #expect(end.code == 250, "end of data: \(end)\n\(relay.output.suffix(2000))")
        let after = try H.memory(of: pid)
        #expect(try client.command("QUIT").code == 221)
        let growth = after.peak - baseline.peak
        print(
            "\(size / mebibyte) MiB (\(release == nil ? "debug" : "release") relay): relayed in \(String(format: "%.1f", seconds)) s; signet VmHWM \(baseline.peak / 1024) MiB after "
                + "warm-up, \(after.peak / 1024) MiB after (+\(growth / 1024) MiB; spool threshold \(threshold / mebibyte) MiB)"
        )
        // The first `threshold` bytes are held in memory, then everything goes to the spool file and out in 256 KiB pieces.
        // The allowance covers what is in flight besides: up to 10 reads of 8 KiB queued in the channel, the
        // piece being sent, the header and signature, and malloc keeping freed chunks of the first 8 MiB.
        let allowance = 6 * mebibyte
        #expect(
            growth * 1024 <= threshold + allowance,
            "peak RSS grew by \(growth / 1024) MiB for a \(size / mebibyte) MiB message: more than the spool threshold (\(threshold / mebibyte) MiB) + \(allowance / mebibyte) MiB"
        )

        try Self.expectWarmupAndBigMessage(dumps, token: "big", sent: message, "\(size / mebibyte) MiB", setup)
    }

    /// The memory tests' sink got two messages, the warm-up and the big one, which arrived as a signed copy of
    /// `sent` that dkimpy verifies (Mail::DKIM would add seconds per big message for what smaller tests show).
    static func expectWarmupAndBigMessage(
        _ dumps: URL, token: String, sent: [UInt8], _ what: String, _ setup: H.Setup,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let arrived = try H.sinkMessages(dumps)
        #expect(arrived.count == 2, "\(arrived.count) messages arrived", sourceLocation: sourceLocation)
        guard let big = arrived.first(where: { H.token(of: $0) == token }) else {
            Issue.record("the \(what) message did not arrive", sourceLocation: sourceLocation)
            return
        }
        H.expectSignedCopy(big, of: sent, what, sourceLocation: sourceLocation)
        try H.expectVerified(
            [big], keys: setup.keys, in: setup.dir, verifiers: [.dkimpy], sourceLocation: sourceLocation)
    }

    /// `.build/release/signet` when it exists and was built after the last change under Sources/, else nil.
    static func currentReleaseSignet() -> String? {
        let release = Tools.packageRoot.appendingPathComponent(".build/release/signet").path
        let files = FileManager.default
        func modified(_ path: String) -> Date? {
            (try? files.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        }
        guard files.isExecutableFile(atPath: release), let built = modified(release) else { return nil }
        let sources = Tools.packageRoot.appendingPathComponent("Sources")
        let changed = (files.enumerator(atPath: sources.path)?.allObjects as? [String] ?? []).compactMap {
            modified(sources.appendingPathComponent($0).path)
        }
        return changed.allSatisfy { $0 <= built } ? release : nil
    }

    // MARK: 500 concurrent connections

    @Test func fiveHundredConcurrentConnections() throws {
        let connections = 500
        // Each connection costs the test one descriptor, signet two (client and next hop) and smtp-sink one.
        let limit = Tools.raiseDescriptorLimit(to: 4096)
        try #require(
            limit.rlim_cur >= 4096, "ulimit -n is \(limit.rlim_cur) (hard \(limit.rlim_max)); 500 connections need 4096"
        )

        let setup = try H.Setup("e2e-500")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"), backlog: 1024)
        defer { sink.stop() }
        // max_connections stays at its default (1000): above the 500 here, which is what the test shows.
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: sinkPort, keys: setup.keys)
        defer { relay.stop() }

        final class Results: @unchecked Sendable {
            // @unchecked: every access holds the lock.
            let lock = NSLock()
            var greeted = 0
            var outcomes: [Int: String] = [:]
            func record(_ index: Int, _ outcome: String) { lock.withLock { outcomes[index] = outcome } }
        }
        let results = Results()
        let allGreeted = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let started = Date()
        for index in 0..<connections {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                do {
                    let client = try WireClient(port: port, timeout: 120)
                    let greeting = try client.reply()
                    let everyone = results.lock.withLock { () -> Bool in
                        results.greeted += greeting.code == 220 ? 1 : 0
                        return results.greeted == connections
                    }
                    if everyone { allGreeted.signal() }
                    guard greeting.code == 220 else {
                        results.record(index, "greeting \(greeting)")
                        return
                    }
                    // Hold the connection open until all 500 are in: the relay serves them all at once.
                    go.wait()
                    _ = try client.command("EHLO client\(index).example.com")
                    let message = Mail.message(token: "conn-\(index)", body: "Message \(index) of \(connections).\r\n")
                    let end = try H.sendWithData(client, message)
                    _ = try? client.command("QUIT")
                    results.record(index, end.code == 250 ? "ok" : "end of data: \(end)")
                } catch {
                    results.record(index, "\(error)")
                }
            }
        }
        let everyoneIn = allGreeted.wait(timeout: .now() + 60) == .success
        let greetedAt = Date().timeIntervalSince(started)
        for _ in 0..<connections { go.signal() }
        let finished = done.wait(timeout: .now() + 120) == .success
        let seconds = Date().timeIntervalSince(started)
        #expect(
            everyoneIn,
            "only \(results.lock.withLock { results.greeted }) of \(connections) connections were greeted within 60 s")
        #expect(finished, "the clients did not finish within 120 s")
        let failures = results.lock.withLock { results.outcomes.filter { $0.value != "ok" } }
        let succeeded = results.lock.withLock { results.outcomes.filter { $0.value == "ok" }.count }
        #expect(
            succeeded == connections,
            "\(failures.count) failed, e.g. \(failures.prefix(5))\n\(relay.output.suffix(2000))")
        print(
            "500 connections: all greeted after \(String(format: "%.1f", greetedAt)) s, all done after \(String(format: "%.1f", seconds)) s"
        )

        let arrived = try H.sinkMessages(dumps)
        var seen: [String: Int] = [:]
        for message in arrived { seen[H.token(of: message) ?? "?", default: 0] += 1 }
        #expect(arrived.count == connections, "\(arrived.count) messages arrived")
        #expect(
            Set(seen.keys) == Set((0..<connections).map { "conn-\($0)" }),
            "missing: \(Set((0..<connections).map { "conn-\($0)" }).subtracting(seen.keys).sorted().prefix(10))")
        #expect(seen.values.allSatisfy { $0 == 1 }, "twice: \(seen.filter { $0.value > 1 })")
        for message in arrived {
            guard let token = H.token(of: message), let index = Int(token.dropFirst("conn-".count)) else { continue }
            H.expectSignedCopy(
                message, of: Mail.message(token: token, body: "Message \(index) of \(connections).\r\n"), token)
        }
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
        #expect(relay.process.isRunning, "signet exited: \(relay.output.suffix(2000))")
    }

    // MARK: PIPELINING

    @Test func pipeliningManyTransactionsPerConnection() throws {
        let setup = try H.Setup("e2e-pipelining")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(try setup.subdirectory("sink"))
        defer { sink.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(setup.dir, nextHop: sinkPort, keys: setup.keys)
        defer { relay.stop() }
        var expected: [String: [UInt8]] = [:]

        // 200 transactions in a single write with BDAT: MAIL, RCPT, BDAT LAST and the message, 200 times, then QUIT.
        let bdatCount = 200
        let bursty = try H.greetedClient(port)
        var burst: [UInt8] = []
        for index in 0..<bdatCount {
            let token = "burst-\(index)"
            let message = Mail.message(token: token, body: Mail.body(bytes: 200 + index * 37, seed: index))
            expected[token] = message
            burst += Array(
                "MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob\(index)@example.org>\r\nBDAT \(message.count) LAST\r\n"
                    .utf8)
            burst += message
        }
        burst += Array("QUIT\r\n".utf8)
        let burstReplies = try bursty.pipeline(burst, replies: bdatCount * 3 + 1)
        let burstCodes = burstReplies.map(\.code)
        #expect(
            burstCodes == Array(repeating: [250, 250, 250], count: bdatCount).flatMap { $0 } + [221],
            "\(burstReplies.filter { $0.code != 250 }.prefix(5))")
        #expect(bursty.closedByPeer(within: 10), "the relay did not close after QUIT")

        // 100 transactions over DATA as RFC 2920 allows: MAIL, RCPT and DATA in one group, then the message, its
        // end and the next transaction's MAIL, RCPT and DATA in the next.
        let dataCount = 100
        let grouped = try H.greetedClient(port)
        var pending = Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n".utf8)
        var replies = try grouped.pipeline(pending, replies: 3)
        var dataCodes: [Int] = []
        #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
        for index in 0..<dataCount {
            let token = "grouped-\(index)"
            let message = Mail.message(token: token, body: Mail.body(bytes: 1000 + index * 101, seed: 1000 + index))
            expected[token] = message
            pending = Mail.dotStuffed(message)
            let last = index == dataCount - 1
            pending += Array(
                (last ? "QUIT\r\n" : "MAIL FROM:<alice@example.com>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n").utf8)
            replies = try grouped.pipeline(pending, replies: last ? 2 : 4)
            dataCodes += replies.map(\.code)
        }
        #expect(
            dataCodes == Array(repeating: [250, 250, 250, 354], count: dataCount - 1).flatMap { $0 } + [250, 221],
            "\(dataCodes.prefix(12))")

        // smtp-source keeps one connection for 100 messages (-d), one transaction after the other.
        let source = try Tools.run(
            "/usr/sbin/smtp-source",
            [
                "-d", "-s", "1", "-m", "100", "-N", "-l", "2000", "-f", "bulk@example.com", "-t", "rcpt@example.org",
                "-S", "relay test smtp-source",
                "127.0.0.1:\(port)",
            ],
            timeout: 120)
        #expect(source.status == 0, "smtp-source: \(source.stderr)")

        let arrived = try H.sinkMessages(dumps)
        #expect(arrived.count == bdatCount + dataCount + 100, "\(arrived.count) messages arrived")
        var seen: [String: Int] = [:]
        for message in arrived {
            let token = H.token(of: message) ?? "?"
            seen[token, default: 0] += 1
            if let sent = expected[token] { H.expectSignedCopy(message, of: sent, token) }
        }
        #expect(seen["smtp-source"] == 100, "smtp-source messages: \(seen["smtp-source"] ?? 0)")
        #expect(
            Set(seen.keys) == Set(expected.keys).union(["smtp-source"]),
            "missing: \(Set(expected.keys).subtracting(seen.keys).sorted().prefix(10))")
        #expect(
            seen.filter { $0.key != "smtp-source" }.values.allSatisfy { $0 == 1 },
            "twice: \(seen.filter { $0.key != "smtp-source" && $0.value > 1 })")
        try H.expectVerified(arrived, keys: setup.keys, in: setup.dir)
    }
}

/// Polls /proc/PID/fd every 20 ms for Signet's spool files (signet-spool-*), noting each one's link target and
/// mode, until stopped.
final class SpoolWatcher: @unchecked Sendable {
    // @unchecked: `seen` and `running` are only touched with the lock held.
    struct File: Hashable {
        var target: String
        var mode: UInt32
    }
    private let lock = NSLock()
    private var seen: Set<File> = []
    private var running = true
    private let finished = DispatchSemaphore(value: 0)

    init(pid: Int32) {
        Thread.detachNewThread { [self] in
            while lock.withLock({ running }) {
                let folder = "/proc/\(pid)/fd"
                for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                    let path = folder + "/" + name
                    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path),
                        target.contains("signet-spool-")
                    else { continue }
                    var info = stat()
                    guard stat(path, &info) == 0 else { continue }
                    _ = lock.withLock { seen.insert(File(target: target, mode: info.st_mode)) }
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            finished.signal()
        }
    }

    /// Stops polling; the spool files seen.
    func stop() -> Set<File> {
        lock.withLock { running = false }
        finished.wait()
        return lock.withLock { seen }
    }
}

extension RelayLimitsTests {
    // MARK: Configured limits

    @Test func sizeRecipientAndConnectionLimits() throws {
        let setup = try H.Setup("e2e-limits")
        defer { setup.remove() }
        let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
        defer { recorder.stop() }
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: recorderPort, keys: setup.keys,
            environment: [
                "SIGNET_LIMITS_MAX_MESSAGE_SIZE": "1MiB", "SIGNET_LIMITS_MAX_RECIPIENTS": "3",
                "SIGNET_LIMITS_MAX_CONNECTIONS": "4",
            ])
        defer { relay.stop() }
        let client = try H.greetedClient(port)
        let big = Mail.message(token: "too-big", exactSize: 1_048_576 + 1000)

        // SIZE is advertised, and a declared size over it is refused at MAIL.
        let ehlo = try client.command("EHLO client.example.com")
        #expect(ehlo.lines.contains { $0.hasSuffix("SIZE 1048576") }, "\(ehlo)")
        let declared = try client.command("MAIL FROM:<alice@example.com> SIZE=\(big.count)")
        #expect(declared.code == 552, "SIZE over the limit: \(declared)")
        // Undeclared, over DATA: read to the end, then 552; nothing goes on.
        let overData = try H.sendWithData(client, big)
        #expect(overData.code == 552, "DATA over the limit: \(overData)")
        // Over BDAT: refused by the chunk that passes the limit, or at LAST.
        let half = big.count / 2
        let chunks = try client.pipeline(
            Array("MAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nBDAT \(half)\r\n".utf8) + big[..<half]
                + Array("BDAT \(big.count - half) LAST\r\n".utf8) + big[half...],
            replies: 4)
        #expect(chunks.map(\.code).prefix(3) == [250, 250, 250], "\(chunks)")
        #expect(chunks.last?.code == 552, "BDAT over the limit: \(chunks)")
        #expect(try client.command("RSET").code == 250)

        // Recipients: the fourth of three is refused with 452 (RFC 5321 §4.5.3.1.10), the transaction goes on.
        var replies = [try client.command("MAIL FROM:<alice@example.com>")]
        for index in 1...4 { replies.append(try client.command("RCPT TO:<rcpt\(index)@example.org>")) }
        #expect(replies.map(\.code) == [250, 250, 250, 250, 452], "\(replies)")
        let small = Mail.message(token: "three-recipients", body: "Fits.\r\n")
        let end = try client.pipeline(Array("DATA\r\n".utf8), replies: 1)
        #expect(end.first?.code == 354)
        let accepted = try client.pipeline(Mail.dotStuffed(small), replies: 1)
        #expect(accepted.first?.code == 250, "\(accepted)")

        // Connections: with 4 allowed and this one open, three more are served and the fifth gets 421 at once.
        let others = try (0..<3).map { _ in try H.greetedClient(port) }
        let fifth = try WireClient(port: port, timeout: 10)
        let refused = try fifth.reply()
        #expect(refused.code == 421, "fifth connection: \(refused)")
        #expect(fifth.closedByPeer(within: 5), "the refused connection stayed open")
        for other in others { #expect(try other.command("QUIT").code == 221) }
        // Once they are gone, a new connection is served again.
        let again = H.wait(seconds: 10) { (try? H.greetedClient(port)) != nil }
        #expect(again, "no connection accepted after the others closed")
        #expect(try client.command("QUIT").code == 221)

        let arrived = try H.recorded(recorded)
        #expect(arrived.count == 1, "\(arrived.count) messages arrived")
        if let only = arrived.first {
            let content = Data(try unstuffed(only))
            H.expectSignedCopy(content, of: small, "message within the limits")
        }
        let commands = try String(contentsOf: recorded.appendingPathComponent("commands.log"), encoding: .utf8)
        let rcpts = commands.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("RCPT") }
        #expect(!rcpts.contains { $0.contains("rcpt4@") }, "the refused recipient went to the next hop:\n\(commands)")
        #expect(
            commands.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("DATA") || $0.hasPrefix("BDAT") }.count
                == 1, "\(commands)")
    }
}
