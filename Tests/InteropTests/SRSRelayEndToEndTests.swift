import Foundation
import Testing

/// `signet run` with `srs.mode: both` between swaks and smtp-sink: the envelope sender smtp-sink receives is an SRS
/// address that Mail::SRS reverses to the original; local and null senders pass unchanged; a bounce to our SRS
/// address reaches the original sender; forged and too-long cases get the configured replies.
@Suite("SRS end to end: swaks → signet run (srs: both) → smtp-sink", .serialized)
struct SRSRelayEndToEndTests {
    static let secret = "test-srs-e2e-\(UUID().uuidString)"

    /// Envelope lines smtp-sink wrote in front of each dumped message: X-Mail-Args and X-Rcpt-Args values.
    static func envelopes(_ dumps: URL) throws -> [(from: String, to: [String])] {
        try FileManager.default.contentsOfDirectory(atPath: dumps.path).sorted().compactMap { name in
            let text = try String(contentsOf: dumps.appendingPathComponent(name), encoding: .utf8)
            var from: String?
            var to: [String] = []
            for line in text.components(separatedBy: "\n") {
                let line = line.trimmingCharacters(in: .whitespacesAndNewlines)
                func path(_ prefix: String) -> String? {
                    guard line.hasPrefix(prefix), let open = line.firstIndex(of: "<"),
                        let close = line.lastIndex(of: ">")
                    else { return nil }
                    return String(line[line.index(after: open)..<close])
                }
                if let value = path("X-Mail-Args:") { from = value }
                if let value = path("X-Rcpt-Args:") { to.append(value) }
            }
            return from.map { ($0, to) }
        }
    }

    @Test func forwardAndReverseThroughTheRelay() throws {
        let dir = try Tools.makeTemporaryDirectory("e2e-srs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try RelayEndToEndTests.makeKeys(in: dir)
        let (sink, sinkPort, dumps) = try RelayEndToEndTests.startSink(dir)
        defer { sink.stop() }
        let secrets = dir.appendingPathComponent("srs-secrets")
        try "\(Self.secret)\n".write(to: secrets, atomically: true, encoding: .utf8)
        let config = dir.appendingPathComponent("signet.yaml")
        try """
        srs:
          mode: both
          domain: fwd.example
          secrets_file: \(secrets.path)
          local_domains: [example.com, .example.com]
          too_long: tempfail
        """.write(to: config, atomically: true, encoding: .utf8)
        let port = RelayEndToEndTests.freePort()
        let relay = try RelayEndToEndTests.Running(
            try Tools.signet,
            [
                "run", "--config", config.path, "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(sinkPort)",
                "--domain", "example.com", "--selector", "rsa", "--key", keys.rsa, "--state-dir",
                dir.appendingPathComponent("state").path,
            ],
            log: dir.appendingPathComponent("signet.log"))
        defer { relay.stop() }
        try RelayEndToEndTests.waitForPort(port)

        func swaks(from: String, to: String) throws -> Tools.Output {
            try Tools.run(
                "/usr/bin/swaks",
                [
                    "--server", "127.0.0.1", "--port", "\(port)", "--from", from, "--to", to, "--h-From",
                    "List <list@example.com>",
                    "--h-Subject", "srs", "--body", "forwarded\n",
                ],
                timeout: 60)
        }
        let start = Int(Date().timeIntervalSince1970)
        let forwarded = try swaks(from: "Alice.Smith+list@Orig.Example", to: "bob@example.org")
        #expect(forwarded.status == 0, "\(forwarded.text)\n\(relay.output)")
        let local = try swaks(from: "carol@mail.example.com", to: "bob@example.org")
        #expect(local.status == 0, "\(local.text)")
        let null = try swaks(from: "<>", to: "bob@example.org")
        #expect(null.status == 0, "\(null.text)")

        // The sink saw an SRS sender for the forwarded message; Mail::SRS (not Signet) reverses it.
        var seen = try Self.envelopes(dumps)
        #expect(seen.count == 3, "\(seen)")
        let srsSender = try #require(seen.first { $0.from.hasPrefix("SRS0=") }?.from, "\(seen)")
        #expect(srsSender.hasSuffix("=Orig.Example=Alice.Smith+list@fwd.example"), "\(srsSender)")
        let perl = try SRSInteropTests.mailSRS([
            SRSInteropTests.PerlRequest(forward: false, now: start, secrets: [Self.secret], address: srsSender)
        ])
        #expect(perl[0].address == "Alice.Smith+list@Orig.Example", "\(perl[0])")
        #expect(seen.contains { $0.from == "carol@mail.example.com" })
        #expect(seen.contains { $0.from == "" })

        // A bounce to that address reaches the original sender; one Mail::SRS made with our secret does too.
        let bounce = try swaks(from: "<>", to: srsSender)
        #expect(bounce.status == 0, "\(bounce.text)\n\(relay.output)")
        let perlMade = try SRSInteropTests.mailSRS([
            SRSInteropTests.PerlRequest(
                forward: true, now: start, secrets: [Self.secret], address: "dave@orig.example", alias: "fwd.example")
        ])[0].address!
        let bounce2 = try swaks(from: "<>", to: perlMade)
        #expect(bounce2.status == 0, "\(bounce2.text)")
        seen = try Self.envelopes(dumps)
        #expect(seen.contains { $0.to == ["Alice.Smith+list@Orig.Example"] }, "\(seen)")
        #expect(seen.contains { $0.to == ["dave@orig.example"] }, "\(seen)")

        // Forged and expired SRS recipients: 550 5.1.1 with the reason; SRS look-alikes of other domains pass.
        let forged = try swaks(from: "<>", to: "SRS0=AAAA=" + srsSender.dropFirst(10))
        #expect(forged.text.contains("<** 550 5.1.1 invalid SRS address"), "\(forged.text)")
        let expiredAddress = try SRSInteropTests.mailSRS([
            SRSInteropTests.PerlRequest(
                forward: true, now: start - 30 * 86_400, secrets: [Self.secret], address: "erin@orig.example",
                alias: "fwd.example")
        ])[0].address!
        let expired = try swaks(from: "<>", to: expiredAddress)
        #expect(expired.text.contains("<** 550 5.1.1 expired SRS address"), "\(expired.text)")
        let foreign = try swaks(from: "<>", to: "SRS0=AAAA=AA=orig.example=x@elsewhere.example")
        #expect(foreign.status == 0, "\(foreign.text)")

        // A sender whose rewrite is over 64 octets: tempfail, as configured.
        let long = try swaks(
            from: "a.rather.long.local.part.for.srs@a.long.subdomain.of.orig.example", to: "bob@example.org")
        #expect(long.text.contains("<** 451 4.1.7"), "\(long.text)")
    }
}
