import Foundation
import Testing

/// `signet run` between real SMTP peers: swaks and Postfix's smtp-source as clients, Postfix's smtp-sink as
/// the next hop. Every message that arrives must verify with dkimpy and Mail::DKIM; the client must be told
/// exactly what the next hop said, or a transient failure when the next hop cannot be used.
@Suite("Relay end to end: swaks / smtp-source → signet run → smtp-sink", .serialized)
struct RelayEndToEndTests {
    /// A running process that is stopped when the test ends.
    final class Running {
        let process: Process
        let log: URL
        /// SIGKILL at once instead of SIGTERM first, like smtp-sink: for programs with nothing to finish.
        var killAtOnce = false
        init(
            _ executable: String, _ arguments: [String], log: URL, environment: [String: String] = [:],
            directory: URL? = nil
        ) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let directory { process.currentDirectoryURL = directory }
            // SIGNET_BIN (how the tests find signet) would be an unknown configuration key to `signet run`.
            process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SIGNET_") }
                .merging(environment) { $1 }
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            self.log = log
            try process.run()
        }
        /// SIGTERM, then SIGKILL after 10 s; bounded either way.
        func stop() {
            guard process.isRunning else { return }
            // smtp-sink never sees SIGTERM here (children inherit the test runner's blocked signal mask), and it
            // keeps no state worth a clean exit: its dump files are complete once each transaction was answered.
            if killAtOnce || process.executableURL?.lastPathComponent == "smtp-sink" {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return
            }
            process.terminate()
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        deinit { stop() }
    }

    static func freePort() -> Int {
        // Below the kernel's ephemeral range (32768 and up here), so hundreds of test connections cannot take
        // the port between this check and the listener's bind; varied per run, and probed with a bind.
        for _ in 0..<100 {
            let port = 10000 + Int.random(in: 0..<22000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if bound == 0 { return port }
        }
        return 10000 + Int.random(in: 0..<22000)
    }

    /// Waits (bounded) until something accepts connections on the port.
    static func waitForPort(_ port: Int, seconds: Double = 20) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let fd = try? Tools.connectToLoopback(port: port) {
                close(fd)
                return
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw ToolError("nothing listens on 127.0.0.1:\(port) after \(seconds) s")
    }

    /// Keys and their DNS records (from openssl, not from Signet) for example.com.
    struct Keys {
        var rsa: String
        var ed: String
        var keyFile: String
    }

    static func makeKeys(in dir: URL) throws -> Keys {
        let signet = try Tools.signet
        var lines: [String] = []
        var paths: [String: String] = [:]
        for (selector, algorithm) in [("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")] {
            let path = dir.appendingPathComponent("\(selector).pem").path
            let keygen = try Tools.run(signet, ["keygen", "--algorithm", algorithm, "--out", path])
            try #require(keygen.status == 0, "\(keygen.stderr)")
            paths[selector] = path
            let spki = try Tools.publicKeyBase64(privateKeyPEM: path)
            let p = selector == "ed" ? Data(base64Encoded: spki)!.suffix(32).base64EncodedString() : spki
            lines.append("\(selector)._domainkey.example.com\tv=DKIM1; k=\(selector == "ed" ? "ed25519" : "rsa"); p=\(p)")
        }
        let keyFile = dir.appendingPathComponent("keys.txt")
        try (lines.joined(separator: "\n") + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        return Keys(rsa: paths["rsa"]!, ed: paths["ed"]!, keyFile: keyFile.path)
    }

    /// smtp-sink on a fresh port dumping each message into `dumps`, with extra flags (refusals, drops).
    static func startSink(_ dir: URL, _ flags: [String] = [], port: Int? = nil, backlog: Int = 64) throws -> (Running, Int, URL) {
        let dumps = dir.appendingPathComponent("dumps")
        try FileManager.default.createDirectory(at: dumps, withIntermediateDirectories: true)
        // smtp-sink runs as nobody: it needs the folders, not the key files, which must stay private (0600).
        _ = try Tools.run("/bin/chmod", ["a+rwx", dir.path, dumps.path])
        let port = port ?? freePort()
        var arguments = ["-u", "nobody", "-d", dumps.path + "/%H%M%S."] + flags
        arguments += ["127.0.0.1:\(port)", "\(backlog)"]
        let sink = try Running("/usr/sbin/smtp-sink", arguments, log: dir.appendingPathComponent("sink.log"))
        do {
            try waitForPort(port)
        } catch {
            throw ToolError("\(error); smtp-sink said:\n\(sink.output)")
        }
        return (sink, port, dumps)
    }

    /// `binary`: another `signet` than the one under test (the release build, for the 100 MiB message).
    static func startSignet(
        _ dir: URL, nextHop: Int, keys: Keys, environment: [String: String] = [:], logLevel: String = "info",
        binary: String? = nil
    ) throws -> (Running, Int) {
        let port = freePort()
        let relay = try Running(
            try binary ?? Tools.signet,
            [
                "run", "--listen", "127.0.0.1:\(port)", "--next-hop", "127.0.0.1:\(nextHop)", "--domain", "example.com",
                "--selector", "rsa", "--key", keys.rsa, "--selector", "ed", "--key", keys.ed,
                "--state-dir", dir.appendingPathComponent("state").path, "--log-level", logLevel,
            ],
            log: dir.appendingPathComponent("signet.log"), environment: environment
        )
        do {
            try waitForPort(port)
        } catch {
            throw ToolError("\(error); signet said:\n\(relay.output)")
        }
        return (relay, port)
    }

    /// The message as smtp-sink stored it, without the lines smtp-sink adds in front (X-* and its Received).
    /// smtp-sink opens a dump file at MAIL, so a transaction that never sent data leaves one with only its own
    /// lines; those are not messages and are left out.
    static func dumpedMessages(_ dumps: URL) throws -> [(name: String, bytes: Data)] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dumps.path).sorted()
        return try names.map { name -> (name: String, bytes: Data) in
            let text = try Data(contentsOf: dumps.appendingPathComponent(name))
            var lines = String(decoding: text, as: UTF8.self).components(separatedBy: "\r\n")
            if lines.count == 1 { lines = lines[0].components(separatedBy: "\n") }
            while let first = lines.first, first.hasPrefix("X-Client-") || first.hasPrefix("X-Helo-") || first.hasPrefix("X-Mail-")
                || first.hasPrefix("X-Rcpt-")
            {
                lines.removeFirst()
            }
            if lines.first?.hasPrefix("Received:") == true {
                lines.removeFirst()
                while let first = lines.first, first.hasPrefix(" ") || first.hasPrefix("\t") { lines.removeFirst() }
            }
            return (name, Data(lines.joined(separator: "\r\n").utf8))
        }.filter { !$0.bytes.isEmpty }
    }

