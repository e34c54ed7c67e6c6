import Foundation
import Logging
import NIOCore
import NIOPosix
import SMTPProtocol
import SRS
import Testing

@testable import Relay

/// The `srs:` configuration section and the relay's SRS policy at MAIL and RCPT (the relay path itself is
/// covered end to end in InteropTests/SRSRelayEndToEndTests).
@Suite("SRS in the relay: configuration and envelope policy")
struct SRSRewriterTests {
    static let now = 1_700_000_000

    static func settings(_ yaml: String, environment: [String: String] = [:]) throws -> RelayConfiguration.SRSSettings {
        try ConfigurationLoader.load(yaml: yaml, environment: environment).srs
    }

    @Test("every srs key is read; SIGNET_SRS_* overrides")
    func readsEveryKey() throws {
        let srs = try Self.settings(
            """
            srs:
              mode: both
              domain: Fwd.Example
              secrets: [test-new, test-old]
              local_domains: [example.com, .Example.org]
              hash_encoding: base64url
              max_age: 7
              separator: "+"
              too_long: tempfail
            """)
        #expect(srs.mode == .both && srs.rewritesSenders && srs.reversesRecipients)
        #expect(srs.domain == "fwd.example")
        #expect(srs.secrets == ["test-new", "test-old"])
        #expect(srs.localDomains == ["example.com", ".example.org"])
        #expect(srs.hashEncoding == .base64url && srs.maxAge == 7 && srs.separator == "+" && srs.tooLong == .tempfail)
        let overridden = try Self.settings(
            "",
            environment: ["SIGNET_SRS_MODE": "forward", "SIGNET_SRS_DOMAIN": "f.example", "SIGNET_SRS_SECRETS": "a,b"])
        #expect(overridden.mode == .forward && overridden.domain == "f.example" && overridden.secrets == ["a", "b"])
        #expect(try Self.settings("").mode == .off)
    }

    @Test("incomplete or wrong srs settings are errors that name the key")
    func validation() {
        for (yaml, expected) in [
            ("srs: {mode: forward, secrets: [s]}", "srs.domain: needed"),
            ("srs: {mode: forward, domain: f.example}", "secrets or secrets_file is needed"),
            ("srs: {mode: forward, domain: f.example, secrets: [s], secrets_file: /x}", "not both"),
            ("srs: {mode: sideways}", "srs.mode: 'sideways'"),
            ("srs: {mode: reverse, domain: f.example, secrets: [s], max_age: 0}", "srs.max_age"),
            ("srs: {mode: reverse, domain: f.example, secrets: [s], separator: '#'}", "srs.separator"),
            ("srs: {hash_encoding: base32}", "srs.hash_encoding"),
            ("srs: {too_long: drop}", "srs.too_long"),
            ("srs: {secret: s}", "srs.secret: unknown key"),
            ("srs: {mode: forward, domain: 'not a domain', secrets: [s]}", "srs.domain: 'not a domain'"),
        ] {
            do {
                _ = try ConfigurationLoader.load(yaml: yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.description.contains(expected), "\(yaml): \(error.description)")
            }
        }
    }

    static func rewriter(
        _ mode: RelayConfiguration.SRSSettings.Mode, tooLong: RelayConfiguration.SRSSettings.TooLongFallback = .pass
    )
        throws -> SRSRewriter
    {
        var settings = RelayConfiguration.SRSSettings()
        settings.mode = mode
        settings.domain = "fwd.example"
        settings.secrets = ["test-secret-1"]
        settings.localDomains = ["example.com", ".example.net"]
        settings.tooLong = tooLong
        return try SRSRewriter(settings, statistics: SRSStatistics(), clock: { Self.now })
    }

