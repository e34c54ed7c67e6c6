import MailAuth
import Testing

@Suite struct StaticZoneTests {
    @Test func readsEveryRecordType() async throws {
        let zone = try StaticZone(
            parsing: """
                ; a test zone
                example.com. 300 IN TXT "v=spf1 " "ip4:192.0.2.0/24 -all"
                sel._domainkey.example.com TXT ( "v=DKIM1; k=rsa; "
                    "p=MIIB" )   # continued
                bare.example.com TXT v=DKIM1; p=abc
                example.com A 192.0.2.1
                example.com AAAA 2001:db8::1
                example.com MX 10 mx.example.com.
                1.2.0.192.in-addr.arpa PTR Example.COM.
                slow.example.com TIMEOUT
                broken.example.com SERVFAIL
                esc.example.com TXT "a\\"b\\059c"
                """
        )
        #expect(try await zone.txt("EXAMPLE.com.") == .records(["v=spf1 ip4:192.0.2.0/24 -all"]))
        #expect(try await zone.txt("sel._domainkey.example.com") == .records(["v=DKIM1; k=rsa; p=MIIB"]))
        #expect(try await zone.txt("bare.example.com") == .records(["v=DKIM1; p=abc"]))
        #expect(try await zone.txt("esc.example.com") == .records(["a\"b;c"]))
        #expect(try await zone.a("example.com") == .records([IPAddress("192.0.2.1")!]))
        #expect(try await zone.aaaa("example.com") == .records([IPAddress("2001:db8::1")!]))
        #expect(try await zone.mx("example.com") == .records([MXRecord(preference: 10, exchange: "mx.example.com")]))
        #expect(try await zone.ptr(IPAddress("192.0.2.1")!.reverseName) == .records(["example.com"]))
        #expect(try await zone.a("bare.example.com") == .noData)
        #expect(try await zone.txt("nowhere.example.com") == .nameError)
        await #expect(throws: DNSFailure(.timeout, name: "slow.example.com", detail: "static zone")) {
            try await zone.txt("slow.example.com")
        }
        await #expect(throws: DNSFailure.self) { try await zone.a("broken.example.com") }
        await #expect(throws: DNSFailure.self) { try await zone.txt("a..b") }
    }

    @Test func namesTheBadLine() {
        #expect(throws: StaticZone.ParseError.self) {
            try StaticZone(parsing: "ok.example TXT \"x\"\nbad.example A 300.1.1.1")
        }
        do {
            _ = try StaticZone(parsing: "ok.example TXT \"x\"\nbad.example A 300.1.1.1")
        } catch {
            #expect(error.line == 2)
        }
        #expect(throws: StaticZone.ParseError.self) { try StaticZone(parsing: "x.example TXT ( \"open\"") }
        #expect(throws: StaticZone.ParseError.self) { try StaticZone(parsing: "x.example NS y.example") }
    }

    @Test func addressesMatchByPrefix() throws {
        let address = try #require(IPAddress("192.0.2.77"))
        #expect(address.matches(IPAddress("192.0.2.0")!, prefixLength: 24))
        #expect(!address.matches(IPAddress("192.0.3.0")!, prefixLength: 24))
        #expect(address.matches(IPAddress("10.0.0.0")!, prefixLength: 0))
        #expect(!address.matches(IPAddress("::")!, prefixLength: 0))
        let v6 = try #require(IPAddress("2001:db8::1:2"))
        #expect(v6.matches(IPAddress("2001:db8::")!, prefixLength: 64))
        #expect(v6.description == "2001:db8::1:2")
        #expect(IPAddress("::ffff:192.0.2.1")!.unmapped == IPAddress("192.0.2.1"))
        #expect(IPAddress("2001:db8::1")!.reverseName.hasPrefix("1.0.0.0.0.0.0.0"))
        #expect(IPAddress("2001:db8::1")!.reverseName.hasSuffix("8.b.d.0.1.0.0.2.ip6.arpa"))
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPAddress(bytes: [192, 0, 2, 1]) == IPAddress("192.0.2.1"))
    }
}
