import Foundation
import MailAuth
import Testing

/// Signet's SPF evaluator against pyspf 2.0.14 (Debian python3-spf, the implementation that ships the openspf
/// suite), both answering from the same zone: pyspf's DNS function is replaced by one reading the zone's JSON
/// (Tests/Interop/pyspf_check.py). Hand-written cases, then records generated from a fixed seed.
@Suite("SPF interop: pyspf")
struct SPFInteropTests {
    static let zoneText = """
        ; addresses the records name
        host1.example.com A 192.0.2.10
        host1.example.com AAAA 2001:db8::10
        host2.example.com A 198.51.100.20
        host2.example.com AAAA 2001:db8:1::20
        mx.example.com A 192.0.2.30
        mx.example.com A 203.0.113.30
        mx.example.com AAAA 2001:db8:2::30
        ; MX for the generated domains and a named one
        mxs.example.com MX 10 mx.example.com
        mxs.example.com MX 20 host2.example.com
        ; PTR for the clients, one of which does not validate
        10.2.0.192.in-addr.arpa PTR host1.example.com
        20.100.51.198.in-addr.arpa PTR host2.example.com
        20.100.51.198.in-addr.arpa PTR liar.example.net
        5.113.0.203.in-addr.arpa PTR nowhere.example.org
        0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa PTR host1.example.com
        ; included and redirected policies
        inc1.example.com TXT "v=spf1 ip4:203.0.113.0/24 -all"
        inc2.example.com TXT "v=spf1 a:host2.example.com ~all"
        inc3.example.com TXT "v=spf1 include:inc1.example.com ?all"
        red.example.com TXT "v=spf1 mx:mxs.example.com -all exp=exp.example.com"
        noexp.example.com TXT "v=spf1 -all"
        exp.example.com TXT "%{c} is not one of %{d}'s senders (%{L} from %{h} via %{i})"
        ; macro targets
        192.0.2.10.bl.example.com A 127.0.0.2
        user.users.example.com A 127.0.0.2
        alias.example.com CNAME host1.example.com
        slow.example.com TIMEOUT
        ; hand-written cases
        c1.example.com TXT "v=spf1 a:host1.example.com/24 -all"
        c2.example.com TXT "v=spf1 mx:mxs.example.com//48 ~all"
        c3.example.com TXT "v=spf1 ptr:example.com -all"
        c4.example.com TXT "v=spf1 exists:%{i}.bl.example.com -all"
        c5.example.com TXT "v=spf1 include:inc3.example.com -all"
        c6.example.com TXT "v=spf1 redirect=red.example.com"
        c7.example.com TXT "v=spf1 -all exp=exp.example.com"
        c8.example.com TXT "v=spf1 a:alias.example.com -all"
        c9.example.com TXT "v=spf1 a:slow.example.com -all"
        c10.example.com TXT "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/64 ?all"
        c11.example.com TXT "v=spf1 a:nx1.example.com a:nx2.example.com a:nx3.example.com +all"
        c12.example.com TXT "v=spf1 include:nx.example.com -all"
        c13.example.com TXT "v=spf1 exists:%{l}.users.%{d2} -all"
        c14.example.com TXT "v=spf1 ip4:192.0.2.10 bogus:x -all"
        c15.example.com TXT "v=spf1 -ip4:198.51.100.0/24 redirect=inc2.example.com"
        c16.example.com TXT "v=spf1 ~all exp=exp.example.com"
        c17.example.com TXT "v=spf1 a/24//32 -all"
        c17.example.com A 192.0.2.99
        c17.example.com AAAA 2001:db8:ffff::1
        c18.example.com TXT "v=spf1 mx -all"
        c18.example.com MX 5 host2.example.com
        c19.example.com TXT "v=spf1 include:c19.example.com -all"
        c20.example.com TXT "v=spf1 ptr -all"
        c21.example.com TXT "v=spf1 -all"
        c21.example.com TXT "v=spf1 +all"
        c22.example.com TXT "not spf"
        """

    static let clients = [
        "192.0.2.10", "198.51.100.20", "203.0.113.5", "2001:db8::10", "2001:db8:1::20", "::ffff:192.0.2.10",
    ]

    /// Terms the generated records are built from: every mechanism, qualifiers, macros, CIDR lengths.
    static let terms = [
        "ip4:192.0.2.0/24", "ip4:198.51.100.20", "ip6:2001:db8::/48", "ip6:2001:db8:1::/64", "a", "a/24",
        "a:host1.example.com", "a:host2.example.com//64", "a:host2.example.com/16", "mx:mxs.example.com",
        "mx:mxs.example.com/28", "ptr", "ptr:example.com", "ptr:host2.example.com", "exists:%{i}.bl.example.com",
        "exists:%{l}.users.example.com", "include:inc1.example.com", "include:inc2.example.com",
        "include:inc3.example.com", "a:missing.example.com", "a:alias.example.com", "exists:%{ir}.%{v}.example.com",
    ]
    static let qualifiers = ["", "", "+", "-", "~", "?"]
    static let endings = ["", "-all", "~all", "?all", "redirect=red.example.com", "redirect=noexp.example.com"]

