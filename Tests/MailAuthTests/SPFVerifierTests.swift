import MailAuth
import Testing

/// SPF evaluation beyond the openspf suite: RFC 7208's macro examples, bad records, limits and the result type.
@Suite struct SPFVerifierTests {
    static let client = IPAddress("192.0.2.3")!

    func check(
        _ zoneText: String, ip: IPAddress = client, mailFrom: String = "strong-bad@email.example.com",
        helo: String = "mx.example.org"
    ) async throws -> SPFResult {
        let zone = try StaticZone(parsing: zoneText)
        return await SPFVerifier(resolver: zone, now: { 1_700_000_000 }).checkMailFrom(
            clientIP: ip, mailFrom: mailFrom, helo: helo)
    }

    /// RFC 7208 §7.4's examples, each checked by an `exists` that only the expected expansion satisfies.
    @Test(arguments: [
        ("%{s}", "strong-bad@email.example.com"),
        ("%{o}", "email.example.com"),
        ("%{d}", "email.example.com"),
        ("%{d4}", "email.example.com"),
        ("%{d3}", "email.example.com"),
        ("%{d2}", "example.com"),
        ("%{d1}", "com"),
        ("%{dr}", "com.example.email"),
        ("%{d2r}", "example.email"),
        ("%{l}", "strong-bad"),
        ("%{l-}", "strong.bad"),
        ("%{lr}", "strong-bad"),
        ("%{lr-}", "bad.strong"),
        ("%{l1r-}", "strong"),
        ("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"),
        ("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"),
        ("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"),
        ("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com"),
        ("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net"),
        ("%{h}.%{i}.x%%y%-w", "mx.example.org.192.0.2.3.x%y%20w"),
        ("%{L}.url.%{d2}", "strong-bad.url.example.com"),
    ])
    func rfcMacroExamples(macro: String, expansion: String) async throws {
        let zone = """
            email.example.com TXT "v=spf1 exists:\(macro).example -all"
            \(expansion).example A 127.0.0.2
            """
        let result = try await check(zone)
        #expect(result.status == .pass, "\(macro) → \(result)")
    }

    @Test func ipv6MacroUsesDottedNibbles() async throws {
        let zone = """
            email.example.com TXT "v=spf1 exists:%{ir}.%{v}._spf.%{d2} -all"
            1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com A 127.0.0.2
            """
        #expect(try await check(zone, ip: IPAddress("2001:db8::cb01")!).status == .pass)
    }