    static func swaks(_ port: Int, _ extra: [String] = []) throws -> Tools.Output {
        try Tools.run(
            "/usr/bin/swaks",
            ["--server", "127.0.0.1", "--port", "\(port)", "--from", "alice@example.com", "--to", "bob@example.org",
             "--h-From", "Alice <alice@example.com>", "--h-Subject", "end to end", "--body", "Hello through Signet.\n.leading dot\n"]
                + extra,
            timeout: 60
        )
    }

    @Test func signsEverythingThatArrives() throws {
        let dir = try Tools.makeTemporaryDirectory("e2e")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.makeKeys(in: dir)
        let (sink, sinkPort, dumps) = try Self.startSink(dir)
        defer { sink.stop() }
        let (relay, port) = try Self.startSignet(dir, nextHop: sinkPort, keys: keys)
        defer { relay.stop() }

        let plain = try Self.swaks(port)
        #expect(plain.status == 0, "swaks: \(plain.text)\n\(relay.output)")
        let piped = try Self.swaks(port, ["--pipeline"])
        #expect(piped.status == 0, "swaks --pipeline: \(piped.text)")
        // smtp-source: 5 sessions, 40 messages, 2 recipients each (smtp-source never pipelines; RelayLimitsTests does).
        let source = try Tools.run(
            "/usr/sbin/smtp-source",
            ["-s", "5", "-m", "40", "-r", "2", "-l", "3000", "-f", "bulk@example.com", "-t", "rcpt@example.org",
             "-S", "bulk test", "127.0.0.1:\(port)"],
            timeout: 120
        )
        #expect(source.status == 0, "smtp-source: \(source.stderr)")
        sink.stop()

        let messages = try Self.dumpedMessages(dumps)
        #expect(messages.count == 42, "\(messages.count) messages arrived\n\(relay.output.suffix(2000))")
        var files: [String] = []
        for (index, message) in messages.enumerated() {
            let path = dir.appendingPathComponent("arrived-\(index).eml")
            try message.bytes.write(to: path)
            files.append(path.path)
        }
        for (verifier, executable, script, selectors) in [
            ("dkimpy", "/usr/bin/python3", "dkimpy_verify.py", ["rsa", "ed"]),
            ("Mail::DKIM", "/usr/bin/perl", "maildkim_verify.pl", ["rsa"]),
        ] {
            let output = try Tools.run(executable, [Tools.interopScripts.appendingPathComponent(script).path, keys.keyFile] + files)
            let results = VerifierResult.parse(output.text)
            for file in files {
                for selector in selectors {
                    let mine = results.filter { $0.file == file && $0.selector == selector && $0.domain == "example.com" }
                    #expect(mine.map(\.result) == ["pass"], "\(verifier) \(file) s=\(selector): \(mine)")
                }
            }
        }
        // swaks' message arrives byte for byte, after the two signature fields.
        let swaksMessages = messages.filter { String(decoding: $0.bytes, as: UTF8.self).contains("Subject: end to end") }
        #expect(swaksMessages.count == 2)
        for message in swaksMessages {
            let text = String(decoding: message.bytes, as: UTF8.self)
            #expect(text.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256;"))
            #expect(text.contains("\r\nDKIM-Signature: v=1; a=ed25519-sha256;"))
            #expect(text.contains("\r\n\r\nHello through Signet.\r\n.leading dot\r\n"))
        }
    }