    @Test func agreesWithPyspf() async throws {
        var zone = try StaticZone(parsing: Self.zoneText)
        var cases: [(id: String, ip: String, mailFrom: String, helo: String)] = []
        for number in 1...22 {
            for client in Self.clients {
                cases.append(("c\(number)-\(client)", client, "user@c\(number).example.com", "helo.example.com"))
            }
        }
        var random = SeededRandom(seed: 7208)  // the same records on every run
        for number in 0..<250 {
            let count = 1 + Int(random.next() % 5)
            var record = ["v=spf1"]
            for _ in 0..<count {
                record.append(
                    Self.qualifiers[Int(random.next() % 6)] + Self.terms[Int(random.next() % UInt64(Self.terms.count))])
            }
            record.append(Self.endings[Int(random.next() % UInt64(Self.endings.count))])
            if random.next() % 3 == 0 { record.append("exp=exp.example.com") }
            let domain = "g\(number).example.com"
            zone.addTXT(domain, record.filter { !$0.isEmpty }.joined(separator: " "))
            zone.add(domain) { $0.a.append(IPAddress("192.0.2.\(10 + random.next() % 3)")!) }
            let client = Self.clients[Int(random.next() % UInt64(Self.clients.count))]
            cases.append(("g\(number)", client, "user@\(domain)", "helo.example.com"))
        }

        let directory = try Tools.makeTemporaryDirectory("spf")
        defer { try? FileManager.default.removeItem(at: directory) }
        let zoneFile = directory.appendingPathComponent("zone.json")
        try JSONSerialization.data(withJSONObject: Self.json(zone), options: [.sortedKeys]).write(to: zoneFile)
        let input = cases.map { "\($0.id)\t\($0.ip)\t\($0.mailFrom)\t\($0.helo)" }.joined(separator: "\n")
        guard FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/spf.py") else {
            Issue.record("pyspf is missing: install the Debian package python3-spf (scripts/install-deps.sh)")
            return
        }
        let output = try Tools.run(
            "/usr/bin/python3", [Tools.interopScripts.appendingPathComponent("pyspf_check.py").path, zoneFile.path],
            stdin: Data(input.utf8))
        try #require(output.status == 0, "pyspf_check.py failed: \(output.stderr)")
        var theirs: [String: (result: String, explanation: String)] = [:]
        for line in output.text.split(separator: "\n") {
            let parts = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            if parts.count >= 3 { theirs[parts[0]] = (parts[1], parts[2]) }
        }

        let verifier = SPFVerifier(resolver: zone)
        var agreed = 0
        var counts: [String: Int] = [:]
        for testCase in cases {
            let ip = try #require(IPAddress(testCase.ip))
            let result = await verifier.checkMailFrom(clientIP: ip, mailFrom: testCase.mailFrom, helo: testCase.helo)
            guard let other = theirs[testCase.id] else {
                Issue.record("pyspf gave no answer for \(testCase.id)")
                continue
            }
            counts[result.status.rawValue, default: 0] += 1
            var same = other.result == result.status.rawValue
            // pyspf fills in a default text; compare only what an exp= record supplied.
            if same, let explanation = result.explanation { same = other.explanation == explanation }
            if same {
                agreed += 1
            } else {
                Issue.record(
                    "\(testCase.id) (\(testCase.ip)): pyspf \(other.result) '\(other.explanation)', Signet \(result) '\(result.explanation ?? "")'"
                )
            }
        }
        print(
            "SPF interop with pyspf: \(agreed)/\(cases.count) agree; Signet's results: \(counts.sorted { $0.key < $1.key })"
        )
        #expect(agreed == cases.count)
        // The sample must exercise more than one outcome to mean anything.
        #expect(counts.count >= 5)
    }

    /// The zone in the JSON shape pyspf_check.py reads.
    static func json(_ zone: StaticZone) -> [String: Any] {
        var out: [String: Any] = [:]
        for (name, entry) in zone.entries {
            out[name] =
                [
                    "txt": entry.txt, "a": entry.a.map(\.description), "aaaa": entry.aaaa.map(\.description),
                    "mx": entry.mx.map { [Int($0.preference), $0.exchange] as [Any] }, "ptr": entry.ptr,
                    "cname": entry.cname.map { $0 as Any } ?? NSNull(), "failure": entry.failure != nil,
                    "failureWhenEmpty": entry.failureWhenEmpty != nil,
                ] as [String: Any]
        }
        return out
    }
}