    @Test("forward: non-local senders rewritten, null, local and our own untouched, counted")
    func forward() throws {
        let srs = try Self.rewriter(.forward)
        #expect(srs.sender("alice@orig.example") == .use("SRS0=uvFg=G3=orig.example=alice@fwd.example"))
        for unchanged in ["", "bob@example.com", "bob@EXAMPLE.com", "bob@a.example.net", "x@fwd.example", "postmaster"]
        {
            #expect(srs.sender(unchanged) == .use(unchanged))
        }
        // example.net itself is not covered by .example.net.
        #expect(srs.sender("bob@example.net") != .use("bob@example.net"))
        #expect(srs.sender("\"a@b\"@orig.example") == .use("\"a@b\"@orig.example"))  // SRS cannot carry it: passed
        // forward mode leaves recipients alone.
        #expect(
            srs.recipient("SRS0=uvFg=G3=orig.example=alice@fwd.example")
                == .use("SRS0=uvFg=G3=orig.example=alice@fwd.example"))
        #expect(srs.statistics.sendersRewritten.count == 2)
        #expect(srs.statistics.sendersNotRewritten.count == 6)
        #expect(srs.statistics.sendersMalformed.count == 1)
    }

    @Test("too long: pass relays the sender unchanged, tempfail answers 451 4.1.7")
    func tooLong() throws {
        let sender = "a.rather.long.local.part.for.srs@a.long.subdomain.of.orig.example"
        #expect(try Self.rewriter(.forward).sender(sender) == .use(sender))
        let refusing = try Self.rewriter(.forward, tooLong: .tempfail)
        guard case .refuse(let reply) = refusing.sender(sender) else {
            Issue.record("not refused")
            return
        }
        #expect(reply.code == 451 && reply.enhancedCode == EnhancedStatusCode(4, 1, 7))
        #expect(refusing.statistics.sendersTooLong.count == 1)
    }

    @Test("reverse: our SRS recipients become the original; forged, expired, malformed get 550 5.1.1")
    func reverse() throws {
        let srs = try Self.rewriter(.reverse)
        #expect(srs.recipient("SRS0=uvFg=G3=orig.example=alice@fwd.example") == .use("alice@orig.example"))
        #expect(srs.recipient("srs0=UVFG=g3=orig.example=alice@FWD.example") == .use("alice@orig.example"))
        for (address, text) in [
            ("SRS0=uvFh=G3=orig.example=alice@fwd.example", "invalid SRS address: the hash does not match"),
            ("SRS0=abcd@fwd.example", "malformed SRS address"),
        ] {
            guard case .refuse(let reply) = srs.recipient(address) else {
                Issue.record("\(address) not refused")
                continue
            }
            #expect(reply.code == 550 && reply.enhancedCode == EnhancedStatusCode(5, 1, 1))
            #expect(reply.lines.joined().contains(text), "\(reply)")
        }
        var settings = RelayConfiguration.SRSSettings()
        settings.mode = .reverse
        settings.domain = "fwd.example"
        settings.secrets = ["test-secret-1"]
        let later = try SRSRewriter(settings, statistics: SRSStatistics(), clock: { Self.now + 30 * 86_400 })
        guard case .refuse(let reply) = later.recipient("SRS0=uvFg=G3=orig.example=alice@fwd.example") else {
            Issue.record("expired address accepted")
            return
        }
        #expect(reply.lines.joined().contains("expired SRS address: 30 days old"))
        // Look-alikes of other domains and plain mailboxes of ours pass unchanged; reverse mode leaves senders.
        #expect(
            srs.recipient("SRS0=uvFh=G3=orig.example=alice@other.example")
                == .use("SRS0=uvFh=G3=orig.example=alice@other.example"))
        #expect(srs.recipient("info@fwd.example") == .use("info@fwd.example"))
        #expect(srs.sender("alice@orig.example") == .use("alice@orig.example"))
        #expect(srs.statistics.recipientsReversed.count == 2)
        #expect(srs.statistics.recipientsForged.count == 1)
        #expect(srs.statistics.recipientsMalformed.count == 1)
        #expect(later.statistics.recipientsExpired.count == 1)
    }

    @Test("secrets file: one a line, first signs; missing or empty file fails before listening")
    func secretsFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("srs-secrets-\(UUID().uuidString)")
            .path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "test-secret-1\r\ntest-old-secret\n\n".write(toFile: path, atomically: true, encoding: .utf8)
        var settings = RelayConfiguration.SRSSettings()
        settings.mode = .both
        settings.domain = "fwd.example"
        settings.secretsFile = path
        #expect(try settings.resolvedSecrets() == ["test-secret-1", "test-old-secret"])
        let srs = try SRSRewriter(settings, statistics: SRSStatistics(), clock: { Self.now })
        #expect(srs.sender("alice@orig.example") == .use("SRS0=uvFg=G3=orig.example=alice@fwd.example"))
        try "\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) { try SRSRewriter(settings, statistics: SRSStatistics()) }
        settings.secretsFile = path + ".missing"
        #expect(throws: ConfigurationError.self) { try SRSRewriter(settings, statistics: SRSStatistics()) }
    }

    @Test("look-up answers: local senders and non-SRS keys are not found; tcp_table %-encoding round-trips")
    func lookup() throws {
        let lookup = SRSLookup(
            scheme: try SRSScheme(secrets: ["test-secret-1"]), domain: "fwd.example", localDomains: [".example.com"])
        #expect(
            lookup.forward("alice@orig.example", now: Self.now) == .found("SRS0=uvFg=G3=orig.example=alice@fwd.example")
        )
        #expect(lookup.forward("bob@mail.example.com", now: Self.now) == .notFound("local domain"))
        #expect(
            lookup.reverse("SRS0=uvFg=G3=orig.example=alice@fwd.example", now: Self.now) == .found("alice@orig.example")
        )
        guard case .notFound = lookup.reverse("alice@orig.example", now: Self.now) else {
            Issue.record("plain address found")
            return
        }
        let tempfail = SRSLookup(scheme: try SRSScheme(secrets: ["s"]), domain: "fwd.example", tooLong: .tempfail)
        guard case .temporary = tempfail.forward(String(repeating: "x", count: 60) + "@orig.example", now: Self.now)
        else {
            Issue.record("too long not temporary")
            return
        }
        for text in ["\"john doe\"@x.example", "100%@x", "tab\there", "ünï@x"] {
            let encoded = LookupHandler.percentEncoded(text)
            #expect(!encoded.contains(" ") && !encoded.contains("\t"))
            #expect(LookupHandler.percentDecoded(Substring(encoded)) == text)
        }
        #expect(LookupHandler.percentDecoded("bad%zz") == nil)
    }
}

