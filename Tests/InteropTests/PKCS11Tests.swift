import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A SoftHSM2 token in a temporary folder (its own SOFTHSM2_CONF and tokendir), initialised with `softhsm2-util`,
/// holding an RSA-2048 and an Ed25519 key made by openssl and imported with `softhsm2-util --import`. The keys'
/// PEM files stay beside it so the tests can compare and publish: the DNS records come from openssl, not Signet.
struct SoftHSMToken {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let tool = "/usr/bin/softhsm2-util"
    static let label = "signet-test"
    static let pin = "31415926"
    static let soPin = "27182818"
    /// The environment variable the tests put the PIN in (`pin_env`, `pin-source=env:`).
    static let pinVariable = "HSM_TEST_PIN"

    let dir: URL
    /// SOFTHSM2_CONF for every process that opens the token.
    let config: String
    /// The user PIN, mode 0600.
    let pinFile: String
    /// The imported keys as PEM files (selectors rsa and ed) and their DNS records for example.com.
    let keys: RelayEndToEndTests.Keys

    init(in dir: URL) throws {
        for (path, what) in [(Self.module, "the SoftHSM2 PKCS#11 module"), (Self.tool, "softhsm2-util")] {
            guard FileManager.default.fileExists(atPath: path) else {
                throw ToolError("\(what) (\(path)) is missing: `make test` installs the Debian package softhsm2")
            }
        }
        self.dir = dir
        let tokens = dir.appendingPathComponent("tokens")
        try FileManager.default.createDirectory(at: tokens, withIntermediateDirectories: true)
        config = dir.appendingPathComponent("softhsm2.conf").path
        try
            "directories.tokendir = \(tokens.path)\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        pinFile = dir.appendingPathComponent("pin").path
        try "\(Self.pin)\n".write(toFile: pinFile, atomically: true, encoding: .utf8)
        #expect(chmod(pinFile, 0o600) == 0)

        let initialized = try Self.run(
            config, Self.tool,
            ["--init-token", "--free", "--label", Self.label, "--pin", Self.pin, "--so-pin", Self.soPin])
        guard initialized.status == 0 else { throw ToolError("softhsm2-util --init-token: \(initialized.stderr)") }

        var lines: [String] = []
        var paths: [String: String] = [:]
        for (selector, algorithm, id) in [("rsa", "RSA", "01"), ("ed", "ED25519", "02")] {
            let path = dir.appendingPathComponent("\(selector).pem").path
            let options = algorithm == "RSA" ? ["-pkeyopt", "rsa_keygen_bits:2048"] : []
            let made = try Tools.run("/usr/bin/openssl", ["genpkey", "-algorithm", algorithm, "-out", path] + options)
            guard made.status == 0 else { throw ToolError("openssl genpkey \(algorithm): \(made.stderr)") }
            #expect(chmod(path, 0o600) == 0)
            let imported = try Self.run(
                config, Self.tool,
                ["--import", path, "--token", Self.label, "--label", "dkim-\(selector)", "--id", id, "--pin", Self.pin])
            guard imported.status == 0 else {
                throw ToolError("softhsm2-util --import \(selector): \(imported.stderr)")
            }
            paths[selector] = path
            let spki = try Tools.publicKeyBase64(privateKeyPEM: path)
            // An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte prefix and the raw key (RFC 8410).
            let p = selector == "ed" ? Data(base64Encoded: spki)!.suffix(32).base64EncodedString() : spki
            lines.append(
                "\(selector)._domainkey.example.com\tv=DKIM1; k=\(selector == "ed" ? "ed25519" : "rsa"); p=\(p)")
        }
        let keyFile = dir.appendingPathComponent("keys.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        keys = RelayEndToEndTests.Keys(rsa: paths["rsa"]!, ed: paths["ed"]!, keyFile: keyFile.path)
    }

    /// Runs a program with SOFTHSM2_CONF set and without SIGNET_BIN (an unknown configuration key to signet).
    static func run(
        _ config: String, _ executable: String, _ arguments: [String], extra: [String] = []
    )
        throws -> Tools.Output
    {
        try Tools.run(
            "/usr/bin/env", ["-u", "SIGNET_BIN", "SOFTHSM2_CONF=\(config)"] + extra + [executable] + arguments,
            timeout: 60)
    }

    /// `signet ARGUMENTS` against this token, the PIN also in `pinVariable`.
    func signet(_ arguments: [String], pin: String = SoftHSMToken.pin) throws -> Tools.Output {
        try Self.run(config, try Tools.signet, arguments, extra: ["\(Self.pinVariable)=\(pin)"])
    }

    /// A pkcs11: URI for the key of `selector`.
    func uri(_ selector: String, pinSource: String? = nil, token: String = SoftHSMToken.label) -> String {
        "pkcs11:token=\(token);object=dkim-\(selector)?module-path=\(Self.module)&pin-source=\(pinSource ?? "file:" + pinFile)"
    }

    /// The environment `signet run` needs for the token.
    var environment: [String: String] { ["SOFTHSM2_CONF": config, Self.pinVariable: Self.pin] }
}

/// The pkcs11 signing backend against a real token (SoftHSM2): `signet sign`, `signet dns-record` and `signet run`
/// sign with keys the token holds, and dkimpy and Mail::DKIM (independent of Signet) verify every signature.
@Suite("PKCS#11 backend: SoftHSM2 token, verified by dkimpy, Mail::DKIM and OpenDKIM", .serialized)
struct PKCS11Tests {
    typealias E2E = RelayEndToEndTests

