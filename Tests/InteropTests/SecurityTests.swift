import Foundation
import Testing

/// Who may use the relay, and injection: a client from a second loopback address (127.0.0.2) outside
/// client_networks, with and without AUTH; CR/LF smuggled in xtext-encoded XCLIENT/XFORWARD values, which decode
/// to line breaks and would, sent on, become an injected command or header line at the next hop.
@Suite("Security: access control from 127.0.0.2, injection through XCLIENT", .serialized)
struct SecurityTests {
    typealias H = RelayHarness

    /// client_networks holds 127.0.0.1 only. Without AUTH, 127.0.0.2 gets 554 5.7.1 at connect; with AUTH
    /// configured, it may connect but every MAIL is refused until it authenticates, a wrong password is 535 and
    /// counted, and only the authenticated message arrives.
    @Test func outsiderFrom127002() throws {
        let setup = try H.Setup("security-outsider")
        defer { setup.remove() }
        let (recorder, recorderPort, recorded) = try H.startRecorder(setup.dir)
        defer { recorder.stop() }
        let (closed, closedPort) = try RelayEndToEndTests.startSignet(
            try setup.subdirectory("closed"), nextHop: recorderPort, keys: setup.keys,
            environment: ["SIGNET_CLIENT_NETWORKS": "127.0.0.1/32", "SIGNET_METRICS_LISTEN": ""])
        defer { closed.stop() }
        let outsider = try WireClient(port: closedPort, timeout: 10, from: "127.0.0.2")
        let denied = try outsider.reply()
        #expect(denied.code == 554 && denied.text.contains("5.7.1") && denied.text.contains("127.0.0.2"), "\(denied)")
        #expect(outsider.closedByPeer(within: 5))
        let swaks = try RelayEndToEndTests.swaks(closedPort, ["--local-interface", "127.0.0.2"])
        #expect(swaks.status != 0, "swaks from 127.0.0.2 got through: \(swaks.text)")

        let passwd = try RelayTLSAuthTests.makePasswordFile(in: setup.dir)
        let (open, port) = try RelayEndToEndTests.startSignet(
            try setup.subdirectory("auth"), nextHop: recorderPort, keys: setup.keys,
            environment: [
                "SIGNET_CLIENT_NETWORKS": "127.0.0.1/32", "SIGNET_METRICS_LISTEN": "",
                "SIGNET_AUTH_PASSWORD_FILE": passwd, "SIGNET_AUTH_ALLOW_PLAINTEXT": "true",
            ])
        defer { open.stop() }
        let client = try WireClient(port: port, timeout: 10, from: "127.0.0.2")
        #expect(try client.reply().code == 220)
        let ehlo = try client.command("EHLO outsider.example.com")
        #expect(ehlo.text.contains("AUTH PLAIN"), "\(ehlo)")
        let anonymous = try client.command("MAIL FROM:<alice@example.com>")
        #expect(anonymous.code == 530, "MAIL without AUTH from outside client_networks: \(anonymous)")
        let wrong = Data("\0\(RelayTLSAuthTests.user)\0wrong password".utf8).base64EncodedString()
        let refused = try client.command("AUTH PLAIN \(wrong)")
        #expect(refused.code == 535, "wrong password: \(refused)")
        #expect(try client.command("MAIL FROM:<alice@example.com>").code == 530)
        let swaksWrong = try RelayEndToEndTests.swaks(
            port,
            ["--local-interface", "127.0.0.2", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "nope"])
        #expect(swaksWrong.status != 0)
        let swaksRight = try RelayEndToEndTests.swaks(
            port,
            [
                "--local-interface", "127.0.0.2", "--auth", "PLAIN", "--auth-user", RelayTLSAuthTests.user,
                "--auth-password", RelayTLSAuthTests.password,
            ])
        #expect(swaksRight.status == 0, "\(swaksRight.text)")
        let arrived = try H.recorded(recorded)
        #expect(arrived.count == 1, "\(arrived.count) messages arrived; only the authenticated one may")
        #expect(closed.process.isRunning && open.process.isRunning)
    }