/// The look-up server on a real loopback socket: pipelined netstrings, unknown maps, broken framing.
@Suite("SRS look-up server framing")
struct SRSLookupServerTests {
    /// Sends `request` on a fresh connection and reads until the server closes or `expected` bytes arrived.
    static func exchange(port: Int, _ request: String, expected: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        try #require(connected == 0)
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var received: [UInt8] = []
        while received.count < expected {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { break }
            received += chunk[..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    static func netstring(_ text: String) -> String { "\(text.utf8.count):\(text)," }

    @Test func socketmapAndTCPTable() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let lookup = SRSLookup(scheme: try SRSScheme(secrets: ["test-secret-1"]), domain: "fwd.example")
        let clock: @Sendable () -> Int = { SRSRewriterTests.now }
        let socketmap = try await SRSLookupServer.bind(
            HostPort(host: "127.0.0.1", port: 0), protocol: .socketmap, lookup: lookup, group: group,
            logger: Logger(label: "test"), clock: clock)
        let tcp = try await SRSLookupServer.bind(
            HostPort(host: "127.0.0.1", port: 0), protocol: .tcpTable(forward: false), lookup: lookup, group: group,
            logger: Logger(label: "test"), clock: clock)
        let port = try #require(socketmap.localAddress?.port)
        let tcpPort = try #require(tcp.localAddress?.port)

        // Two pipelined requests in one write, answered in order.
        let pipelined =
            Self.netstring("forward alice@orig.example")
            + Self.netstring("reverse SRS0=uvFg=G3=orig.example=alice@fwd.example")
        let first = Self.netstring("OK SRS0=uvFg=G3=orig.example=alice@fwd.example")
        let second = Self.netstring("OK alice@orig.example")
        #expect(
            try Self.exchange(port: port, pipelined, expected: first.utf8.count + second.utf8.count) == first + second)
        // Unknown map: PERM, connection stays usable.
        let permExpected =
            Self.netstring("PERM unknown map 'bogus': use forward or reverse") + Self.netstring("NOTFOUND local domain")
        let perm = try Self.exchange(
            port: port, Self.netstring("bogus x@y") + Self.netstring("forward b@fwd.example"),
            expected: permExpected.utf8.count)
        #expect(perm == permExpected)
        // Broken framing: PERM and the server closes (the read ends before the 200-byte bound).
        #expect(try Self.exchange(port: port, "x:abc,", expected: 200).contains("PERM not a netstring"))
        #expect(try Self.exchange(port: port, "3:abcX", expected: 200).contains("PERM netstring without its comma"))
        // tcp_table: %-decoded key, %-encoded answer, 500 for what is not found.
        let tcpExpected = "200 alice@orig.example\n500 not%20an%20SRS%20address:%20<plain%20x@fwd.example>\n"
        let answer = try Self.exchange(
            port: tcpPort, "get SRS0=uvFg=G3=orig.example=alice@fwd.example\r\nget plain%20x@fwd.example\n",
            expected: tcpExpected.utf8.count)
        #expect(answer == tcpExpected)
        try await socketmap.close()
        try await tcp.close()
        try await group.shutdownGracefully()
    }
}
