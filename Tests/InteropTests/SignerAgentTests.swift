import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `signet run` with `signing.backend: agent`: the private keys live only in the `signet signer` child. Proven by
/// reading both processes' memory as root; and the agent may die under load without the relay crashing or
/// acknowledging a message it did not sign.
@Suite("Signer agent: isolation and restart", .serialized)
struct SignerAgentTests {
    typealias E2E = RelayEndToEndTests

    /// A relay with the agent backend in front of smtp-sink, for example.com's rsa and ed keys.
    struct Relay {
        var setup: RelayHarness.Setup
        var sink: E2E.Running
        var dumps: URL
        var relay: E2E.Running
        var port: Int
        var metricsPort: Int

        var configFile: URL

        init(_ name: String) throws {
            setup = try RelayHarness.Setup(name)
            let started = try E2E.startSink(setup.dir)
            sink = started.0
            dumps = started.2
            port = E2E.freePort()
            metricsPort = ObservabilityEndToEndTests.freePort()
            let yaml = """
                listen: [127.0.0.1:\(port)]
                next_hop: 127.0.0.1:\(started.1)
                metrics_listen: 127.0.0.1:\(metricsPort)
                state_directory: \(setup.dir.appendingPathComponent("state").path)
                signing:
                  backend: agent
                  agent_timeout: 5
                  keys:
                    rsa: {domain: example.com, selector: rsa, key_file: \(setup.keys.rsa)}
                    ed: {domain: example.com, selector: ed, key_file: \(setup.keys.ed), algorithm: ed25519-sha256}
                  table:
                    - {from: example.com, keys: [rsa, ed]}
                """
            let file = setup.dir.appendingPathComponent("signet.yaml")
            try yaml.write(to: file, atomically: true, encoding: .utf8)
            configFile = file
            relay = try E2E.Running(
                try Tools.signet, ["run", "--config", file.path], log: setup.dir.appendingPathComponent("signet.log"))
            try E2E.waitForPort(port)
        }

        func stop() {
            relay.stop()
            sink.stop()
            setup.remove()
        }

        /// The relay's live children: the signer agent.
        func agentPID() -> Int32? {
            let relayPID = relay.process.processIdentifier
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            for entry in entries {
                guard let pid = Int32(entry),
                    let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                // fields[0] is the state, fields[1] the parent; a zombie is a dead agent not yet reaped.
                if fields.count > 1, fields[1] == "\(relayPID)", fields[0] != "Z" { return pid }
            }
            return nil
        }

        func metric(_ name: String) -> Double? {
            guard let body = try? ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body else { return nil }
            return ObservabilityEndToEndTests.samples(body)[name]
        }
    }

    // MARK: Memory

