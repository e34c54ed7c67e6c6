import Foundation
import SRS
import Testing

/// Signet's SRS against the two implementations it must interoperate with, sharing one secret:
/// Mail::SRS 0.31 (Debian libmail-srs-perl, run through Tests/Interop/mailsrs_batch.pl with its clock pinned) and
/// postsrsd 1.10 (Debian postsrsd, libsrs2, on loopback over its tcp_table protocol). Addresses are generated from
/// a fixed seed with odd local parts and long domains.
@Suite("SRS interop: Mail::SRS and postsrsd", .serialized)
struct SRSInteropTests {
    /// Generated per run; clearly test secrets.
    static let secret = "test-srs-secret-\(UUID().uuidString)"
    static let oldSecret = "test-srs-old-secret-\(UUID().uuidString)"
    static let firstHopSecret = "test-srs-first-hop-\(UUID().uuidString)"
    static let domain = "fwd.example"
    static let now = 1_700_000_000
    static let day = 86_400

    static func scheme(_ secrets: [String]) -> SRSScheme {
        var options = SRSOptions()
        options.maximumLocalPartLength = nil  // Mail::SRS and postsrsd write any length; compare like with like
        return try! SRSScheme(secrets: secrets, options: options)
    }

    // MARK: Generated addresses

    static func addresses(count: Int, seed: UInt64) -> [String] {
        var random = SeededRandom(seed: seed)
        func pick<T>(_ choices: [T]) -> T { choices[Int(random.next() % UInt64(choices.count))] }
        func word(
            _ length: Int, _ alphabet: String = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        )
            -> String
        {
            let characters = Array(alphabet)
            return String((0..<max(1, length)).map { _ in characters[Int(random.next() % UInt64(characters.count))] })
        }
        func localPart(_ kind: Int) -> String {
            switch kind {
            case 0: return "\(word(4)).\(word(1)).\(word(6))"  // dots, mixed case
            case 1: return "\(word(5))+\(word(3)).\(word(2))"  // plus tags
            case 2: return pick(["=", "a=", "=b"]) + "\(word(3))=\(word(2))=\(word(1))"  // = inside
            case 3: return "\"\(word(3)) \(word(4))=\(word(2))..x\""  // quoted, with a space, = and ..
            case 4: return word(3, "abcdefghijklmnopqrstuvwxyz").uppercased() + word(5, "abcdefghijklmnopqrstuvwxyz")
            case 5: return word(6, "abc!#$%&'*/?^_`{|}~-") + word(2)  // every atext symbol
            case 6: return pick(["SRS0x", "srs2=", "xSRS0=", "SRS", "srs1"]) + word(4)  // look-alikes, not SRS
            default: return word(30 + Int(random.next() % 20))  // long
            }
        }
        func domain(_ long: Bool) -> String {
            let labels = long ? 8 + Int(random.next() % 5) : 1 + Int(random.next() % 3)
            let parts = (0..<labels).map { _ in
                word(
                    long ? 10 + Int(random.next() % 11) : 2 + Int(random.next() % 8),
                    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"
                )
                .trimmingCharacters(in: CharacterSet(charactersIn: "-")) + "x"
            }
            return parts.joined(separator: ".") + "." + pick(["example", "ORG", "Co.Uk", "test"])
        }
        return (0..<count).map { index in localPart(index % 8) + "@" + domain(index % 5 == 4) }
    }

    // MARK: Mail::SRS

    struct PerlRequest {
        var forward: Bool
        var now: Int
        var secrets: [String]
        var address: String
        var alias = ""
        var maxAge = 21
    }

