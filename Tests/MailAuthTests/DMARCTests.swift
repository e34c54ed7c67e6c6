import MailAuth
import Testing

@Suite struct DMARCRecordTests {
    @Test func parsesEveryTag() throws {
        let record = try DMARCRecord(
            parsing:
                "v=DMARC1; p=Reject; sp=quarantine; np=reject; adkim=s; aspf=s; pct=20; rua=mailto:a@example.com,mailto:b@example.net!10m; ruf=mailto:f@example.com; fo=1:d; rf=afrf; ri=3600; x-future=1;"
        )
        #expect(record.policy == .reject)
        #expect(record.subdomainPolicy == .quarantine)
        #expect(record.nonExistentPolicy == .reject)
        #expect(record.dkimAlignment == .strict && record.spfAlignment == .strict)
        #expect(record.percentage == 20)
        #expect(record.aggregateReportURIs == "mailto:a@example.com,mailto:b@example.net!10m")
        #expect(record.failureReportURIs == "mailto:f@example.com")
        #expect(record.failureReportingOptions == "1:d")
        #expect(record.reportInterval == 3600)
        #expect(record.warnings == ["unknown tag x-future= ignored"])
        var reparsed = try DMARCRecord(parsing: record.text)
        reparsed.warnings = []
        var original = record
        original.warnings = []
        #expect(reparsed == original)
    }

    @Test func defaults() throws {
        let record = try DMARCRecord(parsing: "v=DMARC1;p=none")
        #expect(record.policy == .none && record.subdomainPolicy == nil && record.nonExistentPolicy == nil)
        #expect(record.dkimAlignment == .relaxed && record.spfAlignment == .relaxed)
        #expect(record.percentage == 100 && record.failureReportingOptions == "0" && record.reportInterval == 86400)
        #expect(record.warnings.isEmpty)
        #expect(record.text == "v=DMARC1; p=none")
    }

    @Test func badOptionalValuesFallBackToDefaults() throws {
        let record = try DMARCRecord(
            parsing: "v=DMARC1; p=quarantine; adkim=x; aspf=; pct=150; fo=7; ri=soon; np=drop; junk")
        #expect(record.policy == .quarantine)
        #expect(record.dkimAlignment == .relaxed && record.spfAlignment == .relaxed)
        #expect(record.percentage == 100 && record.failureReportingOptions == "0" && record.reportInterval == 86400)
        #expect(record.nonExistentPolicy == nil)
        #expect(record.warnings.count == 7)
    }

    @Test(arguments: [
        "v=DMARC1", "v=DMARC1; p=block", "v=DMARC1; sp=reject", "v=DMARC1; p=reject; sp=hard",
        "v=DMARC1; p=; rua=not a uri",
    ])
    func missingOrBadPolicyWithoutReportAddressIsRefused(_ text: String) {
        #expect(throws: DMARCRecordError.self) { try DMARCRecord(parsing: text) }
    }

    @Test func badPolicyWithReportAddressMeansNone() throws {
        let record = try DMARCRecord(parsing: "v=DMARC1; p=block; rua=mailto:d@example.com")
        #expect(record.policy == .none)
        #expect(record.warnings.last?.contains("treated as p=none") == true)
    }

    @Test(arguments: ["p=reject; v=DMARC1", "v=DMARC2; p=reject", "v=dmarc1; p=reject", "v=spf1 -all", "", "DMARC1"])
    func notADMARCRecord(_ text: String) {
        #expect(!DMARCRecord.isDMARC(text))
        #expect(throws: DMARCRecordError(message: "the record does not start with v=DMARC1", isNotDMARC: true)) {
            try DMARCRecord(parsing: text)
        }
    }
}

@Suite struct DMARCEvaluatorTests {
    static func zone() throws -> StaticZone {
        try StaticZone(
            parsing: """
                _dmarc.example.com TXT "v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com"
                _dmarc.strict.example TXT "v=DMARC1; p=reject; adkim=s; aspf=s"
                _dmarc.own.example.com TXT "v=DMARC1; p=none"
                _dmarc.sampled.example TXT "v=DMARC1; p=reject; pct=30"
                _dmarc.np.example TXT "v=DMARC1; p=reject; sp=none; np=quarantine"
                exists.np.example A 192.0.2.1
                _dmarc.two.example TXT "v=DMARC1; p=reject"
                _dmarc.two.example TXT "v=DMARC1; p=none"
                _dmarc.other.example TXT "some verification token"
                _dmarc.other.example TXT "v=DMARC1; p=quarantine"
                _dmarc.broken.example TXT "v=DMARC1; p=maybe"
                _dmarc.slow.example TIMEOUT
                _dmarc.sub.failing.example SERVFAIL
                _dmarc.co.uk TXT "v=DMARC1; p=reject"
                _dmarc.github.io TXT "v=DMARC1; p=reject"
                """)
    }

    func evaluate(
        _ from: String, dkim: [(String, String)] = [], spf: (String, String)? = nil, sample: Int = 0
    ) async throws -> DMARCResult {
        let evaluator = DMARCEvaluator(resolver: try Self.zone(), sample: { sample })
        return await evaluator.evaluate(
            DMARCInput(
                fromDomain: from, dkim: dkim.map { .init(domain: $0.0, result: $0.1) },
                spf: spf.map { .init(domain: $0.0, result: $0.1) }))
    }