    /// Whether any readable mapping of `pid` contains one of `needles`; which ones did.
    static func search(pid: Int32, for needles: [String: [UInt8]]) throws -> Set<String> {
        let maps = try String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)
        let memory = open("/proc/\(pid)/mem", O_RDONLY)
        guard memory >= 0 else { throw ToolError("cannot open /proc/\(pid)/mem: \(String(cString: strerror(errno)))") }
        defer { close(memory) }
        var found = Set<String>()
        let overlap = needles.values.map(\.count).max() ?? 0
        let chunk = 8 << 20
        var buffer = [UInt8](repeating: 0, count: chunk + overlap)
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, fields[1].hasPrefix("r") else { continue }
            // The vsyscall page cannot be read through /proc/PID/mem.
            if line.hasSuffix("[vsyscall]") || line.hasSuffix("[vvar]") { continue }
            let bounds = fields[0].split(separator: "-").compactMap { UInt64($0, radix: 16) }
            guard bounds.count == 2 else { continue }
            var offset = bounds[0]
            while offset < bounds[1] {
                let length = Int(min(UInt64(chunk + overlap), bounds[1] - offset))
                let read = buffer.withUnsafeMutableBytes { pread(memory, $0.baseAddress, length, off_t(Int64(bitPattern: offset))) }
                if read <= 0 { break }
                buffer.withUnsafeBytes { haystack in
                    for (name, needle) in needles where !found.contains(name) {
                        if Self.contains(UnsafeRawBufferPointer(rebasing: haystack[0..<read]), needle) {
                            found.insert(name)
                        }
                    }
                }
                offset += UInt64(chunk)
            }
        }
        return found
    }

    /// Whether `needle` occurs in `haystack`: memchr for its first byte, then memcmp (Glibc's memmem is a GNU
    /// extension Swift does not import).
    static func contains(_ haystack: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        guard let base = haystack.baseAddress, let first = needle.first, haystack.count >= needle.count else {
            return false
        }
        var start = 0
        let last = haystack.count - needle.count
        while start <= last {
            guard let hit = memchr(base + start, Int32(first), last - start + 1) else { return false }
            let index = base.distance(to: UnsafeRawPointer(hit))
            if needle.withUnsafeBytes({ memcmp(base + index, $0.baseAddress!, needle.count) }) == 0 { return true }
            start = index + 1
        }
        return false
    }

    /// The secret parts of the test keys as they can sit in memory: the PKCS#8 DER, RSA prime p big-endian and as
    /// OpenSSL's little-endian BIGNUM limbs, and the Ed25519 private key.
    static func secrets(_ keys: E2E.Keys) throws -> [String: [UInt8]] {
        let rsaDER = try Tools.run("/usr/bin/openssl", ["pkey", "-in", keys.rsa, "-outform", "DER"])
        try #require(rsaDER.status == 0)
        let edDER = try Tools.run("/usr/bin/openssl", ["pkey", "-in", keys.ed, "-outform", "DER"])
        try #require(edDER.status == 0)
        let text = try Tools.run("/usr/bin/openssl", ["pkey", "-in", keys.rsa, "-text", "-noout"]).text
        // "prime1:" then indented hex lines "00:e3:..." up to the next label.
        guard let start = text.range(of: "prime1:"), let end = text.range(of: "prime2:") else {
            throw ToolError("no primes in openssl's output")
        }
        let hex = text[start.upperBound..<end.lowerBound].filter { $0.isHexDigit }
        var prime: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            prime.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        while prime.first == 0 { prime.removeFirst() }
        try #require(prime.count == 128, "a 2048-bit key has 1024-bit primes")
        return [
            "rsa-pkcs8-der": Array(rsaDER.stdout),
            "rsa-prime-big-endian": prime,
            "rsa-prime-bignum": prime.reversed(),
            "ed25519-private": Array(edDER.stdout.suffix(32)),
        ]
    }

    /// `signet check-config` and `signet run` refuse a key that is not private, too short or malformed, naming the
    /// key and the reason; with the agent backend too (the agent's reason reaches the relay's error).
    @Test(.timeLimit(.minutes(5)))
    func badKeysAreRefusedByName() throws {
        let setup = try RelayHarness.Setup("agent-bad-keys")
        defer { setup.remove() }
        let signet = try Tools.signet
        let open = setup.dir.appendingPathComponent("open.pem").path
        try FileManager.default.copyItem(atPath: setup.keys.ed, toPath: open)
        #expect(chmod(open, 0o644) == 0)
        let short = setup.dir.appendingPathComponent("short.pem").path
        _ = try Tools.run("/usr/bin/openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:512", "-out", short])
        #expect(chmod(short, 0o600) == 0)
        let garbage = setup.dir.appendingPathComponent("garbage.pem").path
        try "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n".write(
            toFile: garbage, atomically: true, encoding: .utf8)
        #expect(chmod(garbage, 0o600) == 0)
        for backend in ["in-process", "agent"] {
            for (key, reason) in [
                (setup.keys.ed, nil), (open, "readable by everyone"), (short, "512 bits"), (garbage, "garbage.pem"),
            ] {
                let file = setup.dir.appendingPathComponent("c-\(UUID().uuidString).yaml")
                try """
                listen: [127.0.0.1:\(E2E.freePort())]
                metrics_listen: ""
                state_directory: \(setup.dir.appendingPathComponent("state").path)
                signing:
                  backend: \(backend)
                  keys: {main: {domain: example.com, selector: s1, key_file: '\(key)'}}
                  table: [{from: example.com, keys: [main]}]
                """.write(to: file, atomically: true, encoding: .utf8)
                // SIGNET_BIN (how the tests find signet) would be an unknown configuration key.
                let check = try Tools.run("/usr/bin/env", ["-u", "SIGNET_BIN", signet, "check-config", file.path])
                guard let reason else {
                    #expect(check.status == 0, "\(check.stderr)")
                    continue
                }
                #expect(check.status != 0)
                #expect(check.stderr.contains("signing.keys.main") && check.stderr.contains(reason), "\(check.stderr)")
                let run = try Tools.run(
                    "/usr/bin/env", ["-u", "SIGNET_BIN", signet, "run", "--config", file.path], timeout: 30)
                #expect(run.status != 0, "\(backend) started with \(key)")
                #expect(run.stderr.contains("signing.keys.main") && run.stderr.contains(reason), "\(backend) \(key): \(run.stderr)")
            }
        }
    }

    /// The Kubernetes layout: the agent is its own process (its own container there) listening on a Unix socket,
    /// the relay has `agent_socket` and no key files at all. `signet check-config` passes in the relay's view
    /// (key files absent), the relay started before the agent waits for the socket, and mail is signed through it.
    @Test(.timeLimit(.minutes(5)))
    func agentInItsOwnProcessStartedAfterTheRelay() throws {
        let setup = try RelayHarness.Setup("agent-socket")
        defer { setup.remove() }
        let (sink, sinkPort, dumps) = try E2E.startSink(setup.dir)
        defer { sink.stop() }
        let socket = setup.dir.appendingPathComponent("signer.sock").path
        let port = E2E.freePort()
        // The relay's configuration names key files it cannot read (they are the agent's, elsewhere).
        let yaml = """
            listen: [127.0.0.1:\(port)]
            next_hop: 127.0.0.1:\(sinkPort)
            metrics_listen: ""
            state_directory: \(setup.dir.appendingPathComponent("state").path)
            signing:
              backend: agent
              agent_socket: \(socket)
              agent_timeout: 10
              keys:
                rsa: {domain: example.com, selector: rsa, key_file: /nonexistent/keys/rsa.pem}
                ed: {domain: example.com, selector: ed, key_file: /nonexistent/keys/ed.pem, algorithm: ed25519-sha256}
              table:
                - {from: example.com, keys: [rsa, ed]}
            """
        let file = setup.dir.appendingPathComponent("signet.yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let check = try Tools.run("/usr/bin/env", ["-u", "SIGNET_BIN", try Tools.signet, "check-config", file.path])
        #expect(check.status == 0, "\(check.text)\(check.stderr)")
        #expect(check.text.contains("keys held by the signer agent at \(socket), not readable here: ed, rsa"))

        let relay = try E2E.Running(
            try Tools.signet, ["run", "--config", file.path], log: setup.dir.appendingPathComponent("signet.log"))
        defer { relay.stop() }
        Thread.sleep(forTimeInterval: 1)  // the relay is up before the agent, as a sidecar may be
        let agent = try E2E.Running(
            try Tools.signet,
            ["signer", "--listen", socket, "--key", "rsa=\(setup.keys.rsa)", "--key", "ed=\(setup.keys.ed)"],
            log: setup.dir.appendingPathComponent("signer.log"))
        defer { agent.stop() }
        try E2E.waitForPort(port)
        for index in 0..<5 {
            let client = try RelayHarness.greetedClient(port)
            let reply = try RelayHarness.sendWithData(
                client, Mail.message(token: "socket \(index)", body: "Signed by an agent in its own process.\r\n"))
            #expect(reply.code == 250, "\(reply) \(relay.output)")
            client.close()
        }
        let arrived = try RelayHarness.sinkMessages(dumps)
        #expect(arrived.count == 5)
        try RelayHarness.expectVerified(arrived, keys: setup.keys, in: setup.dir, verifiers: [.dkimpy])
        #expect(relay.output.contains("waiting for the signer agent"), "\(relay.output)")
    }

    @Test(.timeLimit(.minutes(3)))
    func relayMemoryHoldsNoPrivateKey() throws {
        try #require(getuid() == 0, "reading another process's memory needs root")
        let relay = try Relay("agent-isolation")
        defer { relay.stop() }
        let secrets = try Self.secrets(relay.setup.keys)
        for index in 0..<20 {
            let client = try RelayHarness.greetedClient(relay.port)
            let reply = try RelayHarness.sendWithData(
                client, Mail.message(token: "isolation \(index)", body: "Signed by the agent.\r\n"))
            #expect(reply.code == 250, "\(reply)")
            client.close()
        }
        let arrived = try RelayHarness.sinkMessages(relay.dumps)
        #expect(arrived.count == 20)
        try RelayHarness.expectVerified(arrived, keys: relay.setup.keys, in: relay.setup.dir, verifiers: [.dkimpy])

        let agent = try #require(relay.agentPID(), "no signer agent under the relay: \(relay.relay.output)")
        let inRelay = try Self.search(pid: relay.relay.process.processIdentifier, for: secrets)
        let inAgent = try Self.search(pid: agent, for: secrets)
        #expect(inRelay.isEmpty, "the relay's memory holds \(inRelay.sorted())")
        // The control: the search does find the keys where they are.
        #expect(inAgent.contains("rsa-prime-bignum"), "the agent's memory: \(inAgent.sorted())")
        #expect(inAgent.contains("ed25519-private"), "the agent's memory: \(inAgent.sorted())")
        // The agent gave up root after reading the keys, on every thread (real, effective, saved and fs uid).
        for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(agent)/task") {
            let status = try String(contentsOfFile: "/proc/\(agent)/task/\(task)/status", encoding: .utf8)
            let uidLine = status.split(separator: "\n").first { $0.hasPrefix("Uid:") } ?? ""
            #expect(!uidLine.split(separator: "\t").dropFirst().contains("0"), "agent thread \(task): \(uidLine)")
        }
    }

    /// SIGHUP with a key the agent refuses keeps the running agent and table; a good new key set starts a new
    /// agent, and mail is signed with the new selector.
    @Test(.timeLimit(.minutes(5)))
    func reloadSwapsAgentsOnlyForGoodKeys() throws {
        let relay = try Relay("agent-reload")
        defer { relay.stop() }
        let firstAgent = try #require(relay.agentPID())
        let original = try String(contentsOf: relay.configFile, encoding: .utf8)
        func send(_ token: String) throws -> Int {
            let client = try RelayHarness.greetedClient(relay.port)
            defer { client.close() }
            return try RelayHarness.sendWithData(client, Mail.message(token: token, body: "Reload \(token).\r\n")).code
        }
        let open = relay.setup.dir.appendingPathComponent("open.pem").path
        try FileManager.default.copyItem(atPath: relay.setup.keys.ed, toPath: open)
        #expect(chmod(open, 0o644) == 0)
        try original.replacingOccurrences(of: relay.setup.keys.ed, with: open)
            .write(to: relay.configFile, atomically: true, encoding: .utf8)
        kill(relay.relay.process.processIdentifier, SIGHUP)
        #expect(RelayHarness.wait(seconds: 20) { relay.relay.output.contains("reload refused") }, "\(relay.relay.output)")
        #expect(relay.relay.output.contains("signing.keys.ed") && relay.relay.output.contains("readable by everyone"))
        #expect(relay.agentPID() == firstAgent)
        #expect(try send("refused") == 250)

        // A good reload: the rsa key alone, under a new selector.
        try original.replacingOccurrences(of: "selector: rsa,", with: "selector: rsa2,")
            .replacingOccurrences(of: "keys: [rsa, ed]", with: "keys: [rsa]")
            .write(to: relay.configFile, atomically: true, encoding: .utf8)
        kill(relay.relay.process.processIdentifier, SIGHUP)
        #expect(RelayHarness.wait(seconds: 20) { relay.relay.output.contains("configuration reloaded") }, "\(relay.relay.output)")
        #expect(RelayHarness.wait(seconds: 20) { relay.agentPID().map { $0 != firstAgent } ?? false })
        #expect(try send("reloaded") == 250)
        let arrived = try RelayHarness.sinkMessages(relay.dumps)
        let last = try #require(arrived.first { RelayHarness.token(of: $0) == "reloaded" })
        let signatures = Mail.splitSignatures(last).signatures
        #expect(signatures.count == 1 && signatures.first?.contains("s=rsa2") == true, "\(signatures)")
        #expect(relay.metric("signet_signer_agent_restarts_total") == 0, "a reload is not a restart")
    }

    @Test(.timeLimit(.minutes(4)))
    func agentKilledUnderLoad() throws {
        let relay = try Relay("agent-kill")
        defer { relay.stop() }
        let firstAgent = try #require(relay.agentPID())
        /// What the senders saw, shared between their threads.
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var replies: [String: Int] = [:]
            var failures: [String] = []
        }
        let outcomes = Outcomes()
        let port = relay.port
        let stop = Date().addingTimeInterval(6)
        let senders = 4
        let group = DispatchGroup()
        for sender in 0..<senders {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                var sequence = 0
                while Date() < stop {
                    let token = "load \(sender)-\(sequence)"
                    sequence += 1
                    do {
                        let client = try RelayHarness.greetedClient(port, timeout: 30)
                        let reply = try RelayHarness.sendWithData(
                            client, Mail.message(token: token, body: "Message \(token).\r\n"))
                        client.close()
                        outcomes.lock.withLock { outcomes.replies[token] = reply.code }
                    } catch {
                        outcomes.lock.withLock { outcomes.failures.append("\(token): \(error)") }
                    }
                }
            }
        }
        Thread.sleep(forTimeInterval: 2)
        #expect(kill(firstAgent, SIGKILL) == 0)
        group.wait()

        // Back: a new agent, counted, and signing again.
        let restarted = RelayHarness.wait(seconds: 20) {
            if let pid = relay.agentPID(), pid != firstAgent { return true }
            return false
        }
        #expect(restarted, "\(relay.relay.output)")
        #expect(relay.relay.process.isRunning, "the relay died: \(relay.relay.output)")
        #expect(relay.metric("signet_signer_agent_restarts_total") == 1)
        var after: [String] = []
        try RelayHarness.wait(seconds: 20) {
            let token = "after \(after.count)"
            let client = try RelayHarness.greetedClient(relay.port)
            let reply = try RelayHarness.sendWithData(client, Mail.message(token: token, body: "After the restart.\r\n"))
            client.close()
            if reply.code == 250 { after.append(token) }
            return after.count >= 5
        }
        #expect(after.count >= 5)

        let (codes, failures) = outcomes.lock.withLock { (outcomes.replies, outcomes.failures) }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(Set(codes.values).isSubset(of: [250, 451]), "\(Set(codes.values))")
        let accepted = Set(codes.filter { $0.value == 250 }.keys)
        #expect(codes.values.contains(451), "no message was in flight or sent while the agent was down")
        // Every acknowledged message arrived signed; nothing that was refused arrived.
        let arrived = try RelayHarness.sinkMessages(relay.dumps)
        let tokens = Set(arrived.compactMap(RelayHarness.token(of:)))
        #expect(arrived.count == accepted.count + after.count, "\(arrived.count) arrived")
        #expect(tokens == accepted.union(after), "acknowledged but not relayed: \(accepted.subtracting(tokens).sorted())")
        for message in arrived {
            #expect(Mail.splitSignatures(message).signatures.count == 2, "a message arrived without both signatures")
        }
        try RelayHarness.expectVerified(arrived, keys: relay.setup.keys, in: relay.setup.dir, verifiers: [.dkimpy])
    }
}