    /// XCLIENT and XFORWARD values are xtext: "+0D+0A" decodes to CR LF. A value with a line break must be
    /// refused (501), not sent on in the EHLO or XCLIENT the relay speaks to its next hop, where it would start
    /// a command of the client's choosing.
    @Test func lineBreaksInXCLIENTValuesAreRefused() throws {
        let setup = try H.Setup("security-xclient")
        defer { setup.remove() }
        let hopDir = try setup.subdirectory("hop")
        let (hop, hopPort) = try FaultInjectionTests.startHop(hopDir)
        defer { hop.stop() }
        try Data("advertise xclient".utf8).write(to: hopDir.appendingPathComponent("fault"))
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: hopPort, keys: setup.keys,
            environment: [
                "SIGNET_XCLIENT_NETWORKS": "127.0.0.0/8", "SIGNET_FORWARD_CLIENT_IDENTITY": "xclient",
                "SIGNET_METRICS_LISTEN": "",
            ])
        defer { relay.stop() }
        let client = try H.greetedClient(port)
        let injections = [
            "XCLIENT HELO=foo+0D+0ABcc:+20victim@example.net",
            "XCLIENT NAME=evil.example+0D+0ARCPT+20TO:<victim@example.net>",
            "XCLIENT LOGIN=alice+0ABcc:victim@example.net",
            "XCLIENT HELO=foo+0Dbar",
            "XFORWARD HELO=foo+0D+0ABcc:+20victim@example.net",
            "XFORWARD NAME=evil+0A.example",
        ]
        for line in injections {
            let reply = try client.command(line)
            #expect(reply.code == 501, "\(line): \(reply)")
        }
        // A clean XCLIENT is still accepted, and the message relays and verifies.
        let clean = try client.command("XCLIENT NAME=mail.example.com ADDR=192.0.2.1 HELO=mail.example.com")
        #expect(clean.code == 220, "\(clean)")
        #expect(try client.command("EHLO mail.example.com").code == 250)
        let message = Mail.message(token: "xclient", body: "Clean.\r\n")
        #expect(try H.sendWithData(client, message).code == 250)
        #expect(try client.command("QUIT").code == 221)

        // A session whose only XCLIENT carries a line break: had it been taken, its HELO would go out raw in the
        // EHLO that follows XCLIENT downstream, and "RCPT TO:<victim...>" would be a command at the next hop.
        let second = try H.greetedClient(port)
        let injected = try second.command("XCLIENT HELO=foo+0D+0ARCPT+20TO:<victim@example.net>")
        #expect(injected.code == 501, "\(injected)")
        // No EHLO of its own after XCLIENT (that would replace the HELO name): straight to the transaction.
        let secondMessage = Mail.message(token: "xclient-2", body: "Second.\r\n")
        if injected.code == 220 {
            _ = try? H.sendWithData(second, secondMessage)
        } else {
            #expect(try H.sendWithData(second, secondMessage).code == 250)
        }
        #expect(try second.command("QUIT").code == 221)