    @Test func passesOnAlignedDKIM() async throws {
        let result = try await evaluate("example.com", dkim: [("other.net", "pass"), ("mail.example.com", "pass")])
        #expect(result.status == .pass)
        #expect(result.alignedDKIMDomain == "mail.example.com")
        #expect(result.alignedSPFDomain == nil)
        #expect(result.policy == .reject && result.disposition == .none)
        #expect(result.recordDomain == "example.com")
        #expect(
            result.authenticationResult.text == "dmarc=pass (p=reject sp=quarantine dis=none) header.from=example.com")
    }

    @Test func passesOnAlignedSPFOnly() async throws {
        let result = try await evaluate(
            "Example.COM", dkim: [("example.com", "fail")], spf: ("bounces.example.com", "pass"))
        #expect(result.status == .pass)
        #expect(result.alignedSPFDomain == "bounces.example.com")
        #expect(result.alignedDKIMDomain == nil)
    }

    @Test func onlyPassingResultsCount() async throws {
        for status in ["fail", "neutral", "temperror", "permerror", "policy", "none"] {
            let result = try await evaluate(
                "example.com", dkim: [("example.com", status)],
                spf: ("example.com", status == "none" ? "softfail" : status))
            #expect(result.status == .fail, "\(status)")
            #expect(result.disposition == .reject)
        }
    }

    @Test func unalignedPassFails() async throws {
        let result = try await evaluate("example.com", dkim: [("example.net", "pass")], spf: ("example.org", "pass"))
        #expect(result.status == .fail)
        #expect(result.disposition == .reject)
        #expect(
            result.authenticationResult.text == "dmarc=fail (p=reject sp=quarantine dis=reject) header.from=example.com"
        )
    }

    @Test func subdomainUsesTheOrganizationalRecordAndSp() async throws {
        let result = try await evaluate("a.b.example.com", dkim: [("example.com", "pass")])
        #expect(result.status == .pass)  // relaxed: same organizational domain
        #expect(result.recordDomain == "example.com")
        #expect(result.organizationalDomain == "example.com")
        #expect(result.policy == .quarantine)
        let failing = try await evaluate("a.b.example.com")
        #expect(failing.status == .fail && failing.disposition == .quarantine)
    }

    @Test func theFromDomainsOwnRecordWins() async throws {
        let result = try await evaluate("own.example.com", dkim: [("x.example.net", "pass")])
        #expect(result.recordDomain == "own.example.com")
        #expect(result.status == .fail && result.policy == DMARCPolicy.none && result.disposition == .none)
    }

    @Test func strictAlignment() async throws {
        let sub = try await evaluate(
            "strict.example", dkim: [("mail.strict.example", "pass")], spf: ("mail.strict.example", "pass"))
        #expect(sub.status == .fail)
        let exact = try await evaluate("strict.example", spf: ("STRICT.example.", "pass"))
        #expect(exact.status == .pass && exact.alignedSPFDomain == "strict.example")
    }

    @Test func percentageSampling() async throws {
        let applied = try await evaluate("sampled.example", sample: 29)
        #expect(applied.disposition == .reject && !applied.sampledOut)
        let sampledOut = try await evaluate("sampled.example", sample: 30)
        #expect(sampledOut.status == .fail && sampledOut.disposition == .quarantine && sampledOut.sampledOut)
    }

    @Test func nonExistentSubdomainPolicy() async throws {
        let missing = try await evaluate("ghost.np.example")
        #expect(missing.policy == .quarantine && missing.disposition == .quarantine)
        let existing = try await evaluate("exists.np.example")
        #expect(existing.policy == DMARCPolicy.none && existing.disposition == .none)
        // np= never applies to the organizational domain itself.
        let org = try await evaluate("np.example")
        #expect(org.policy == .reject)
    }

    @Test func noRecordIsNone() async throws {
        let result = try await evaluate("nothing.example", dkim: [("nothing.example", "pass")])
        #expect(result.status == DMARCStatus.none && result.record == nil && result.disposition == .none)
        #expect(result.authenticationResult.text.hasPrefix("dmarc=none reason="))
    }

    @Test func otherTXTRecordsAreSkipped() async throws {
        let result = try await evaluate("other.example")
        #expect(result.status == .fail && result.policy == .quarantine)
    }

    @Test func errors() async throws {
        let two = try await evaluate("two.example")
        #expect(two.status == .permerror && two.reason?.contains("2 DMARC records") == true)
        let broken = try await evaluate("broken.example", dkim: [("broken.example", "pass")])
        #expect(broken.status == .permerror && broken.disposition == .none)
        let slow = try await evaluate("slow.example")
        #expect(slow.status == .temperror && slow.reason?.contains("timed out") == true)
        // The subdomain's own lookup fails: temperror, not a fall back to the organizational record.
        let failing = try await evaluate("sub.failing.example")
        #expect(failing.status == .temperror)
        let invalid = try await evaluate("bad..example")
        #expect(invalid.status == .permerror)
        #expect(invalid.authenticationResult.result == "permerror")
    }

    @Test func publicSuffixesAndPrivateSections() async throws {
        // co.uk is a public suffix: a subdomain's organizational domain stops below it, so _dmarc.co.uk is never asked.
        let result = try await evaluate("shop.example.co.uk")
        #expect(result.organizationalDomain == "example.co.uk" && result.status == DMARCStatus.none)
        // github.io is in the private section: alice.github.io is its own organization.
        let pages = try await evaluate("alice.github.io", dkim: [("bob.github.io", "pass")])
        #expect(pages.status == DMARCStatus.none && pages.organizationalDomain == "alice.github.io")
    }

    @Test func internationalizedFromDomain() async throws {
        var zone = StaticZone()
        zone.addTXT("_dmarc.xn--bcher-kva.example", "v=DMARC1; p=reject")
        let evaluator = DMARCEvaluator(resolver: zone)
        let result = await evaluator.evaluate(
            DMARCInput(fromDomain: "Bücher.example", dkim: [.init(domain: "xn--bcher-kva.example", result: "pass")]))
        #expect(result.status == .pass && result.fromDomain == "xn--bcher-kva.example")
    }
}
