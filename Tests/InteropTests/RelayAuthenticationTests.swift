import Foundation
import MailAuth
import Testing

/// `signet run` verifying and sealing (issues 5 and 6): real relay processes answering DNS from `dns.zone_file`,
/// their output checked by independent implementations — dkimpy's and Mail::DKIM's ARC verifiers, dkimpy's DKIM
/// verifier, pyspf, and python3-authres for the Authentication-Results syntax.
@Suite("Relay verification and ARC sealing: signet run against dkimpy, Mail::DKIM, pyspf, authres", .serialized)
struct RelayAuthenticationTests {
    typealias Running = RelayEndToEndTests.Running

    /// A relay that captures what it passes on, started from a YAML configuration.
    struct Relay {
        var process: Running
        var port: Int
        var metricsPort: Int
        var captured: URL

        init(_ dir: URL, _ name: String, _ yaml: String) throws {
            let folder = dir.appendingPathComponent(name)
            captured = folder.appendingPathComponent("captured")
            try FileManager.default.createDirectory(at: captured, withIntermediateDirectories: true)
            port = RelayEndToEndTests.freePort()
            metricsPort = RelayEndToEndTests.freePort()
            let config = folder.appendingPathComponent("signet.yaml")
            let text =
                """
                listen: ["127.0.0.1:\(port)"]
                metrics_listen: 127.0.0.1:\(metricsPort)
                state_directory: \(folder.path)
                capture_directory: \(captured.path)
                xclient_networks: [127.0.0.1]

                """ + yaml
            try text.write(to: config, atomically: true, encoding: .utf8)
            // SIGNET_BIN (how `make test` names the binary) would be an unknown configuration key to check-config.
            let check = try Tools.run("/usr/bin/env", ["-u", "SIGNET_BIN", try Tools.signet, "check-config", config.path])
            try #require(check.status == 0, "check-config \(name): \(check.text)\(check.stderr)")
            process = try Running(
                try Tools.signet, ["run", "--config", config.path, "--log-level", "debug"],
                log: folder.appendingPathComponent("signet.log"))
            do {
                try RelayEndToEndTests.waitForPort(port)
            } catch {
                throw ToolError("\(error); signet \(name) said:\n\(process.output)")
            }
        }

        /// The value of one series on /metrics (0 when absent), `series` written as Prometheus prints it.
        func metric(_ series: String) throws -> Double {
            let (status, body) = try ObservabilityEndToEndTests.get("/metrics", port: metricsPort)
            try #require(status == 200, "/metrics answered \(status)")
            return ObservabilityEndToEndTests.samples(body)[series] ?? 0
        }

        /// Sends `message` (optionally stating the client with XCLIENT) and returns what the relay passed on.
        func relay(
            _ message: Data, from: String, to: String, client: (address: String, helo: String)? = nil
        ) throws -> Data {
            let before = Set(try FileManager.default.contentsOfDirectory(atPath: captured.path))
            let wire = try WireClient(port: port)
            defer { wire.close() }
            _ = try wire.reply()
            #expect(try wire.command("EHLO client.example").code == 250)
            if let client {
                let greeting = try wire.command("XCLIENT ADDR=\(client.address) HELO=\(client.helo)")
                #expect(greeting.code == 220, "XCLIENT: \(greeting)")
                #expect(try wire.command("EHLO \(client.helo)").code == 250)
            }
            #expect(try wire.command("MAIL FROM:<\(from)>").code == 250)
            #expect(try wire.command("RCPT TO:<\(to)>").code == 250)
            #expect(try wire.command("DATA").code == 354)
            try wire.send(Mail.dotStuffed([UInt8](message)))
            let end = try wire.reply()
            try #require(end.code == 250, "end of data: \(end); relay log:\n\(process.output)")
            _ = try? wire.command("QUIT")
            var new: [String] = []
            RelayHarness.wait(seconds: 10) {
                let now = (try? FileManager.default.contentsOfDirectory(atPath: captured.path)) ?? []
                new = now.filter { !before.contains($0) && $0.hasSuffix(".eml") }
                return !new.isEmpty
            }
            try #require(new.count == 1, "captured \(new)")
            return try Data(contentsOf: captured.appendingPathComponent(new[0]))
        }
    }

