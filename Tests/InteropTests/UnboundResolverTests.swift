import Foundation
import MailAuth
import Testing

/// libunbound against a real authoritative server (NSD) on loopback: every record type the verifiers ask for,
/// the empty answers SPF counts as void lookups, and timeouts.
@Suite(.serialized) struct UnboundResolverTests {
    static let longKey = String(repeating: "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA", count: 8)

    static let zone = """
        $ORIGIN example.test.
        $TTL 300
        @ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
        @ IN NS ns.example.test.
        ns IN A 127.0.0.1
        @ IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
        @ IN A 192.0.2.10
        @ IN AAAA 2001:db8::10
        @ IN MX 10 mx1.example.test.
        @ IN MX 20 mx2.example.test.
        sel._domainkey IN TXT ( "v=DKIM1; k=rsa; p=\(longKey.prefix(200))" "\(longKey.dropFirst(200))" )
        _dmarc IN TXT "v=DMARC1; p=reject"
        onlya IN A 192.0.2.11

        """

    static let reverseZone = """
        $ORIGIN 2.0.192.in-addr.arpa.
        $TTL 300
        @ IN SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300
        @ IN NS ns.example.test.
        10 IN PTR example.test.

        """

    @Test func answersEveryRecordTypeFromARealServer() async throws {
        let server = try AuthoritativeDNS(zones: ["example.test": Self.zone, "2.0.192.in-addr.arpa": Self.reverseZone])
        defer { server.stop() }
        let resolver = try UnboundResolver(
            .init(
                resolvConf: nil,
                stubZones: ["example.test": [server.address], "2.0.192.in-addr.arpa": [server.address]],
                timeout: .seconds(5)
            )
        )
        #expect(try await resolver.txt("example.test") == .records(["v=spf1 ip4:192.0.2.0/24 -all"]))
        // A record over 255 bytes arrives as several character-strings and is joined.
        #expect(
            try await resolver.txt("sel._domainkey.EXAMPLE.test.") == .records(["v=DKIM1; k=rsa; p=\(Self.longKey)"])
        )
        #expect(try await resolver.a("example.test") == .records([IPAddress("192.0.2.10")!]))
        #expect(try await resolver.aaaa("example.test") == .records([IPAddress("2001:db8::10")!]))
        let mx = try await resolver.mx("example.test").records.sorted { $0.preference < $1.preference }
        #expect(
            mx == [
                MXRecord(preference: 10, exchange: "mx1.example.test"),
                .init(preference: 20, exchange: "mx2.example.test"),
            ]
        )
        #expect(try await resolver.ptr(IPAddress("192.0.2.10")!.reverseName) == .records(["example.test"]))
        #expect(try await resolver.txt("onlya.example.test") == .noData)
        #expect(try await resolver.txt("missing.example.test") == .nameError)

        // Many questions at once: every one is answered, none blocks a thread.
        let answers = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let name = index.isMultiple(of: 2) ? "_dmarc.example.test" : "nothing\(index).example.test"
                    let answer = try await resolver.txt(name)
                    return index.isMultiple(of: 2) ? answer == .records(["v=DMARC1; p=reject"]) : answer == .nameError
                }
            }
            return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
        }
        #expect(answers == 200)
    }

    @Test func aServerThatNeverAnswersIsATimeout() async throws {
        // A UDP socket that is bound but never read: questions to it get no answer at all.
        let (silent, port) = try Tools.silentUDPSocket()
        defer { close(silent) }
        let resolver = try UnboundResolver(
            .init(resolvConf: nil, stubZones: ["silent.test": ["127.0.0.1@\(port)"]], timeout: .milliseconds(800))
        )
        let start = ContinuousClock.now
        await #expect {
            try await resolver.txt("sel._domainkey.silent.test")
        } throws: { error in
            (error as? DNSFailure)?.kind == .timeout
        }
        // Bounded, with room for a loaded machine (the deadline is 0.8 s; without one this would never return).
        #expect(ContinuousClock.now - start < .seconds(30))
    }

    /// With a trust anchor, signed answers are believed and an answer changed after signing is refused
    /// (temperror for the caller), using ldns-keygen/ldns-signzone (Debian `ldnsutils`) to sign the test zone.
    @Test func validatesDNSSECWithATrustAnchor() async throws {
        let work = try Tools.makeTemporaryDirectory("dnssec")
        defer { try? FileManager.default.removeItem(at: work) }
        let keygen = try Tools.run("/bin/sh", ["-c", "cd '\(work.path)' && ldns-keygen -a ED25519 -k example.test"])
        guard keygen.status == 0 else { throw ToolError("ldns-keygen (Debian ldnsutils) failed: \(keygen.stderr)") }
        let keyName = keygen.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let dnskey = try String(contentsOf: work.appendingPathComponent("\(keyName).key"), encoding: .utf8)
        let unsigned = Self.zone + dnskey + "\n" + "tampered IN TXT \"original text\"\n"
        try unsigned.write(to: work.appendingPathComponent("zone"), atomically: true, encoding: .utf8)
        let sign = try Tools.run(
            "/bin/sh", ["-c", "cd '\(work.path)' && ldns-signzone -f zone.signed zone '\(keyName)'"])
        guard sign.status == 0 else { throw ToolError("ldns-signzone failed: \(sign.stderr)") }
        // Change one signed record after signing: its RRSIG no longer matches.
        let signed = try String(contentsOf: work.appendingPathComponent("zone.signed"), encoding: .utf8)
            .replacingOccurrences(of: "\"original text\"", with: "\"forged text\"")
        #expect(signed.contains("forged text") && signed.contains("RRSIG"))
        try dnskey.write(to: work.appendingPathComponent("anchor.key"), atomically: true, encoding: .utf8)

        let server = try AuthoritativeDNS(zones: ["example.test": signed])
        defer { server.stop() }
        let resolver = try UnboundResolver(
            .init(
                resolvConf: nil,
                stubZones: ["example.test": [server.address]],
                trustAnchorFile: work.appendingPathComponent("anchor.key").path
            )
        )
        #expect(try await resolver.txt("_dmarc.example.test") == .records(["v=DMARC1; p=reject"]))
        await #expect {
            try await resolver.txt("tampered.example.test")
        } throws: { error in
            guard let failure = error as? DNSFailure else { return false }
            return failure.kind == .serverFailure && failure.detail.contains("DNSSEC")
        }
    }

    @Test func aBadSettingIsNamed() {
        #expect {
            try UnboundResolver(.init(forwarders: ["not an address"]))
        } throws: { error in
            "\(error)".contains("not an address")
        }
    }
}