    /// `signet sign` with `pkcs11:` URIs: the token's signatures are byte for byte those of the same keys signing
    /// in process (RSASSA-PKCS1-v1_5 and Ed25519 are deterministic), and they verify with dkimpy and Mail::DKIM.
    @Test(.timeLimit(.minutes(3)))
    func signCommandSignsWithTheToken() throws {
        let dir = try Tools.makeTemporaryDirectory("pkcs11-sign")
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = try SoftHSMToken(in: dir)
        var signedFiles: [Data] = []
        // One signing time for both runs, recent enough that x= (a week later) has not passed for the verifiers.
        let now = "\(Int(Date().timeIntervalSince1970))"
        // dkimpy refuses the obsolete "Name :" syntax (IndependentVerifierTests checks that file with the others).
        for (name, bytes) in Corpus.all where name != "space-before-colon" {
            let input = dir.appendingPathComponent("\(name).eml")
            try Data(bytes).write(to: input)
            let common = ["sign", "--domain", "example.com", "--timestamp", now, input.path]
            let fromToken = try token.signet(
                common + [
                    "--selector", "rsa", "--key", token.uri("rsa"),
                    "--selector", "ed", "--key", token.uri("ed", pinSource: "env:\(SoftHSMToken.pinVariable)"),
                ])
            try #require(fromToken.status == 0, "\(name): \(fromToken.stderr)")
            let fromFiles = try token.signet(
                common + ["--selector", "rsa", "--key", token.keys.rsa, "--selector", "ed", "--key", token.keys.ed])
            try #require(fromFiles.status == 0, "\(name): \(fromFiles.stderr)")
            #expect(fromToken.stdout == fromFiles.stdout, "\(name): the token signed differently from the key file")
            let already = Mail.splitSignatures(Data(bytes)).signatures.count
            #expect(Mail.splitSignatures(fromToken.stdout).signatures.count == already + 2, "\(name)")
            #expect(!fromToken.stderr.contains(SoftHSMToken.pin))
            signedFiles.append(fromToken.stdout)
        }
        try RelayHarness.expectVerified(signedFiles, keys: token.keys, in: dir)
        // Debian's Mail::DKIM cannot check Ed25519, so OpenDKIM is the second verifier for it (and a third for RSA).
        var paths: [String] = []
        for (index, signed) in signedFiles.enumerated() {
            let path = dir.appendingPathComponent("signed-\(index).eml").path
            try signed.write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let opendkim = try Tools.run(
            "/bin/bash",
            [Tools.interopScripts.appendingPathComponent("opendkim_verify.sh").path, token.keys.keyFile] + paths)
        #expect(opendkim.status == 0, "\(opendkim.stderr)")
        let results = VerifierResult.parse(opendkim.text).filter { $0.domain == "example.com" }
        for path in paths {
            for algorithm in ["rsa-sha256", "ed25519-sha256"] {
                let mine = results.filter { $0.file == path && $0.algorithm == algorithm }.map(\.result)
                #expect(mine == ["pass"], "OpenDKIM \(path) \(algorithm): \(mine)")
            }
        }

        // The public key comes from the token: the same record as from the PEM file.
        for selector in ["rsa", "ed"] {
            let fromToken = try token.signet(
                ["dns-record", "--selector", selector, "--domain", "example.com", "--key", token.uri(selector)])
            let fromFile = try token.signet(
                [
                    "dns-record", "--selector", selector, "--domain", "example.com", "--key",
                    selector == "rsa" ? token.keys.rsa : token.keys.ed,
                ])
            #expect(fromToken.status == 0, "\(fromToken.stderr)")
            #expect(
                !fromToken.stdout.isEmpty && fromToken.stdout == fromFile.stdout,
                "\(fromToken.text) vs \(fromFile.text)")
        }
    }