    /// Keys (RSA, selector `arc`) for the domains, their records as a zone file for Signet and as
    /// `name<TAB>value` lines for the Python and Perl scripts; `extra` zone lines are added to the zone.
    static func setUp(_ dir: URL, domains: [String], extra: [String]) throws -> ARCInteropTests.Keys {
        let keys = try ARCInteropTests.makeKeys(in: dir, domains: domains, signet: try Tools.signet)
        let zone = try String(contentsOfFile: keys.zoneFile, encoding: .utf8) + extra.joined(separator: "\n") + "\n"
        try zone.write(toFile: keys.zoneFile, atomically: true, encoding: .utf8)
        return keys
    }

    /// The author's message, DKIM-signed by dkimpy (not Signet) as author.example, selector arc.
    static func authorMessage(
        keys: ARCInteropTests.Keys, body: String = "Hello list,\r\nthe numbers are in.\r\n"
    )
        throws -> Data
    {
        let message =
            "From: Author <author@author.example>\r\nTo: list@list1.example\r\nSubject: Weekly report\r\n"
            + "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <report-1@author.example>\r\n"
            + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" + body
        let script = """
            import sys, dkim
            message = sys.stdin.buffer.read()
            key = open(sys.argv[1], "rb").read()
            signature = dkim.sign(message, b"arc", b"author.example", key,
                include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
            sys.stdout.buffer.write(signature + message)
            """
        let signed = try Tools.run(
            "/usr/bin/python3", ["-c", script, keys.paths["author.example"]!], stdin: Data(message.utf8))
        try #require(signed.status == 0, "dkimpy signing failed (install python3-dkim): \(signed.stderr)")
        return signed.stdout
    }

    static func write(_ data: Data, _ dir: URL, _ name: String) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The whole fields (unfolded lines joined) named `name` at the top of `message`, top to bottom.
    static func fields(_ name: String, in message: Data) -> [String] {
        let text = String(decoding: message, as: UTF8.self)
        let header = text.components(separatedBy: "\r\n\r\n").first ?? ""
        var fields: [String] = []
        for line in header.components(separatedBy: "\r\n") {
            if line.hasPrefix(" ") || line.hasPrefix("\t") {
                if !fields.isEmpty { fields[fields.count - 1] += "\r\n" + line }
            } else {
                fields.append(line)
            }
        }
        return fields.filter { $0.lowercased().hasPrefix(name.lowercased() + ":") }
    }

    /// authres's reading of fields: per field, method → result.
    static func authres(_ fields: [String]) throws -> [[String: Any]] {
        let input = try JSONSerialization.data(withJSONObject: fields)
        let output = try Tools.run(
            "/usr/bin/python3", [Tools.interopScripts.appendingPathComponent("authres_parse.py").path], stdin: input)
        try #require(output.status == 0, "authres_parse.py failed (install python3-authres): \(output.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: output.stdout) as? [[String: Any]])
    }

    static func results(_ parsed: [String: Any]) -> [(method: String, result: String)] {
        ((parsed["results"] as? [[String: Any]]) ?? []).map {
            (($0["method"] as? String) ?? "", ($0["result"] as? String) ?? "")
        }
    }

    // MARK: Three hops

