import Foundation
import Testing

/// STARTTLS (RFC 3207) and AUTH PLAIN (RFC 4954) with real peers: swaks `--tls --auth`, Python's smtplib and
/// ssl for the cases swaks cannot play (334 continuation, command injection, broken handshakes), and a second
/// `signet run` with STARTTLS as the TLS next hop of the first, in front of Postfix's smtp-sink.
@Suite("Relay STARTTLS and AUTH end to end", .serialized)
struct RelayTLSAuthTests {
    typealias E2E = RelayEndToEndTests

    /// A self-signed certificate made by openssl for localhost and 127.0.0.1.
    struct Certificate {
        var chain: String
        var key: String
    }

    static func makeCertificate(in dir: URL) throws -> Certificate {
        let chain = dir.appendingPathComponent("cert.pem").path
        let key = dir.appendingPathComponent("cert.key").path
        let result = try Tools.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", chain,
            ],
            timeout: 60)
        try #require(result.status == 0, "openssl req: \(result.stderr)")
        return Certificate(chain: chain, key: key)
    }

    static let user = "alice"
    static let password = "correct horse battery"

    /// `user:hash` with the hash from `openssl passwd -6`, never from Signet.
    static func makePasswordFile(in dir: URL) throws -> String {
        let hash = try Tools.run("/usr/bin/openssl", ["passwd", "-6", password])
        try #require(hash.status == 0)
        let path = dir.appendingPathComponent("passwd").path
        try "# test users\n\(user):\(hash.text.trimmingCharacters(in: .whitespacesAndNewlines))\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// `signet run --config` with the example.com keys, relaying to `nextHop`, plus `extra` YAML.
    static func startSignet(
        _ dir: URL, name: String, nextHop: Int, keys: E2E.Keys, from: String = "example.com",
        extra: String
    ) throws -> (E2E.Running, Int) {
        let port = E2E.freePort()
        let yaml = """
            listen: ["127.0.0.1:\(port)"]
            next_hop: 127.0.0.1:\(nextHop)
            hostname: \(name).signet.test
            signing:
              keys:
                rsa: {domain: example.com, selector: rsa, key_file: \(keys.rsa)}
                ed: {domain: example.com, selector: ed, key_file: \(keys.ed)}
              table:
                - {from: \(from), keys: [rsa, ed]}
            \(extra)
            """
        let config = dir.appendingPathComponent("\(name).yaml")
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        let relay = try E2E.Running(
            try Tools.signet,
            ["run", "--config", config.path, "--state-dir", dir.appendingPathComponent("state-\(name)").path],
            log: dir.appendingPathComponent("\(name).log"))
        do {
            try E2E.waitForPort(port)
        } catch {
            throw ToolError("\(error); signet said:\n\(relay.output)")
        }
        return (relay, port)
    }

    static func tlsSection(_ certificate: Certificate, _ more: String = "") -> String {
        "tls: {certificate_chain: \(certificate.chain), private_key: \(certificate.key)\(more)}"
    }

    static func probe(_ arguments: [String]) throws -> String {
        let script = Tools.interopScripts.appendingPathComponent("smtp_probe.py").path
        let result = try Tools.run("/usr/bin/python3", [script] + arguments, timeout: 60)
        return result.text + result.stderr
    }

    /// Every message that arrived passes dkimpy for both example.com signatures.
    static func expectVerified(_ dumps: URL, count: Int, in dir: URL, keys: E2E.Keys, _ log: String) throws {
        let messages = try E2E.dumpedMessages(dumps)
        #expect(messages.count == count, "\(messages.count) messages arrived\n\(log.suffix(3000))")
        var files: [String] = []
        for (index, message) in messages.enumerated() {
            let path = dir.appendingPathComponent("arrived-\(UUID().uuidString)-\(index).eml")
            try message.bytes.write(to: path)
            files.append(path.path)
        }
        guard !files.isEmpty else { return }
        let output = try Tools.run(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keys.keyFile] + files)
        let results = VerifierResult.parse(output.text)
        for file in files {
            for selector in ["rsa", "ed"] {
                let mine = results.filter { $0.file == file && $0.selector == selector && $0.domain == "example.com" }
                #expect(mine.map(\.result) == ["pass"], "dkimpy \(file) s=\(selector): \(mine) \(output.stderr)")
            }
        }
    }

    @Test func startTLSAndAuthDeliverSignedMail() throws {
        let dir = try Tools.makeTemporaryDirectory("tls-auth")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let certificate = try Self.makeCertificate(in: dir)
        let passwd = try Self.makePasswordFile(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir.appendingPathComponent("sink"))
        defer { sink.stop() }
        let (relay, port) = try Self.startSignet(
            dir, name: "relay", nextHop: sinkPort, keys: keys,
            extra: Self.tlsSection(certificate) + "\nauth: {password_file: \(passwd)}")
        defer { relay.stop() }

        // Before TLS: STARTTLS offered, AUTH not (RFC 4954 §4: no password in the clear).
        let ehlo = try E2E.swaks(port, ["--quit-after", "EHLO"])
        #expect(ehlo.text.contains("250-STARTTLS"), "\(ehlo.text)")
        #expect(!ehlo.text.contains("AUTH PLAIN"), "\(ehlo.text)")

        // AUTH PLAIN with an initial response, inside TLS.
        let authenticated = try E2E.swaks(
            port, ["--tls", "--auth", "PLAIN", "--auth-user", Self.user, "--auth-password", Self.password])
        #expect(authenticated.status == 0, "\(authenticated.text)\n\(relay.output.suffix(2000))")
        #expect(authenticated.text.contains("250-AUTH PLAIN"), "\(authenticated.text)")
        #expect(authenticated.text.contains("235 2.7.0"), "\(authenticated.text)")

        // A loopback client is in client_networks: TLS without AUTH may send too (permit_mynetworks).
        let trusted = try E2E.swaks(port, ["--tls"])
        #expect(trusted.status == 0, "\(trusted.text)")

        // AUTH PLAIN answered after an empty 334.
        let continuation = try Self.probe(["auth334", "\(port)", Self.user, Self.password])
        #expect(continuation.contains("starttls: 220"), "\(continuation)")
        #expect(continuation.contains("auth-offered: True"), "\(continuation)")
        #expect(continuation.contains("challenge: 334 ''"), "\(continuation)")
        #expect(continuation.contains("auth: 235"), "\(continuation)")
        #expect(continuation.contains("mail: 250"), "\(continuation)")

        // Wrong password: 535 5.7.8, nothing sent.
        let wrong = try E2E.swaks(
            port, ["--tls", "--auth", "PLAIN", "--auth-user", Self.user, "--auth-password", "nope"])
        #expect(wrong.status != 0)
        #expect(wrong.text.contains("535 5.7.8"), "\(wrong.text)")
        let unknown = try E2E.swaks(
            port, ["--tls", "--auth", "PLAIN", "--auth-user", "mallory", "--auth-password", "x"])
        #expect(unknown.text.contains("535 5.7.8"), "\(unknown.text)")

        sink.stop()
        let log = relay.output
        try Self.expectVerified(dumps, count: 2, in: dir, keys: keys, log)
        #expect(log.contains("TLS established"), "\(log.suffix(3000))")
        #expect(log.contains("authentication failed"), "\(log.suffix(3000))")
        #expect(relay.process.isRunning)
    }

    /// tls.require, and the submission case: a client outside client_networks must authenticate.
    @Test func requiredTLSAndAuthFromOutsideClientNetworks() throws {
        let dir = try Tools.makeTemporaryDirectory("tls-require")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let certificate = try Self.makeCertificate(in: dir)
        let passwd = try Self.makePasswordFile(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir.appendingPathComponent("sink"))
        defer { sink.stop() }
        // 127.0.0.1 is not in client_networks: without AUTH configured it would get 554 at connect.
        let (relay, port) = try Self.startSignet(
            dir, name: "submission", nextHop: sinkPort, keys: keys,
            extra: Self.tlsSection(certificate, ", require: true")
                + "\nauth: {password_file: \(passwd)}\nclient_networks: [127.0.0.2/32]")
        defer { relay.stop() }

        let plain = try E2E.swaks(port)
        #expect(plain.status != 0)
        #expect(plain.text.contains("530 5.7.0 must issue a STARTTLS command first"), "\(plain.text)")

        let anonymous = try E2E.swaks(port, ["--tls"])
        #expect(anonymous.status != 0)
        #expect(anonymous.text.contains("530 5.7.0 authentication required"), "\(anonymous.text)")

        let submitted = try E2E.swaks(
            port, ["--tls", "--auth", "PLAIN", "--auth-user", Self.user, "--auth-password", Self.password])
        #expect(submitted.status == 0, "\(submitted.text)\n\(relay.output.suffix(2000))")

        sink.stop()
        try Self.expectVerified(dumps, count: 1, in: dir, keys: keys, relay.output)
    }

    /// Broken handshakes close that connection only; plaintext pipelined after STARTTLS never runs.
    @Test func handshakeFailuresAndInjectionLeaveTheServerServing() throws {
        let dir = try Tools.makeTemporaryDirectory("tls-fail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let certificate = try Self.makeCertificate(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir.appendingPathComponent("sink"))
        defer { sink.stop() }
        let (relay, port) = try Self.startSignet(
            dir, name: "strict", nextHop: sinkPort, keys: keys,
            extra: Self.tlsSection(certificate, ", minimum_version: '1.3'"))
        defer { relay.stop() }

        let garbage = try Self.probe(["garbage", "\(port)"])
        #expect(garbage.contains("starttls: 220"), "\(garbage)")
        #expect(garbage.contains("closed: True"), "\(garbage)")

        let old = try Self.probe(["oldtls", "\(port)"])
        #expect(old.contains("starttls: 220"), "\(old)")
        #expect(old.contains("handshake: failed"), "\(old)")

        let injected = try Self.probe(["inject", "\(port)"])
        #expect(injected.contains("tls: TLSv1.3"), "\(injected)")
        #expect(injected.contains("ehlo: 250"), "\(injected)")
        #expect(injected.contains("rcpt: 503 5.5.1"), "the MAIL pipelined in plain text ran: \(injected)")
        #expect(injected.contains("quit: 221"), "\(injected)")

        // The process still serves the next client, over TLS.
        let next = try E2E.swaks(port, ["--tls"])
        #expect(next.status == 0, "\(next.text)\n\(relay.output.suffix(2000))")
        #expect(relay.process.isRunning)

        sink.stop()
        let log = relay.output
        try Self.expectVerified(dumps, count: 1, in: dir, keys: keys, log)
        #expect(log.components(separatedBy: "TLS handshake failed").count - 1 == 2, "\(log.suffix(3000))")
        #expect(log.contains("discarding plaintext pipelined after STARTTLS"), "\(log.suffix(3000))")
    }

    /// Outbound STARTTLS: swaks → signet (outer) ─TLS→ signet (inner, STARTTLS offered) → smtp-sink. The inner
    /// relay does not sign example.com, so what arrives carries the outer relay's signatures only.
    @Test func nextHopSTARTTLS() throws {
        let dir = try Tools.makeTemporaryDirectory("tls-out")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try E2E.makeKeys(in: dir)
        let certificate = try Self.makeCertificate(in: dir)
        let (sink, sinkPort, dumps) = try E2E.startSink(dir.appendingPathComponent("sink"))
        defer { sink.stop() }
        let (inner, innerPort) = try Self.startSignet(
            dir, name: "inner", nextHop: sinkPort, keys: keys, from: "inner.invalid",
            extra: Self.tlsSection(certificate))
        defer { inner.stop() }

        // required + verified against the test certificate (its SAN holds 127.0.0.1).
        let (outer, port) = try Self.startSignet(
            dir, name: "outer", nextHop: innerPort, keys: keys,
            extra: "next_hop_tls: {mode: required, ca_file: \(certificate.chain)}")
        defer { outer.stop() }
        let sent = try E2E.swaks(port)
        #expect(sent.status == 0, "\(sent.text)\n\(outer.output.suffix(2000))\n\(inner.output.suffix(2000))")
        #expect(outer.output.contains("next hop TLS established"), "\(outer.output.suffix(2000))")
        #expect(outer.output.contains("verified=true"), "\(outer.output.suffix(2000))")
        #expect(inner.output.contains("TLS established"), "\(inner.output.suffix(2000))")

        // Opportunistic (the default) also upgrades when offered.
        let (opportunistic, port2) = try Self.startSignet(
            dir, name: "opportunistic", nextHop: innerPort, keys: keys, extra: "")
        defer { opportunistic.stop() }
        let sent2 = try E2E.swaks(port2)
        #expect(sent2.status == 0, "\(sent2.text)")
        #expect(opportunistic.output.contains("next hop TLS established"), "\(opportunistic.output.suffix(2000))")

        // required against smtp-sink, which offers no STARTTLS: 451 4.7.5, nothing sent.
        let (noTLS, port3) = try Self.startSignet(
            dir, name: "no-tls", nextHop: sinkPort, keys: keys, extra: "next_hop_tls: {mode: required}")
        defer { noTLS.stop() }
        let refused = try E2E.swaks(port3)
        #expect(refused.status != 0)
        #expect(refused.text.contains("<** 451 4.7.5"), "\(refused.text)")

        // required with verification against the system roots: the self-signed certificate fails, 451 4.7.5.
        let (untrusted, port4) = try Self.startSignet(
            dir, name: "untrusted", nextHop: innerPort, keys: keys, extra: "next_hop_tls: {mode: required}")
        defer { untrusted.stop() }
        let unverified = try E2E.swaks(port4)
        #expect(unverified.status != 0)
        #expect(unverified.text.contains("<** 451 4.7.5"), "\(unverified.text)\n\(untrusted.output.suffix(2000))")

        // opportunistic with verification: the failed check is retried once in plain text, and the mail flows.
        let (fallback, port5) = try Self.startSignet(
            dir, name: "fallback", nextHop: innerPort, keys: keys, extra: "next_hop_tls: {verify: true}")
        defer { fallback.stop() }
        let sent5 = try E2E.swaks(port5)
        #expect(sent5.status == 0, "\(sent5.text)\n\(fallback.output.suffix(2000))")
        #expect(fallback.output.contains("retrying without it"), "\(fallback.output.suffix(2000))")

        sink.stop()
        try Self.expectVerified(dumps, count: 3, in: dir, keys: keys, outer.output)
    }
}