    /// How the relay test signs example.com: both keys in the token, or the RSA key in the token and the Ed25519
    /// key in the signer agent (backends chosen per key).
    enum Layout: String, CaseIterable, CustomTestStringConvertible {
        case bothInToken, tokenAndAgent
        var testDescription: String { rawValue }
    }

    /// `signet run` with pkcs11 keys, relaying to smtp-sink: every message arrives with both signatures, and both
    /// verify with dkimpy (RSA and Ed25519) and Mail::DKIM (RSA). With both keys in the token, SIGHUP reloads too.
    @Test(.timeLimit(.minutes(3)), arguments: Layout.allCases)
    func relaySignsWithTheToken(layout: Layout) throws {
        let setup = try RelayHarness.Setup("pkcs11-relay")
        defer { setup.remove() }
        let token = try SoftHSMToken(in: try setup.subdirectory("hsm"))
        let (sink, sinkPort, dumps) = try E2E.startSink(setup.dir)
        defer { sink.stop() }
        let port = E2E.freePort()
        let metricsPort = ObservabilityEndToEndTests.freePort()
        let rsa = """
                rsa:
                  domain: example.com
                  selector: rsa
                  backend: pkcs11
                  pkcs11: {module: \(SoftHSMToken.module), token_label: \(SoftHSMToken.label), key_label: dkim-rsa, key_id: "01", pin_file: \(token.pinFile)}
            """
        let ed: String
        switch layout {
        case .bothInToken:
            // No backend of its own: the default, pkcs11; the PIN from the environment and the key by id alone.
            ed = """
                    ed:
                      domain: example.com
                      selector: ed
                      algorithm: ed25519-sha256
                      pkcs11: {module: \(SoftHSMToken.module), token_label: \(SoftHSMToken.label), key_id: "02", pin_env: \(SoftHSMToken.pinVariable)}
                """
        case .tokenAndAgent:
            ed = "    ed: {domain: example.com, selector: ed, key_file: \(token.keys.ed), backend: agent}"
        }
        let yaml = """
            listen: [127.0.0.1:\(port)]
            next_hop: 127.0.0.1:\(sinkPort)
            metrics_listen: 127.0.0.1:\(metricsPort)
            state_directory: \(setup.dir.appendingPathComponent("state").path)
            signing:
              backend: pkcs11
              keys:
            \(rsa)
            \(ed)
              table:
                - {from: example.com, keys: [rsa, ed]}
            """
        let file = setup.dir.appendingPathComponent("signet.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let check = try SoftHSMToken.run(
            token.config, try Tools.signet, ["check-config", file.path],
            extra: ["\(SoftHSMToken.pinVariable)=\(SoftHSMToken.pin)"])
        #expect(check.status == 0 && check.text.contains("configuration OK"), "\(check.text) \(check.stderr)")
        let relay = try E2E.Running(
            try Tools.signet, ["run", "--config", file.path], log: setup.dir.appendingPathComponent("signet.log"),
            environment: token.environment)
        defer { relay.stop() }
        try E2E.waitForPort(port)

        var sent: [String: [UInt8]] = [:]
        for index in 0..<12 {
            let client = try RelayHarness.greetedClient(port)
            let message = Mail.message(token: "pkcs11 \(layout) \(index)", body: "Signed by the token, \(index).\r\n")
            let reply = try RelayHarness.sendWithData(client, message)
            client.close()
            #expect(reply.code == 250, "\(reply) \(relay.output)")
            sent["pkcs11 \(layout) \(index)"] = message
        }
        let arrived = try RelayHarness.sinkMessages(dumps)
        #expect(arrived.count == sent.count, "\(relay.output)")
        for message in arrived {
            let name = RelayHarness.token(of: message) ?? "?"
            guard let original = sent[name] else {
                Issue.record("an unknown message arrived: \(name)")
                continue
            }
            RelayHarness.expectSignedCopy(message, of: original, name)
        }
        try RelayHarness.expectVerified(arrived, keys: token.keys, in: setup.dir)
        #expect(!relay.output.contains(SoftHSMToken.pin), "the PIN appears in the log")
        // Counted per key and backend.
        let samples = ObservabilityEndToEndTests.samples(
            try ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body)
        for (algorithm, selector, backend) in [
            ("rsa-sha256", "rsa", "pkcs11"), ("ed25519-sha256", "ed", layout == .bothInToken ? "pkcs11" : "agent"),
        ] {
            let name =
                "signet_signatures_total{algorithm=\"\(algorithm)\",backend=\"\(backend)\",domain=\"example.com\","
                + "result=\"success\",selector=\"\(selector)\"}"
            #expect(
                samples[name] == Double(sent.count),
                "\(name): \(samples.filter { $0.key.hasPrefix("signet_signatures") })")
        }
        guard layout == .bothInToken else { return }