    @Test("three list hops through signet run: every seal validates under dkimpy and Mail::DKIM, i=3 at the end")
    func threeHopChain() throws {
        let dir = try Tools.makeTemporaryDirectory("relay-arc")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.setUp(
            dir, domains: ["author.example", "list1.example", "list2.example"],
            extra: [
                "author.example. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
                "_dmarc.author.example. TXT \"v=DMARC1; p=none\"",
            ])
        func keyYAML(_ domain: String) -> String {
            "signing: {keys: {arc: {domain: \(domain), selector: arc, key_file: \(keys.paths[domain]!)}}}\n"
        }
        // Each list: Signet in inbound mode at its border records the results (arc= included) before the list
        // software changes the message; the list's outgoing Signet seals with those results.
        func border(_ list: String) throws -> Relay {
            try Relay(
                dir, "\(list)-in",
                "dns: {zone_file: \(keys.zoneFile)}\nauthentication: {add_results: true, authserv_id: \(list)}\n")
        }
        // The outgoing relay also DKIM-signs as the list's own domain with the same key: one body pass serves the
        // DKIM signature and the AMS.
        // list2's keys live in a signer agent: the seal is made by `signet signer`, not the relay.
        func outgoing(_ list: String, backend: String = "in-process") throws -> Relay {
            try Relay(
                dir, "\(list)-out",
                "dns: {zone_file: \(keys.zoneFile)}\n"
                    + "signing: {keys: {arc: {domain: \(list), selector: arc, key_file: \(keys.paths[list]!)}},"
                    + " table: [{from: \"*\", keys: [arc]}], backend: \(backend)}\n"
                    + "arc: {rules: [{key: arc, authserv_id: \(list), trust_results: true}]}\n")
        }
        let in1 = try border("list1.example")
        let out1 = try outgoing("list1.example")
        let in2 = try border("list2.example")
        let out2 = try outgoing("list2.example", backend: "agent")
        // A sealer that validates what it receives (no list in between).
        let direct2 = try Relay(
            dir, "list2-direct",
            "dns: {zone_file: \(keys.zoneFile)}\n" + keyYAML("list2.example")
                + "arc: {rules: [{key: arc, authserv_id: list2.example}]}\n")

        var message = try Self.authorMessage(keys: keys)
        var files: [(hop: Int, path: String)] = []
        let lists = [(in1, out1, "list1"), (in2, out2, "list2"), (in1, out1, "list1")]
        var sealedAfterHop1 = Data()
        for (index, (border, out, tag)) in lists.enumerated() {
            let hop = index + 1
            let received = try border.relay(
                message, from: "author@author.example", to: "list@\(tag).example",
                client: ("192.0.2.25", "mail.author.example"))
            let results = Self.fields("Authentication-Results", in: received)
            try #require(results.count >= 1, "hop \(hop): no Authentication-Results")
            #expect(results[0].contains("\(tag).example;"), "hop \(hop): \(results[0])")
            let expectedARC = hop == 1 ? "arc=none" : "arc=pass"
            #expect(results[0].contains(expectedARC), "hop \(hop): \(results[0])")
            let modified = ARCInteropTests.listModify(received, tag: tag, footer: "\(tag) footer, hop \(hop)")
            message = try out.relay(modified, from: "owner@\(tag).example", to: "member@members.example")
            #expect(
                String(decoding: message, as: UTF8.self).hasPrefix("ARC-Seal: "),
                "hop \(hop): \(String(decoding: message.prefix(300), as: UTF8.self))")
            files.append((hop, try Self.write(message, dir, "hop\(hop).eml")))
            if hop == 1 { sealedAfterHop1 = message }
        }
        // The list's own DKIM signature (hops 1 and 2; at hop 3 list1.example has signed before and does not sign
        // as the same d=/s= twice) passes dkimpy.
        let dkimpy = try Tools.run(
            "/usr/bin/python3",
            [
                Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keys.keyFile, files[0].path,
                files[1].path,
            ])
        try #require(dkimpy.status == 0, "dkimpy_verify.py: \(dkimpy.stderr)")
        let signatures = VerifierResult.parse(dkimpy.text)
        for (hop, path) in files.prefix(2) {
            let list = signatures.filter { $0.file == path && $0.domain == "list\(hop).example" }.map(\.result)
            #expect(list == ["pass"], "hop \(hop): list\(hop).example's DKIM signature: \(signatures)")
        }
        // list1's outgoing relay sealed twice (hop 1: cv=none, hop 3: cv=pass); the direct sealer once each way.
        #expect(try out1.metric("signet_arc_seals_total{cv=\"none\"}") == 1)
        #expect(try out1.metric("signet_arc_seals_total{cv=\"pass\"}") == 1)
        #expect(try out2.metric("signet_arc_seals_total{cv=\"pass\"}") == 1)
        #expect(out2.process.output.contains("signer agent started"), "list2's relay: \(out2.process.output)")
        // The transaction log line says what was verified and sealed.
        #expect(out1.process.output.contains("arc_seal=i=3 cv=pass"), "\(out1.process.output.suffix(2000))")
        #expect(in2.process.output.contains("authentication=dkim=pass"), "\(in2.process.output.suffix(2000))")
        let seals = Self.fields("ARC-Seal", in: message)
        #expect(seals.count == 3)
        #expect(seals.first?.contains("i=3") == true && seals.first?.contains("cv=pass") == true, "\(seals)")
        #expect(seals.first?.contains("d=list1.example") == true)