        let record = try FaultInjectionTests.HopRecord(hopDir)
        let lines = record.events.compactMap(\.line)
        for line in lines {
            #expect(!line.contains("victim"), "an injected value reached the next hop: \(line.debugDescription)")
            // Each command the hop read is one line: a CR inside it would be a line break smuggled through.
            #expect(!line.dropLast(2).contains("\r"), "a CR inside a command line: \(line.debugDescription)")
        }
        #expect(lines.contains { $0.hasPrefix("XCLIENT") && $0.contains("192.0.2.1") }, "\(lines)")
        let delivered = record.contents.values.map { Data((try? RelayLimitsTests().unstuffed($0)) ?? []) }
        #expect(delivered.count == 2)
        for content in delivered {
            #expect(!String(decoding: content, as: UTF8.self).contains("victim"))
            H.expectSignedCopy(
                content, of: H.token(of: content) == "xclient" ? message : secondMessage, "after XCLIENT")
        }
        try H.expectVerified(delivered, keys: setup.keys, in: setup.dir, verifiers: [.dkimpy])
    }

    /// SRS rewrites the envelope sender (forward) and recipients (reverse). No line break can reach an address:
    /// a bare CR in a command is refused, an encoded one in an SRS0 recipient is only text, and a sender whose
    /// quoted local part looks like a header line stays one MAIL line. The next hop gets no injected line and the
    /// signature verifies.
    @Test func srsAddressesCarryNoLineBreaks() throws {
        let setup = try H.Setup("security-srs")
        defer { setup.remove() }
        let hopDir = try setup.subdirectory("hop")
        let (hop, hopPort) = try FaultInjectionTests.startHop(hopDir)
        defer { hop.stop() }
        let secrets = setup.dir.appendingPathComponent("srs-secrets")
        try "injection test secret\n".write(to: secrets, atomically: true, encoding: .utf8)
        let config = setup.dir.appendingPathComponent("signet.yaml")
        try """
        srs:
          mode: both
          domain: fwd.example
          secrets_file: \(secrets.path)
          local_domains: [example.com]
        """.write(to: config, atomically: true, encoding: .utf8)
        let port = RelayEndToEndTests.freePort()
        let relay = try RelayEndToEndTests.Running(
            try Tools.signet,
            [
                "run", "--config", config.path, "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(hopPort)",
                "--domain", "example.com", "--selector", "rsa", "--key", setup.keys.rsa, "--selector", "ed", "--key",
                setup.keys.ed, "--state-dir", setup.dir.appendingPathComponent("state").path, "--metrics-listen", "",
            ],
            log: setup.dir.appendingPathComponent("signet.log"))
        defer { relay.stop() }
        try RelayEndToEndTests.waitForPort(port)
        let client = try H.greetedClient(port)

        // A bare CR inside the sender: a control byte in a command line, refused before SRS sees it.
        try client.send("MAIL FROM:<\"evil\rBcc: victim@example.net\"@orig.example>\r\n")
        let bareCR = try client.reply()
        #expect(bareCR.code >= 500 && bareCR.code < 600, "bare CR in MAIL: \(bareCR)")
        #expect(try client.command("RSET").code == 250)
        // An SRS0 recipient with an encoded line break in it is only text: refused (bad hash) or passed as text.
        #expect(try client.command("MAIL FROM:<alice@orig.example>").code == 250)
        let forged = try client.command("RCPT TO:<SRS0=AAAA=AA=orig.example=a%0D%0ABcc:victim@fwd.example>")
        #expect(forged.code != 250 || !forged.text.contains("\r"), "\(forged)")
        #expect(try client.command("RSET").code == 250)
        // A sender whose quoted local part looks like a header line: one MAIL line downstream (Signet's SRS leaves
        // quoted local parts as they are), relayed, signed.
        let message = Mail.message(token: "srs-injection", body: "Forwarded.\r\n")
        let replies = try client.pipeline(
            Array(
                "MAIL FROM:<\"x Bcc: victim@example.net\"@orig.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".utf8),
            replies: 3)
        #expect(replies.map(\.code) == [250, 250, 354], "\(replies)")
        let end = try client.pipeline(Mail.dotStuffed(message), replies: 1)[0]
        #expect(end.code == 250, "\(end)")
        #expect(try client.command("QUIT").code == 221)

        let record = try FaultInjectionTests.HopRecord(hopDir)
        let lines = record.events.compactMap(\.line)
        for line in lines {
            #expect(!line.dropLast(2).contains("\r") && !line.dropLast(1).contains("\n"), "\(line.debugDescription)")
            #expect(!line.hasPrefix("Bcc"), "an injected line reached the next hop: \(line.debugDescription)")
        }
        let mails = lines.filter { $0.hasPrefix("MAIL FROM:") }
        // SRS is at work here: the plain forwarded sender was rewritten.
        #expect(
            mails.contains { $0.contains("SRS0=") && $0.contains("orig.example") && $0.contains("@fwd.example>") },
            "\(mails)")
        #expect(mails.filter { $0.contains("x Bcc: victim") }.count == 1, "\(mails)")
        let delivered = record.contents.values.map { Data((try? RelayLimitsTests().unstuffed($0)) ?? []) }
        #expect(delivered.count == 1)
        for content in delivered {
            #expect(!String(decoding: content, as: UTF8.self).contains("victim"))
            H.expectSignedCopy(content, of: message, "SRS-rewritten message")
        }
        try H.expectVerified(delivered, keys: setup.keys, in: setup.dir, verifiers: [.dkimpy])
        #expect(relay.process.isRunning)
    }
}