        // SIGHUP: a key the token does not hold is refused and the running table keeps signing; a good new
        // configuration (the RSA key under selector rsa2) opens the token again and signs with it.
        func send(_ name: String) throws -> Data? {
            let client = try RelayHarness.greetedClient(port)
            defer { client.close() }
            let reply = try RelayHarness.sendWithData(client, Mail.message(token: name, body: "Reload \(name).\r\n"))
            #expect(reply.code == 250, "\(name): \(reply) \(relay.output)")
            return try RelayHarness.sinkMessages(dumps).first { RelayHarness.token(of: $0) == name }
        }
        try yaml.replacingOccurrences(of: "key_label: dkim-rsa", with: "key_label: no-such-key")
            .write(to: file, atomically: true, encoding: .utf8)
        kill(relay.process.processIdentifier, SIGHUP)
        #expect(RelayHarness.wait(seconds: 20) { relay.output.contains("reload refused") }, "\(relay.output)")
        #expect(
            relay.output.contains("signing.keys.rsa") && relay.output.contains("no private key labelled 'no-such-key'"))
        let refused = try #require(try send("after refused reload"))
        RelayHarness.expectSignedCopy(
            refused, of: Mail.message(token: "after refused reload", body: "Reload after refused reload.\r\n"),
            "refused reload")
        try RelayHarness.expectVerified([refused], keys: token.keys, in: setup.dir, verifiers: [.dkimpy])