    @Test func nextHopRefusalsArePassedBackUnchanged() throws {
        let dir = try Tools.makeTemporaryDirectory("e2e-refuse")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.makeKeys(in: dir)
        for (flags, expected, stage) in [
            (["-r", "RCPT"], "450 4.3.0", "RCPT"), (["-B", "550 5.7.1 refused by policy", "-f", "RCPT"], "550 5.7.1", "RCPT"),
            (["-r", "."], "450 4.3.0", "end of data"), (["-B", "554 5.7.1 content refused", "-f", "."], "554 5.7.1", "end of data"),
        ] {
            let (sink, sinkPort, dumps) = try Self.startSink(dir.appendingPathComponent(UUID().uuidString), flags)
            defer { sink.stop() }
            let (relay, port) = try Self.startSignet(dir, nextHop: sinkPort, keys: keys)
            defer { relay.stop() }
            let result = try Self.swaks(port)
            #expect(result.status != 0, "\(flags): swaks succeeded")
            #expect(result.text.contains("<** \(expected)"), "\(flags) at \(stage): expected \(expected) in\n\(result.text)")
            _ = dumps
        }
    }

    @Test func nextHopDownOrDroppingGivesATransientFailure() throws {
        let dir = try Tools.makeTemporaryDirectory("e2e-down")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.makeKeys(in: dir)

        // Nothing listens on the next hop's port: 451 4.4.1 at MAIL, the client keeps the message.
        let (relay, port) = try Self.startSignet(dir, nextHop: Self.freePort(), keys: keys)
        let down = try Self.swaks(port)
        #expect(down.text.contains("<** 451 4.4.1"), "\(down.text)")
        relay.stop()

        // The next hop disconnects after the end of data without replying: 451 4.4.2, never 250.
        let (sink, sinkPort, _) = try Self.startSink(dir.appendingPathComponent("drop"), ["-q", "."])
        defer { sink.stop() }
        let (relay2, port2) = try Self.startSignet(dir, nextHop: sinkPort, keys: keys)
        defer { relay2.stop() }
        let dropped = try Self.swaks(port2)
        #expect(dropped.text.contains("<** 451 4.4.2"), "\(dropped.text)")
        // smtp-sink answers the end of data with "250 2.0.0 Ok" (no "queued as"); MAIL and RCPT get 2.1.x.
        #expect(!dropped.text.contains("<-  250 2.0.0"))
    }
}