        // The chain validated as received: unmodified it passes (i=2, cv=pass); modified after sealing it fails
        // and is sealed cv=fail.
        let intact = try direct2.relay(sealedAfterHop1, from: "owner@list1.example", to: "member@members.example")
        let intactSeal = Self.fields("ARC-Seal", in: intact).first ?? ""
        #expect(intactSeal.contains("i=2") && intactSeal.contains("cv=pass"), "\(intactSeal)")
        let tampered = ARCInteropTests.listModify(sealedAfterHop1, tag: "x", footer: "changed after sealing")
        let broken = try direct2.relay(tampered, from: "owner@list1.example", to: "member@members.example")
        #expect(try direct2.metric("signet_arc_seals_total{cv=\"fail\"}") == 1)
        let brokenSeal = Self.fields("ARC-Seal", in: broken).first ?? ""
        #expect(brokenSeal.contains("i=2") && brokenSeal.contains("cv=fail"), "\(brokenSeal)")
        let intactFile = try Self.write(intact, dir, "intact.eml")
        let brokenFile = try Self.write(broken, dir, "broken.eml")

        let verdicts = try ARCInteropTests.verdicts(
            keyFile: keys.keyFile, files: files.map(\.path) + [intactFile, brokenFile])
        for verifier in ["dkimpy", "Mail::DKIM"] {
            for (hop, path) in files {
                #expect(
                    verdicts[verifier]?[path]?.hasPrefix("pass") == true,
                    "\(verifier) hop \(hop): \(verdicts[verifier]?[path] ?? "no verdict")")
            }
            #expect(verdicts[verifier]?[intactFile]?.hasPrefix("pass") == true, "\(verifier): \(verdicts)")
            // Mail::DKIM says fail; dkimpy says none ("ARC-Seal[2] reported failure, the chain is terminated").
            let broken = verdicts[verifier]?[brokenFile] ?? ""
            #expect(broken.hasPrefix("fail") || broken.hasPrefix("none"), "\(verifier): \(broken)")
        }
        // Every AAR parses as an A-R payload (authres), and the third one carries arc=pass.
        let aars = Self.fields("ARC-Authentication-Results", in: message)
        #expect(aars.count == 3)
        let asResults = aars.map { aar -> String in
            // authres reads Authentication-Results fields: the AAR without its `i=N;`.
            let value = aar.drop { $0 != ";" }.dropFirst()
            return "Authentication-Results:" + value
        }
        let parsed = try Self.authres(asResults)
        for (index, field) in parsed.enumerated() {
            #expect(field["error"] == nil, "AAR \(index): \(field)")
        }
        #expect(Self.results(parsed[0]).contains { $0.method == "arc" && $0.result == "pass" }, "\(parsed[0])")
        #expect(Self.results(parsed[2]).contains { $0.method == "arc" && $0.result == "none" }, "\(parsed[2])")
    }

    // MARK: Inbound mode

    @Test("inbound mode: Authentication-Results agree with dkimpy and pyspf, and parse with authres")
    func inboundResults() throws {
        let dir = try Tools.makeTemporaryDirectory("relay-authres")
        defer { try? FileManager.default.removeItem(at: dir) }
        let extra = [
            "author.example. TXT \"v=spf1 ip4:192.0.2.0/24 -all\"",
            "_dmarc.author.example. TXT \"v=DMARC1; p=reject\"",
            "mail.author.example. A 192.0.2.25",
        ]
        let keys = try Self.setUp(dir, domains: ["author.example"], extra: extra)
        let relay = try Relay(
            dir, "inbound",
            "dns: {zone_file: \(keys.zoneFile)}\nauthentication: {add_results: true, authserv_id: mx.test.example}\n")

        let good = try Self.authorMessage(keys: keys)
        var tamperedText = String(decoding: good, as: UTF8.self)
        tamperedText = tamperedText.replacingOccurrences(of: "numbers are in", with: "numbers are out")
        let cases: [(name: String, message: Data, client: String, dkim: String, spf: String, dmarc: String)] = [
            ("valid", good, "192.0.2.25", "pass", "pass", "pass"),
            ("tampered body, foreign client", Data(tamperedText.utf8), "198.51.100.7", "fail", "fail", "fail"),
            ("valid signature, foreign client", good, "198.51.100.7", "pass", "fail", "pass"),
        ]
        let zone = try StaticZone(parsing: try String(contentsOfFile: keys.zoneFile, encoding: .utf8))
        let zoneJSON = dir.appendingPathComponent("zone.json")
        try JSONSerialization.data(withJSONObject: SPFInteropTests.json(zone)).write(to: zoneJSON)

        var arrived: [String] = []
        var fields: [String] = []
        for entry in cases {
            let output = try relay.relay(
                entry.message, from: "author@author.example", to: "someone@test.example",
                client: (entry.client, "mail.author.example"))
            let results = Self.fields("Authentication-Results", in: output)
            try #require(results.count == 1, "\(entry.name): \(results)")
            // Only the field was added: the rest is the message as sent.
            let rest = output.dropFirst(results[0].utf8.count + 2)
            #expect(
                Data(rest) == Data(RelayHarness.normalized([UInt8](entry.message))),
                "\(entry.name): the message was changed beyond the new field")
            fields.append(results[0])
            arrived.append(try Self.write(output, dir, "in-\(arrived.count).eml"))
        }

        // Signet's results as authres reads them.
        let parsed = try Self.authres(fields)
        // dkimpy on the same messages (the A-R field is not signed, so it does not matter to it).
        let dkimpy = try Tools.run(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keys.keyFile] + arrived)
        try #require(dkimpy.status == 0, "dkimpy_verify.py: \(dkimpy.stderr)")
        let dkimpyResults = VerifierResult.parse(dkimpy.text)
        // pyspf on the same zone, client and sender.
        let spfCases = cases.enumerated().map {
            "\($0.offset)\t\($0.element.client)\tauthor@author.example\tmail.author.example"
        }
        let pyspf = try Tools.run(
            "/usr/bin/python3", [Tools.interopScripts.appendingPathComponent("pyspf_check.py").path, zoneJSON.path],
            stdin: Data((spfCases.joined(separator: "\n") + "\n").utf8))
        try #require(pyspf.status == 0, "pyspf_check.py failed (install python3-spf): \(pyspf.stderr)")
        let pyspfResults = pyspf.text.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }

        // Every result written was counted, by method and result.
        #expect(try relay.metric("signet_authentication_results_total{method=\"dkim\",result=\"pass\"}") == 2)
        #expect(try relay.metric("signet_authentication_results_total{method=\"dkim\",result=\"fail\"}") == 1)
        #expect(try relay.metric("signet_authentication_results_total{method=\"spf\",result=\"fail\"}") == 2)
        #expect(try relay.metric("signet_authentication_results_total{method=\"arc\",result=\"none\"}") == 3)
        // promtool accepts the exposition with the new families (names, HELP, TYPE).
        let (_, exposition) = try ObservabilityEndToEndTests.get("/metrics", port: relay.metricsPort)
        #expect(exposition.contains("# HELP signet_authentication_results_total "))
        let lint = try Tools.run(
            ObservabilityEndToEndTests.promtool, ["check", "metrics"], stdin: Data(exposition.utf8), timeout: 60)
        #expect(lint.status == 0, "promtool check metrics:\n\(lint.text)\(lint.stderr)")

        for (index, entry) in cases.enumerated() {
            let field = parsed[index]
            #expect(field["error"] == nil, "\(entry.name): authres: \(field)")
            #expect(field["authserv_id"] as? String == "mx.test.example")
            let mine = Self.results(field)
            let dkim = mine.filter { $0.method == "dkim" }.map(\.result)
            let theirs = dkimpyResults.filter { $0.file == arrived[index] }.map(\.result)
            #expect(dkim == [entry.dkim] && theirs == [entry.dkim], "\(entry.name): dkim \(dkim), dkimpy \(theirs)")
            let spf = mine.filter { $0.method == "spf" }.map(\.result)
            let pyspfResult = pyspfResults.first { $0.first == "\(index)" }.map { $0[1] }
            #expect(
                spf == [entry.spf] && pyspfResult == entry.spf, "\(entry.name): spf \(spf), pyspf \(pyspfResult ?? "-")"
            )
            #expect(mine.filter { $0.method == "dmarc" }.map(\.result) == [entry.dmarc], "\(entry.name): \(mine)")
            #expect(mine.filter { $0.method == "arc" }.map(\.result) == ["none"], "\(entry.name): \(mine)")
        }
    }

    // MARK: DNS problems

    @Test("a resolver that never answers: temperror within the time budget, the message still relayed")
    func silentResolverGivesTemperrorWithinBudget() throws {
        let dir = try Tools.makeTemporaryDirectory("relay-dns-silent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.setUp(dir, domains: ["author.example"], extra: [])
        // A UDP socket that reads nothing: questions forwarded to it are never answered.
        let (fd, port) = try Tools.silentUDPSocket()
        defer { close(fd) }
        let relay = try Relay(
            dir, "silent",
            "dns: {forwarders: [\"127.0.0.1@\(port)\"], timeout: 60}\n"
                + "authentication: {add_results: true, authserv_id: mx.test.example, time_budget: 2}\n")
        let started = Date()
        let output = try relay.relay(
            try Self.authorMessage(keys: keys), from: "author@author.example", to: "someone@test.example",
            client: ("192.0.2.25", "mail.author.example"))
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 15, "the transaction took \(elapsed) s with a 2 s budget")
        let fields = Self.fields("Authentication-Results", in: output)
        try #require(fields.count == 1, "\(fields)")
        let parsed = try Self.authres(fields)
        let mine = Self.results(parsed[0])
        #expect(parsed[0]["error"] == nil, "\(parsed[0])")
        for method in ["dkim", "spf", "dmarc"] {
            #expect(mine.filter { $0.method == method }.map(\.result) == ["temperror"], "\(method): \(mine)")
        }
    }

    @Test("TIMEOUT and SERVFAIL in the zone: temperror for DKIM and SPF")
    func zoneFailuresGiveTemperror() throws {
        let dir = try Tools.makeTemporaryDirectory("relay-dns-fail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.setUp(dir, domains: ["author.example"], extra: [])
        // The same key records, but the author's key and SPF names fail.
        let zone =
            try String(contentsOfFile: keys.zoneFile, encoding: .utf8)
            .replacingOccurrences(of: "arc._domainkey.author.example.", with: "unused._domainkey.author.example.")
            + "arc._domainkey.author.example. TIMEOUT\nauthor.example. SERVFAIL\n"
        try zone.write(toFile: keys.zoneFile, atomically: true, encoding: .utf8)
        let relay = try Relay(
            dir, "failing",
            "dns: {zone_file: \(keys.zoneFile)}\nauthentication: {add_results: true, authserv_id: mx.test.example}\n")
        let output = try relay.relay(
            try Self.authorMessage(keys: keys), from: "author@author.example", to: "someone@test.example",
            client: ("192.0.2.25", "mail.author.example"))
        let parsed = try Self.authres(Self.fields("Authentication-Results", in: output))
        let mine = Self.results(parsed[0])
        #expect(mine.filter { $0.method == "dkim" }.map(\.result) == ["temperror"], "\(mine)")
        #expect(mine.filter { $0.method == "spf" }.map(\.result) == ["temperror"], "\(mine)")
    }
}