        try yaml.replacingOccurrences(of: "selector: rsa\n", with: "selector: rsa2\n")
            .write(to: file, atomically: true, encoding: .utf8)
        kill(relay.process.processIdentifier, SIGHUP)
        #expect(RelayHarness.wait(seconds: 20) { relay.output.contains("configuration reloaded") }, "\(relay.output)")
        let reloaded = try #require(try send("after reload"))
        let signatures = Mail.splitSignatures(reloaded).signatures
        #expect(signatures.count == 2 && signatures.first?.contains("s=rsa2;") == true, "\(signatures)")
        // rsa2 publishes the same key as rsa; dkimpy checks the token's signature under the new selector.
        let records = try String(contentsOfFile: token.keys.keyFile, encoding: .utf8)
        let rsaRecord = try #require(records.split(separator: "\n").first { $0.hasPrefix("rsa._domainkey") })
        let keyFile = setup.dir.appendingPathComponent("keys-rsa2.txt")
        try (records + "rsa2" + rsaRecord.dropFirst(3) + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        let message = setup.dir.appendingPathComponent("reloaded.eml")
        try reloaded.write(to: message)
        let dkimpy = try Tools.run(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("dkimpy_verify.py").path, keyFile.path, message.path])
        let results = VerifierResult.parse(dkimpy.text)
        #expect(results.filter { $0.selector == "rsa2" }.map(\.result) == ["pass"], "\(dkimpy.text) \(dkimpy.stderr)")
        #expect(results.filter { $0.selector == "ed" }.map(\.result) == ["pass"], "\(dkimpy.text)")
    }

    /// A missing module, a token that is not there, a wrong PIN, a key the token does not hold and a PIN file
    /// everyone may read: `signet check-config` and `signet run` refuse, naming the key and the problem, and never
    /// print the PIN; `signet sign` too.
    @Test(.timeLimit(.minutes(3)))
    func badTokenSettingsAreRefusedByName() throws {
        let dir = try Tools.makeTemporaryDirectory("pkcs11-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let token = try SoftHSMToken(in: dir)
        let wrongPIN = "99999999"
        let wrongPINFile = dir.appendingPathComponent("wrong-pin").path
        try "\(wrongPIN)\n".write(toFile: wrongPINFile, atomically: true, encoding: .utf8)
        #expect(chmod(wrongPINFile, 0o600) == 0)
        let openPINFile = dir.appendingPathComponent("open-pin").path
        try "\(SoftHSMToken.pin)\n".write(toFile: openPINFile, atomically: true, encoding: .utf8)
        #expect(chmod(openPINFile, 0o644) == 0)

        struct Case {
            var name: String
            var module = SoftHSMToken.module
            var token = SoftHSMToken.label
            var keyLabel = "dkim-rsa"
            var pinFile: String
            var reason: String
        }
        let cases = [
            Case(name: "good", pinFile: token.pinFile, reason: ""),
            Case(
                name: "module missing", module: "/nonexistent/libnothing.so", pinFile: token.pinFile,
                reason: "cannot load PKCS#11 module /nonexistent/libnothing.so"),
            Case(
                name: "token missing", token: "no-such-token", pinFile: token.pinFile,
                reason: "no token labelled 'no-such-token'"),
            Case(name: "wrong PIN", pinFile: wrongPINFile, reason: "wrong PIN"),
            Case(
                name: "key missing", keyLabel: "no-such-key", pinFile: token.pinFile,
                reason: "no private key labelled 'no-such-key'"),
            Case(name: "PIN file open", pinFile: openPINFile, reason: "readable by everyone"),
        ]
        for test in cases {
            let file = dir.appendingPathComponent("c-\(UUID().uuidString).yaml")
            try """
            listen: [127.0.0.1:\(E2E.freePort())]
            metrics_listen: ""
            state_directory: \(dir.appendingPathComponent("state").path)
            signing:
              keys:
                hsm:
                  domain: example.com
                  selector: s1
                  backend: pkcs11
                  pkcs11: {module: \(test.module), token_label: \(test.token), key_label: \(test.keyLabel), pin_file: \(test.pinFile)}
              table: [{from: example.com, keys: [hsm]}]
            """.write(to: file, atomically: true, encoding: .utf8)
            let check = try SoftHSMToken.run(token.config, try Tools.signet, ["check-config", file.path])
            for output in [check.text, check.stderr] {
                #expect(
                    !output.contains(SoftHSMToken.pin) && !output.contains(wrongPIN),
                    "\(test.name): the PIN was printed")
            }
            if test.reason.isEmpty {
                #expect(check.status == 0, "\(test.name): \(check.stderr)")
                continue
            }
            #expect(check.status != 0, "\(test.name): accepted")
            #expect(
                check.stderr.contains("signing.keys.hsm") && check.stderr.contains(test.reason),
                "\(test.name): \(check.stderr)")
            let run = try SoftHSMToken.run(token.config, try Tools.signet, ["run", "--config", file.path])
            #expect(run.status != 0, "\(test.name): signet run started")
            #expect(
                run.stderr.contains("cannot start") && run.stderr.contains("signing.keys.hsm")
                    && run.stderr.contains(test.reason),
                "\(test.name): \(run.stderr)")
            #expect(
                !run.stderr.contains(SoftHSMToken.pin) && !run.stderr.contains(wrongPIN),
                "\(test.name): the PIN was printed")
        }

        // The command-line tools name the problem too.
        let message = dir.appendingPathComponent("m.eml")
        try Data(Mail.message(token: "bad", body: "x\r\n")).write(to: message)
        let sign = try token.signet(
            [
                "sign", "--domain", "example.com", "--selector", "rsa", "--key",
                token.uri("rsa", pinSource: "env:\(SoftHSMToken.pinVariable)"), message.path,
            ],
            pin: wrongPIN)
        #expect(sign.status != 0 && sign.stderr.contains("wrong PIN"), "\(sign.stderr)")
        #expect(!sign.stderr.contains(wrongPIN))
        let record = try token.signet(
            ["dns-record", "--selector", "s", "--key", token.uri("rsa", token: "no-such-token")])
        #expect(record.status != 0 && record.stderr.contains("no token labelled 'no-such-token'"), "\(record.stderr)")
    }
}