    @Test func urlEscapingOfUpperCaseMacros() async throws {
        let zone = """
            email.example.com TXT "v=spf1 -all exp=why.example.com"
            why.example.com TXT "see %{L} %{S} from %{c} at %{t} via %{r}"
            """
        let result = try await check(zone, mailFrom: "a b&c=d/é@email.example.com")
        #expect(result.status == .fail)
        #expect(
            result.explanation
                == "see a%20b%26c%3Dd%2F%C3%A9 a%20b%26c%3Dd%2F%C3%A9%40email.example.com from 192.0.2.3 at 1700000000 via unknown"
        )
    }

    /// Malformed records give permerror with a reason that names the problem, never a crash.
    @Test(arguments: [
        ("v=spf1 foo -all", "not a mechanism"),
        ("v=spf1 ip4:300.1.1.1", "not an IPv4 address"),
        ("v=spf1 ip4:", "not an IPv4 address"),
        ("v=spf1 ip6:192.0.2.1", "not an IPv6 address"),
        ("v=spf1 ip4:192.0.2.0/33", "bad prefix length"),
        ("v=spf1 ip4:192.0.2.0/024", "bad prefix length"),
        ("v=spf1 ip6:2001:db8::/129", "bad prefix length"),
        ("v=spf1 a/33", "bad prefix length"),
        ("v=spf1 a//129", "bad prefix length"),
        ("v=spf1 a/24/64", "bad prefix length"),
        ("v=spf1 a/x", "not a mechanism"),
        ("v=spf1 mx/", "bad prefix length"),
        ("v=spf1 a:%{x}.example.com", "unknown macro letter"),
        ("v=spf1 a:%{c}.example.com", "unknown macro letter"),
        ("v=spf1 exists:%{d0}.example.com", "zero parts"),
        ("v=spf1 exists:%{d2q}.example.com", "macro delimiter"),
        ("v=spf1 exists:%{d", "without '}'"),
        ("v=spf1 exists:a%", "lone '%'"),
        ("v=spf1 exists:%(ir).example.com", "'%' followed by"),
        ("v=spf1 exists:%{}.example.com", "without a letter"),
        ("v=spf1 redirect=a.example redirect=b.example", "'redirect' appears twice"),
        ("v=spf1 exp=a.example exp=b.example -all", "'exp' appears twice"),
        ("v=spf1 redirect=", "empty domain"),
        ("v=spf1 include", "needs ':'"),
        ("v=spf1 include:", "empty domain"),
        ("v=spf1 a:example.com:8080", "top-level label"),
        ("v=spf1 a:192.0.2.1", "top-level label"),
        ("v=spf1 ptr/24", "no prefix length"),
        ("v=spf1 -all.", "not a mechanism"),
        ("v=spf1 all:x", "takes no argument"),
        ("v=spf1 ip4:192.0.2.1\t-all", "not printable ASCII"),
        ("v=spf1 bad/name=x", "not a mechanism"),
        ("v=spf1 unknown=%{z}", "unknown macro letter"),
    ])
    func malformedRecordIsPermerror(record: String, reason: String) async throws {
        var zone = StaticZone()
        zone.addTXT("email.example.com", record)
        let result = await SPFVerifier(resolver: zone).checkMailFrom(
            clientIP: Self.client, mailFrom: "x@email.example.com", helo: "h.example")
        #expect(result.status == .permerror)
        #expect(result.reason.contains(reason), "\(record): \(result.reason)")
    }

    @Test func unknownModifiersAreIgnored() async throws {
        let result = try await check(#"email.example.com TXT "v=spf1 foo=bar x-y.z=%{d2} ip4:192.0.2.0/24 -all""#)
        #expect(result.status == .pass)
        #expect(result.mechanism == "ip4:192.0.2.0/24")
    }

    @Test func selfIncludeIsStoppedByTheTermLimit() async throws {
        let result = try await check(#"email.example.com TXT "v=spf1 include:email.example.com -all""#)
        #expect(result.status == .permerror)
        #expect(result.reason.contains("more than 10 DNS-querying terms"))
    }

    @Test func redirectLoopIsStoppedByTheTermLimit() async throws {
        let result = try await check(
            """
            email.example.com TXT "v=spf1 redirect=b.example.com"
            b.example.com TXT "v=spf1 redirect=email.example.com"
            """)
        #expect(result.status == .permerror)
        #expect(result.reason.contains("more than 10"))
    }

    @Test func voidLookupLimit() async throws {
        let result = try await check(
            #"email.example.com TXT "v=spf1 a:n1.example.com mx:n2.example.com exists:n3.example.com -all""#)
        #expect(result.status == .permerror)
        #expect(result.reason.contains("found nothing"))
    }

    @Test func veryLongRecordsAreBounded() async throws {
        // 5000 address terms need no DNS and are simply evaluated; 5000 `a` terms stop at the eleventh.
        let addresses = (0..<5000).map { "ip4:10.\($0 / 256).\($0 % 256).1" }.joined(separator: " ")
        var zone = StaticZone()
        zone.addTXT("email.example.com", "v=spf1 \(addresses) ip4:192.0.2.3 -all")
        zone.addTXT("a.example.com", "v=spf1 " + String(repeating: "a ", count: 5000) + "-all")
        zone.add("a.example.com") { $0.a.append(IPAddress("198.51.100.1")!) }
        let verifier = SPFVerifier(resolver: zone)
        let long = await verifier.checkMailFrom(
            clientIP: Self.client, mailFrom: "x@email.example.com", helo: "h.example")
        #expect(long.status == .pass)
        let many = await verifier.checkMailFrom(clientIP: Self.client, mailFrom: "x@a.example.com", helo: "h.example")
        #expect(many.status == .permerror)
        #expect(many.reason.contains("more than 10"))
    }

    @Test func totalQueriesAreBoundedAcrossMXHosts() async throws {
        // 10 mx terms with 10 hosts each would be 110 questions; a ceiling of 50 stops it.
        var zone = StaticZone()
        zone.addTXT(
            "email.example.com", "v=spf1 " + (0..<10).map { "mx:m\($0).example.com" }.joined(separator: " ") + " -all")
        for term in 0..<10 {
            for host in 0..<10 {
                zone.add("m\(term).example.com") {
                    $0.mx.append(MXRecord(preference: UInt16(host), exchange: "h\(host).example.com"))
                }
            }
        }
        for host in 0..<10 { zone.add("h\(host).example.com") { $0.a.append(IPAddress("198.51.100.\(host)")!) } }
        var limits = SPFVerifier.Limits()
        limits.totalQueries = 50
        let result = await SPFVerifier(resolver: zone, limits: limits).checkMailFrom(
            clientIP: Self.client, mailFrom: "x@email.example.com", helo: "h.example")
        #expect(result.status == .permerror)
        #expect(result.reason.contains("more than 50 DNS questions"))
        let unlimited = await SPFVerifier(resolver: zone).checkMailFrom(
            clientIP: Self.client, mailFrom: "x@email.example.com", helo: "h.example")
        #expect(unlimited.status == .fail)
    }

    @Test func ipv4MappedClientIsCheckedAsIPv4() async throws {
        let result = try await check(
            #"email.example.com TXT "v=spf1 ip4:192.0.2.0/24 -all""#, ip: IPAddress("::ffff:192.0.2.3")!)
        #expect(result.status == .pass)
        #expect(result.clientIP == Self.client)
    }

    @Test func dualCIDRLengths() async throws {
        let zone = """
            email.example.com TXT "v=spf1 a:host.example.com/24//48 -all"
            host.example.com A 192.0.2.200
            host.example.com AAAA 2001:db8:1:ffff::1
            """
        #expect(try await check(zone).status == .pass)
        #expect(try await check(zone, ip: IPAddress("192.0.3.3")!).status == .fail)
        #expect(try await check(zone, ip: IPAddress("2001:db8:1::9")!).status == .pass)
        #expect(try await check(zone, ip: IPAddress("2001:db8:2::9")!).status == .fail)
    }

    @Test func dnsFailureIsTemperror() async throws {
        let top = try await check("email.example.com TIMEOUT")
        #expect(top.status == .temperror)
        #expect(top.reason.contains("timed out"))
        let inner = try await check(
            """
            email.example.com TXT "v=spf1 a:slow.example.com -all"
            slow.example.com SERVFAIL
            """)
        #expect(inner.status == .temperror)
        #expect(inner.reason.contains("slow.example.com"))
    }

    @Test func cancelledCheckIsTemperror() async throws {
        let zone = try StaticZone(parsing: #"email.example.com TXT "v=spf1 -all""#)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await SPFVerifier(resolver: zone).checkMailFrom(
                clientIP: Self.client, mailFrom: "x@email.example.com", helo: "h.example")
        }
        let result = await task.value
        #expect(result.status == .temperror)
        #expect(result.reason.contains("cancelled"))
    }

    @Test func heloIdentityAndNullSender() async throws {
        let zone = try StaticZone(parsing: #"mx.example.org TXT "v=spf1 ip4:192.0.2.3 -all""#)
        let verifier = SPFVerifier(resolver: zone)
        let helo = await verifier.checkHELO(clientIP: Self.client, helo: "mx.example.org")
        #expect(helo.status == .pass)
        #expect(helo.identity == .helo)
        #expect(helo.sender == "postmaster@mx.example.org")
        let null = await verifier.checkMailFrom(clientIP: Self.client, mailFrom: "", helo: "mx.example.org")
        #expect(null.status == .pass)
        #expect(null.identity == .mailfrom)
        #expect(null.domain == "mx.example.org")
        let bare = await verifier.checkMailFrom(clientIP: Self.client, mailFrom: "<>", helo: "mx.example.org")
        #expect(bare.status == .pass)
    }

    @Test func resultDescription() async throws {
        let result = try await check(#"email.example.com TXT "v=spf1 ip4:192.0.2.0/24 -all""#)
        #expect(
            result.description
                == "spf=pass smtp.mailfrom=email.example.com (email.example.com matched 'ip4:192.0.2.0/24')")
        let helo = await SPFVerifier(resolver: StaticZone()).checkHELO(clientIP: Self.client, helo: "h.example")
        #expect(helo.description == "spf=none smtp.helo=h.example (h.example has no SPF record)")
    }

    @Test func staticZoneFollowsCNAMEsAndReportsLoops() async throws {
        let zone = try StaticZone(
            parsing: """
                alias.example.com CNAME real.example.com.
                real.example.com A 192.0.2.9
                loop1.example.com CNAME loop2.example.com
                loop2.example.com CNAME loop1.example.com
                """)
        #expect(try await zone.a("alias.example.com") == .records([IPAddress("192.0.2.9")!]))
        #expect(try await zone.txt("alias.example.com") == .noData)
        await #expect(throws: DNSFailure.self) { try await zone.a("loop1.example.com") }
    }
}