    /// Mail::SRS's answers, one per request, in order: the address, or nil with its error message.
    static func mailSRS(_ requests: [PerlRequest]) throws -> [(address: String?, message: String)] {
        var input = ""
        for request in requests {
            input +=
                [
                    request.forward ? "forward" : "reverse", "\(request.now)", "\(request.maxAge)",
                    request.secrets.joined(separator: "\u{1f}"), request.address, request.alias,
                ].joined(separator: "\t") + "\n"
        }
        let output = try Tools.run(
            "/usr/bin/perl", [Tools.interopScripts.appendingPathComponent("mailsrs_batch.pl").path],
            stdin: Data(input.utf8),
            timeout: 120)
        try #require(output.status == 0, "mailsrs_batch.pl: \(output.stderr)")
        let lines = output.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        try #require(
            lines.count == requests.count, "\(lines.count) answers for \(requests.count) requests: \(output.stderr)")
        return lines.map { line in
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            return fields[0] == "OK" ? (fields[1], fields.count > 2 ? fields[2] : "") : (nil, fields[1])
        }
    }

    static func signetReverse(_ scheme: SRSScheme, _ address: String, now: Int) -> String? {
        try? scheme.reverse(address, now: now)
    }

    @Test("Mail::SRS: ≥200 generated addresses forward identically and reverse both ways, SRS0 and SRS1")
    func mailSRSBothWays() throws {
        let senders = Self.addresses(count: 240, seed: 0x5352_5330)
        let signet = Self.scheme([Self.secret])
        let firstHop = Self.scheme([Self.firstHopSecret])
        // First hops made elsewhere: SRS0 at first.example, then SRS1 at fwd2.example (for SRS1-of-SRS1).
        let srs0Elsewhere = try senders.map { try firstHop.forward($0, domain: "first.example", now: Self.now) }
        let srs1Elsewhere = try srs0Elsewhere.map { try firstHop.forward($0, domain: "fwd2.example", now: Self.now) }
        let inputs = senders + srs0Elsewhere + srs1Elsewhere

        let mine = try inputs.map { try signet.forward($0, domain: Self.domain, now: Self.now) }
        let theirs = try Self.mailSRS(
            inputs.map {
                PerlRequest(forward: true, now: Self.now, secrets: [Self.secret], address: $0, alias: Self.domain)
            })
        var srs1Count = 0
        for (index, input) in inputs.enumerated() {
            #expect(
                theirs[index].address == mine[index],
                "forward <\(input)>: Mail::SRS \(theirs[index]) Signet \(mine[index])")
            if mine[index].hasPrefix("SRS1=") { srs1Count += 1 }
        }
        #expect(srs1Count == 2 * senders.count)

        // Each reverses the other's output (here identical, but each side parses on its own).
        // SRS0 reverses to the sender; SRS1 (of an SRS0 or of an SRS1) to the first hop's SRS0, which that hop reverses.
        let expectedOriginal = senders + srs0Elsewhere + srs0Elsewhere
        let reversedByPerl = try Self.mailSRS(
            mine.map { PerlRequest(forward: false, now: Self.now + 3 * Self.day, secrets: [Self.secret], address: $0) })
        for (index, address) in mine.enumerated() {
            let expected = expectedOriginal[index]
            #expect(
                reversedByPerl[index].address == expected, "Mail::SRS reverse <\(address)>: \(reversedByPerl[index])")
            let perlMade = theirs[index].address ?? ""
            #expect(
                Self.signetReverse(signet, perlMade, now: Self.now + 3 * Self.day) == expected,
                "Signet reverse <\(perlMade)>")
        }
        // The whole way back: the first hop reverses what our SRS1 reversed to.
        for index in 0..<senders.count {
            let back = Self.signetReverse(signet, mine[senders.count + index], now: Self.now)!
            #expect(Self.signetReverse(firstHop, back, now: Self.now) == senders[index])
        }
    }

    @Test("Mail::SRS and Signet accept and reject the same addresses: expiry, future, wrong hash, case, rotation")
    func sameVerdicts() throws {
        let senders = Self.addresses(count: 48, seed: 0x5352_5331)
        let signet = Self.scheme([Self.secret])
        let old = Self.scheme([Self.oldSecret])
        var cases: [(secrets: [String], address: String, now: Int, label: String)] = []
        for sender in senders {
            let address = try signet.forward(sender, domain: Self.domain, now: Self.now)
            let srs1 = try signet.forward(
                try old.forward(sender, domain: "first.example", now: Self.now), domain: Self.domain, now: Self.now)
            let parts = address.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false)
            let hash = String(parts[1])
            let rest = "=" + parts[2]
            func withHash(_ newHash: String) -> String { "SRS0=" + newHash + rest }
            let flipped = String(hash.prefix(3)) + (hash.last?.lowercased() == "a" ? "B" : "A")
            let swapped = String(hash.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) })
            for (days, label) in [
                (0, "today"), (21, "21 days"), (22, "22 days"), (-1, "tomorrow's"), (-30, "a month ahead"),
                (1024, "a cycle later"), (1024 + 21, "cycle + 21"), (1024 + 22, "cycle + 22"), (400, "400 days"),
            ] {
                cases.append(([Self.secret], address, Self.now + days * Self.day, "timestamp \(label)"))
            }
            cases.append(([Self.secret], withHash(flipped), Self.now, "wrong hash"))
            cases.append(([Self.secret], withHash(swapped), Self.now, "hash case swapped"))
            cases.append(([Self.secret], address.lowercased(), Self.now, "address lower-cased"))
            cases.append(([Self.secret], address.uppercased(), Self.now, "address upper-cased"))
            cases.append(([Self.secret], withHash(String(hash.prefix(3))), Self.now, "3-character hash"))
            cases.append(([Self.secret], withHash(""), Self.now, "empty hash"))
            cases.append(([Self.oldSecret], address, Self.now, "other secret"))
            cases.append(([Self.oldSecret, Self.secret], address, Self.now, "rotated: old secret still listed"))
            cases.append(([Self.secret, Self.oldSecret], srs1, Self.now, "SRS1, second secret"))
            cases.append(([Self.oldSecret], srs1, Self.now, "SRS1, retired secret"))
            cases.append(
                ([Self.secret], srs1.replacingOccurrences(of: "SRS1=", with: "SRS1=x"), Self.now, "SRS1 wrong hash"))
            cases.append(([Self.secret], srs1.lowercased(), Self.now, "SRS1 lower-cased"))
        }
        let perl = try Self.mailSRS(
            cases.map { PerlRequest(forward: false, now: $0.now, secrets: $0.secrets, address: $0.address) })
        var accepted = 0
        var rejected = 0
        for (index, test) in cases.enumerated() {
            let ours = Self.signetReverse(Self.scheme(test.secrets), test.address, now: test.now)
            #expect(
                ours == perl[index].address,
                "\(test.label) <\(test.address)>: Mail::SRS \(perl[index]), Signet \(ours ?? "refused")")
            if ours == nil { rejected += 1 } else { accepted += 1 }
        }
        #expect(accepted > 400 && rejected > 400, "accepted \(accepted), rejected \(rejected)")
        // And the reasons are the typed ones.
        let address = try signet.forward(senders[0], domain: Self.domain, now: Self.now)
        #expect(throws: SRSError.expired(address: address, ageDays: 22, maximumAgeDays: 21)) {
            try signet.reverse(address, now: Self.now + 22 * Self.day)
        }
        #expect(throws: SRSError.futureTimestamp(address: address, daysAhead: 1)) {
            try signet.reverse(address, now: Self.now - Self.day)
        }
        #expect(throws: SRSError.invalidHash(address: address)) { try old.reverse(address, now: Self.now) }
    }

    // MARK: postsrsd

    final class PostSRSd {
        let pid: pid_t
        let forwardPort: Int
        let reversePort: Int

        /// postsrsd daemonized (-D) with a pid file. Run in the foreground it would close every inherited
        /// descriptor, Foundation's child monitor included, and Foundation's single monitor queue would then block
        /// in waitpid for it, so that no other child's exit (postmap, swaks) would ever be noticed.
        init(secrets: [String], domain: String, dir: URL) throws {
            let file = dir.appendingPathComponent("postsrsd.secret")
            try (secrets.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
            let pidFile = dir.appendingPathComponent("postsrsd.pid")
            forwardPort = RelayEndToEndTests.freePort()
            reversePort = forwardPort + 1
            let started = try Tools.run(
                "/usr/sbin/postsrsd",
                [
                    "-s", file.path, "-d", domain, "-l", "127.0.0.1", "-f", "\(forwardPort)", "-r", "\(reversePort)",
                    "-4", "-D",
                    "-p", pidFile.path,
                ],
                timeout: 30)
            try #require(started.status == 0, "postsrsd: \(started.stderr)")
            try RelayEndToEndTests.waitForPort(forwardPort)
            try RelayEndToEndTests.waitForPort(reversePort)
            // The daemon writes its pid after it has bound the ports: wait (bounded) for it.
            var text = ""
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                text = (try? String(contentsOf: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                if !text.isEmpty { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            pid = try #require(pid_t(text), "postsrsd pid file: '\(text)'")
        }

        /// It keeps no state worth a clean exit.
        func stop() {
            kill(pid, SIGKILL)
        }

        /// Look-ups over one tcp_table connection: the value for 200, nil for 500 (with the reason dropped).
        static func lookup(_ keys: [String], port: Int) throws -> [String?] {
            let client = try WireClient(port: port, timeout: 20)
            return try keys.map { key in
                try client.send("get " + percentEncoded(key) + "\n")
                // A tcp_table reply is one "code text" line, which WireClient reads like an SMTP reply.
                let reply = try client.reply()
                guard reply.code == 200 else { return nil }
                return percentDecoded(String(reply.text.dropFirst(4)))
            }
        }

        static func percentEncoded(_ text: String) -> String {
            text.utf8.map { byte in
                byte <= 0x20 || byte >= 0x7f || byte == UInt8(ascii: "%")
                    ? String(format: "%%%02X", byte) : String(UnicodeScalar(byte))
            }.joined()
        }

        static func percentDecoded(_ text: String) -> String {
            var bytes: [UInt8] = []
            var index = text.utf8.startIndex
            let utf8 = text.utf8
            while index < utf8.endIndex {
                if utf8[index] == UInt8(ascii: "%"), let end = utf8.index(index, offsetBy: 3, limitedBy: utf8.endIndex),
                    let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 16)
                {
                    bytes.append(value)
                    index = end
                } else {
                    bytes.append(utf8[index])
                    index = utf8.index(after: index)
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @Test("postsrsd 1.x: ≥200 generated addresses forward identically and reverse both ways, SRS0 and SRS1, rotation")
    func postsrsdBothWays() throws {
        let dir = try Tools.makeTemporaryDirectory("srs-postsrsd")
        defer { try? FileManager.default.removeItem(at: dir) }
        let daemon = try PostSRSd(secrets: [Self.secret, Self.oldSecret], domain: Self.domain, dir: dir)
        defer { daemon.stop() }
        // postsrsd uses the real clock; so does this test (a change of UTC day in between is not expected).
        let now = Int(Date().timeIntervalSince1970)
        let senders = Self.addresses(count: 220, seed: 0x5352_5332)
        let signet = Self.scheme([Self.secret, Self.oldSecret])
        let firstHop = Self.scheme([Self.firstHopSecret])
        let srs0Elsewhere = try senders.prefix(60).map { try firstHop.forward($0, domain: "first.example", now: now) }
        let inputs = senders + srs0Elsewhere

        let theirs = try PostSRSd.lookup(inputs, port: daemon.forwardPort)
        let mine = try inputs.map { try signet.forward($0, domain: Self.domain, now: now) }
        for (index, input) in inputs.enumerated() {
            #expect(
                theirs[index] == mine[index],
                "forward <\(input)>: postsrsd \(theirs[index] ?? "500"), Signet \(mine[index])")
        }
        let expected = senders + srs0Elsewhere.map { $0 }
        let reversedByPostsrsd = try PostSRSd.lookup(mine, port: daemon.reversePort)
        for (index, address) in mine.enumerated() {
            let want = index < senders.count ? expected[index] : srs0Elsewhere[index - senders.count]
            #expect(
                reversedByPostsrsd[index] == want,
                "postsrsd reverse <\(address)>: \(reversedByPostsrsd[index] ?? "500")")
            if let made = theirs[index] {
                #expect(Self.signetReverse(signet, made, now: now) == want, "Signet reverse <\(made)>")
            }
        }

        // Verdicts: each made by Signet (old secret, expired, forged, case-smashed), judged by postsrsd and Signet.
        let old = Self.scheme([Self.oldSecret])
        let retired = Self.scheme(["test-srs-retired-\(UUID().uuidString)"])
        var cases: [(address: String, accept: Bool, label: String)] = []
        for sender in senders.prefix(40) {
            let fresh = try signet.forward(sender, domain: Self.domain, now: now)
            cases.append((fresh, true, "fresh"))
            cases.append((try old.forward(sender, domain: Self.domain, now: now), true, "second secret"))
            cases.append((try retired.forward(sender, domain: Self.domain, now: now), false, "retired secret"))
            cases.append(
                (try signet.forward(sender, domain: Self.domain, now: now - 21 * Self.day), true, "21 days old"))
            cases.append(
                (try signet.forward(sender, domain: Self.domain, now: now - 22 * Self.day), false, "22 days old"))
            cases.append((try signet.forward(sender, domain: Self.domain, now: now + 2 * Self.day), false, "future"))
            let parts = fresh.split(separator: "=", maxSplits: 2, omittingEmptySubsequences: false)
            let hash = String(parts[1])
            let swapped = String(hash.map { $0.isUppercase ? Character($0.lowercased()) : Character($0.uppercased()) })
            cases.append(("SRS0=" + swapped + "=" + parts[2], true, "hash case swapped"))
            let flipped = String(hash.prefix(3)) + (hash.last?.lowercased() == "a" ? "B" : "A")
            cases.append(("SRS0=" + flipped + "=" + parts[2], false, "wrong hash"))
        }
        let verdicts = try PostSRSd.lookup(cases.map(\.address), port: daemon.reversePort)
        for (index, test) in cases.enumerated() {
            let ours = Self.signetReverse(signet, test.address, now: now)
            #expect(
                (verdicts[index] != nil) == test.accept,
                "postsrsd, \(test.label) <\(test.address)>: \(verdicts[index] ?? "500")")
            #expect((ours != nil) == test.accept, "Signet, \(test.label) <\(test.address)>")
            #expect(
                ours == verdicts[index],
                "\(test.label): postsrsd \(verdicts[index] ?? "500"), Signet \(ours ?? "refused")")
        }
    }

    // MARK: signet srs serve, queried by Postfix itself

    @Test("signet srs serve answers postmap -q over socketmap and tcp_table; postsrsd's addresses reverse there")
    func serveWithPostmap() throws {
        let dir = try Tools.makeTemporaryDirectory("srs-serve")
        defer { try? FileManager.default.removeItem(at: dir) }
        let secrets = dir.appendingPathComponent("secrets")
        try "\(Self.secret)\n\(Self.oldSecret)\n".write(to: secrets, atomically: true, encoding: .utf8)
        // postmap needs a configuration directory; an empty main.cf is a valid one.
        let postfixConfig = dir.appendingPathComponent("postfix")
        try FileManager.default.createDirectory(at: postfixConfig, withIntermediateDirectories: true)
        try "".write(to: postfixConfig.appendingPathComponent("main.cf"), atomically: true, encoding: .utf8)
        let port = RelayEndToEndTests.freePort()
        let serve = try RelayEndToEndTests.Running(
            try Tools.signet,
            [
                "srs", "serve", "--secrets-file", secrets.path, "--domain", Self.domain, "--local-domain",
                ".local.example",
                "--socketmap", "127.0.0.1:\(port)", "--tcp-forward", "127.0.0.1:\(port + 1)", "--tcp-reverse",
                "127.0.0.1:\(port + 2)",
            ],
            log: dir.appendingPathComponent("serve.log"))
        defer { serve.stop() }
        try RelayEndToEndTests.waitForPort(port)
        try RelayEndToEndTests.waitForPort(port + 2)
        let daemon = try PostSRSd(secrets: [Self.secret], domain: Self.domain, dir: dir)
        defer { daemon.stop() }

        func postmap(_ key: String, _ table: String) throws -> String? {
            // -f: postmap would otherwise fold the key to lower case, and SRS keeps the sender's case.
            let output = try Tools.run(
                "/usr/sbin/postmap", ["-c", postfixConfig.path, "-f", "-q", key, table], timeout: 30)
            return output.status == 0 ? output.text.trimmingCharacters(in: .newlines) : nil
        }
        let now = Int(Date().timeIntervalSince1970)
        let signet = Self.scheme([Self.secret])
        for sender in Self.addresses(count: 16, seed: 0x5352_5333) {
            let expected = try signet.forward(sender, domain: Self.domain, now: now)
            let forwarded = try postmap(sender, "socketmap:inet:127.0.0.1:\(port):forward")
            let limit = expected.split(separator: "@").dropLast().joined(separator: "@").utf8.count
            if limit > 64 {
                #expect(forwarded == nil, "too long must not be found (pass): <\(sender)>")  // --too-long pass
                continue
            }
            #expect(forwarded == expected, "socketmap forward <\(sender)>\n\(serve.output)")
            #expect(try postmap(sender, "tcp:127.0.0.1:\(port + 1)") == expected, "tcp forward <\(sender)>")
            #expect(try postmap(expected, "socketmap:inet:127.0.0.1:\(port):reverse") == sender)
            #expect(try postmap(expected, "tcp:127.0.0.1:\(port + 2)") == sender)
            let fromPostsrsd = try PostSRSd.lookup([sender], port: daemon.forwardPort)[0]!
            #expect(
                try postmap(fromPostsrsd, "socketmap:inet:127.0.0.1:\(port):reverse") == sender, "<\(fromPostsrsd)>")
        }
        #expect(try postmap("someone@local.example", "socketmap:inet:127.0.0.1:\(port):forward") != nil)
        #expect(try postmap("someone@sub.local.example", "socketmap:inet:127.0.0.1:\(port):forward") == nil)
        #expect(try postmap("bob@fwd.example", "socketmap:inet:127.0.0.1:\(port):forward") == nil)
        #expect(try postmap("plain@fwd.example", "socketmap:inet:127.0.0.1:\(port):reverse") == nil)
        #expect(
            try postmap("SRS0=AAAA=AA=orig.example=x@fwd.example", "socketmap:inet:127.0.0.1:\(port):reverse") == nil)
        #expect(try postmap("SRS0=AAAA=AA=orig.example=x@fwd.example", "tcp:127.0.0.1:\(port + 2)") == nil)
    }
}

/// SplitMix64 for this target's generated inputs (SRS addresses, SPF records); the other test targets have their
/// own copy (test targets share none).
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
