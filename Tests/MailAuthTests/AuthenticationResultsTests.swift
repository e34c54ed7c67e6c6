import MailAuth
import MailMessage
import NIOCore
import Testing

@Suite struct AuthenticationResultsTests {
    // RFC 8601 Appendix B, the field values as the RFC folds them.
    @Test func appendixB2NoAuthenticationDone() throws {
        let parsed = try AuthenticationResults(parsing: " example.org 1; none")
        #expect(parsed == AuthenticationResults(authservID: "example.org", version: 1, results: []))
    }

    @Test func appendixB3() throws {
        let parsed = try AuthenticationResults(parsing: " example.com;\r\n          spf=pass smtp.mailfrom=example.net")
        #expect(parsed.authservID == "example.com")
        #expect(
            parsed.results == [
                AuthenticationResult(
                    method: "spf", result: "pass", properties: [.init("smtp", "mailfrom", "example.net")])
            ])
    }

    @Test func appendixB4() throws {
        let first = try AuthenticationResults(
            parsing: """
                 example.com;\r
                          auth=pass (cram-md5) smtp.auth=sender@example.net;\r
                          spf=pass smtp.mailfrom=example.net
                """)
        #expect(
            first.results == [
                AuthenticationResult(
                    method: "auth", result: "pass", comments: ["cram-md5"],
                    properties: [.init("smtp", "auth", "sender@example.net")]),
                AuthenticationResult(
                    method: "spf", result: "pass", properties: [.init("smtp", "mailfrom", "example.net")]),
            ])
        let second = try AuthenticationResults(
            parsing: " example.com; iprev=pass\r\n          policy.iprev=192.0.2.200")
        #expect(second.results.first?.property("policy", "iprev") == "192.0.2.200")
    }

    @Test func appendixB5() throws {
        let first = try AuthenticationResults(
            parsing: " example.com;\r\n          dkim=pass (good signature) header.d=example.com")
        #expect(
            first.results == [
                AuthenticationResult(
                    method: "dkim", result: "pass", comments: ["good signature"],
                    properties: [.init("header", "d", "example.com")])
            ])
        let second = try AuthenticationResults(
            parsing: """
                 example.com;\r
                          auth=pass (cram-md5) smtp.auth=sender@example.com;\r
                          spf=fail smtp.mailfrom=example.com
                """)
        #expect(second.results.map(\.result) == ["pass", "fail"])
        #expect(second.results[1].property("smtp", "mailfrom") == "example.com")
    }

    @Test func appendixB6() throws {
        let first = try AuthenticationResults(
            parsing: """
                 example.com;\r
                      dkim=pass reason="good signature"\r
                        header.i=@mail-router.example.net;\r
                      dkim=fail reason="bad signature"\r
                        header.i=@newyork.example.com
                """)
        #expect(
            first.results == [
                AuthenticationResult(
                    method: "dkim", result: "pass", reason: "good signature",
                    properties: [.init("header", "i", "@mail-router.example.net")]),
                AuthenticationResult(
                    method: "dkim", result: "fail", reason: "bad signature",
                    properties: [.init("header", "i", "@newyork.example.com")]),
            ])
        let second = try AuthenticationResults(
            parsing: " example.net;\r\n     dkim=pass (good signature) header.i=@newyork.example.com")
        #expect(second.results.first?.property("header", "i") == "@newyork.example.com")
    }

    @Test func appendixB7CommentHeavy() throws {
        let parsed = try AuthenticationResults(
            parsing: """
                 foo.example.net (foobar) 1 (baz);\r
                    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r
                      policy (A dot can go here) . (like that) expired\r
                      (this surprised me) = (as I wasn't expecting it) 1362471462
                """)
        #expect(parsed.authservID == "foo.example.net")
        #expect(parsed.version == 1)
        #expect(parsed.results.count == 1)
        let dkim = try #require(parsed.results.first)
        #expect(dkim.method == "dkim" && dkim.methodVersion == 1 && dkim.result == "fail")
        #expect(dkim.properties == [.init("policy", "expired", "1362471462")])
        #expect(
            dkim.comments == [
                "Because I like it", "One yay", "wait for it", "A dot can go here", "like that", "this surprised me",
                "as I wasn't expecting it",
            ])
    }

    @Test func realWorldGmailStyle() throws {
        let parsed = try AuthenticationResults(
            parsing: """
                 mx.google.com;\r
                       dkim=pass header.i=@email.example.com header.s=20111006 header.b=URn9MW+F/x=;\r
                       spf=pass (google.com: domain of foo@b.email.example.com designates 1.2.3.4 as permitted sender) smtp.mailfrom=foo@b.email.example.com;\r
                       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=email.example.com;
                """)
        #expect(parsed.results.map(\.method) == ["dkim", "spf", "dmarc"])
        #expect(parsed.results[0].property("header", "b") == "URn9MW+F/x=")
        #expect(parsed.results[2].comments == ["p=REJECT sp=REJECT dis=NONE"])
        #expect(parsed.results(for: "DMARC").first?.property("header", "from") == "email.example.com")
    }

    @Test func quotedAuthservIDAndEscapes() throws {
        let parsed = try AuthenticationResults(
            parsing:
                #" "mx.example.com" ; dkim=neutral reason="a \"quoted\" word" (nested (comment) \) here) header.d="exa mple""#
        )
        #expect(parsed.authservID == "mx.example.com")
        let dkim = try #require(parsed.results.first)
        #expect(dkim.reason == #"a "quoted" word"#)
        #expect(dkim.comments == ["nested (comment) ) here"])
        #expect(dkim.property("header", "d") == "exa mple")
    }

    @Test(arguments: [
        ("", "empty"),
        ("   ", "empty"),
        ("example.com", "none"),
        ("example.com;", "none"),
        ("example.com; spf", "'='"),
        ("example.com; spf=", "result"),
        ("example.com; spf=pass smtp", "'.'"),
        ("example.com; spf=pass smtp.mailfrom", "'='"),
        ("example.com; spf=pass smtp.mailfrom=", "value"),
        ("example.com; spf=pass (unclosed", "comment"),
        ("example.com; dkim=pass reason=\"open", "quoted"),
        ("example.com 2; none", "version"),
        ("example.com; none; spf=pass", "none"),
        ("example.com; spf=pass; none", "none"),
        ("example.com; spf=pass smtp.mailfrom=a.b reason=x", "reason"),
        ("example.com; =pass", "method"),
        ("example.com; spf=pass )", "property"),
        ("example.com; spf/x=pass", "version"),
        ("example.com; spf-=pass", "'-'"),
        ("@; spf=pass", "authserv-id"),
        ("example.com; spf=pass (a \\\r\n b)", "backslash"),
        ("example.com; dkim=pass reason=\"a \\\n\"", "backslash"),
    ])
    func malformedIsAnErrorNamingTheProblem(_ input: String, _ mentions: String) {
        do {
            let parsed = try AuthenticationResults(parsing: input)
            Issue.record("parsed \(input) as \(parsed)")
        } catch {
            #expect(error.description.contains(mentions), "\(input): \(error)")
        }
    }

    @Test func deeplyNestedCommentsAndHugeValuesAreRefused() {
        #expect(throws: AuthenticationResultsParseError.self) {
            try AuthenticationResults(parsing: "a; spf=pass " + String(repeating: "(", count: 1000))
        }
        #expect(throws: AuthenticationResultsParseError.self) {
            try AuthenticationResults(parsing: "a; spf=pass" + String(repeating: " header.x=y", count: 10000))
        }
    }

    @Test func everyPrefixAndByteFlipOfAValidFieldParsesOrFails() {
        // Robustness: no input crashes the parser (a prefix or a one-byte change of a valid value).
        let valid = Array(#"mx.example.com 1; dkim/1=pass (c (d)) reason="r \"q\"" header.d=ex.com; none"#.utf8)
        for end in 0...valid.count {
            _ = try? AuthenticationResults(parsing: String(decoding: valid[0..<end], as: UTF8.self))
        }
        for index in valid.indices {
            for replacement in [UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\""), UInt8(ascii: "\\"), 0, 0xFF] {
                var changed = valid
                changed[index] = replacement
                _ = try? AuthenticationResults(parsing: String(decoding: changed, as: UTF8.self))
            }
        }
    }

    @Test func randomInputsParseOrFailAndWhatParsesIsWrittenBackTheSame() throws {
        // Seeded so a failure can be reproduced; strings from the grammar's own alphabet reach deep into the parser.
        var state: UInt64 = 0x5EED_A11D
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func pick(_ choices: [String]) -> String { choices[Int(next() % UInt64(choices.count))] }
        // Fields built from the grammar with CFWS dropped in between tokens, a third of them with one byte changed.
        func cfws() -> String { pick(["", "", " ", "  ", "(c)", "\r\n\t", " (x (y) \\) z) ", "\r\n (f)"]) }
        func value() -> String { pick(["v", "\"q v\"", "a@b.c", "@b.c", "\"x\\\"y\"", "ab+/c=", "é", "\"\""]) }
        var parsed = 0
        for _ in 0..<20_000 {
            var text = cfws() + pick(["a.example", "\"id x\"", "mx"]) + cfws()
            if next() % 4 == 0 { text += "1" + cfws() }
            if next() % 8 == 0 { text += ";" + cfws() + "none" + cfws() }
            for _ in 0..<(1 + Int(next() % 3)) {
                text += ";" + cfws() + pick(["spf", "dkim", "dmarc", "x-m"]) + cfws()
                if next() % 5 == 0 { text += "/" + cfws() + "1" + cfws() }
                text += "=" + cfws() + pick(["pass", "fail", "none", "temperror"]) + cfws()
                if next() % 3 == 0 { text += "reason" + cfws() + "=" + cfws() + value() + cfws() }
                for _ in 0..<Int(next() % 3) {
                    text += pick(["header", "smtp", "policy"]) + cfws() + "." + cfws() + pick(["d", "mailfrom", "b"])
                    text += cfws() + "=" + cfws() + value() + cfws()
                }
            }
            if next() % 3 == 0 {
                var bytes = Array(text.utf8)
                let replacements = Array(";=.()\"\\@/ a1\r".utf8)
                bytes[Int(next() % UInt64(bytes.count))] = replacements[Int(next() % UInt64(replacements.count))]
                text = String(decoding: bytes, as: UTF8.self)
            }
            guard let value = try? AuthenticationResults(parsing: text) else { continue }
            parsed += 1
            let again = try AuthenticationResults(parsing: value.value)
            #expect(again == value, "\(text.debugDescription) → \(value.value.debugDescription)")
            let field = value.field()
            let folded = try AuthenticationResults(parsing: String(field.dropFirst("Authentication-Results:".count)))
            #expect(folded == value, "\(field.debugDescription)")
        }
        print("random Authentication-Results values: \(parsed) of 20000 parsed and round-tripped")
        #expect(parsed > 5000)
    }

    @Test func writerRoundTrips() throws {
        let samples = [
            AuthenticationResults(authservID: "example.org", version: 1, results: []),
            AuthenticationResults(
                authservID: "mx.example.com",
                results: [
                    AuthenticationResult(
                        method: "dkim", result: "pass", reason: "good \"signature\" \\ here",
                        properties: [
                            .init("header", "d", "example.com"), .init("header", "i", "@example.com"),
                            .init("header", "b", "Ab+/cd=="), .init("header", "s", "sel 1"),
                        ]),
                    AuthenticationResult(
                        method: "spf", result: "softfail", comments: ["a (nested) comment with \\ and )"],
                        properties: [.init("smtp", "mailfrom", "user.name+tag@sub.example.net")]),
                    AuthenticationResult(
                        method: "dmarc", result: "fail", comments: ["p=reject dis=quarantine"],
                        properties: [.init("header", "from", "example.com")]),
                    AuthenticationResult(method: "arc", methodVersion: 1, result: "none"),
                ]),
            AuthenticationResults(
                authservID: "odd id;with=specials",
                results: [
                    AuthenticationResult(
                        method: "auth", result: "pass", properties: [.init("smtp", "auth", "\"q uoted\"@x.y")])
                ]),
        ]
        for sample in samples {
            #expect(try AuthenticationResults(parsing: sample.value) == sample)
            let field = sample.field()
            let header = try MessageHeader.parse(ByteBuffer(string: field + "\r\n"))
            let parsed = try AuthenticationResults(field: try #require(header.fields.first))
            #expect(parsed == sample, "\(field)")
        }
    }

    @Test func writerFoldsAtSeventyEightColumns() throws {
        let results = AuthenticationResults(
            authservID: "mx.example.com",
            results: (0..<6).map { index in
                AuthenticationResult(
                    method: "dkim", result: "pass", reason: "signature \(index) verified with a key of 2048 bits",
                    properties: [.init("header", "d", "sub\(index).example.com"), .init("header", "s", "selector")])
            })
        let field = results.field()
        let lines = field.split(separator: "\r\n", omittingEmptySubsequences: false)
        #expect(lines.count > 6)
        for line in lines {
            #expect(line.replacing("\t", with: String(repeating: " ", count: 8)).utf8.count <= 78, "\(line)")
            #expect(line == lines[0] || line.hasPrefix("\t"))
        }
        #expect(try AuthenticationResults(parsing: String(field.dropFirst("Authentication-Results:".count))) == results)
    }

    @Test func writesTheDMARCStyleLine() {
        let results = AuthenticationResults(
            authservID: "relay.example.net",
            results: [
                AuthenticationResult(
                    method: "dmarc", result: "pass", comments: ["p=reject dis=none"],
                    properties: [.init("header", "from", "example.com")])
            ])
        #expect(results.value == "relay.example.net; dmarc=pass (p=reject dis=none) header.from=example.com")
        #expect(
            results.field()
                == "Authentication-Results: relay.example.net;\r\n\tdmarc=pass (p=reject dis=none) header.from=example.com"
        )
        #expect(
            results.field(name: "A-R")
                == "A-R: relay.example.net; dmarc=pass (p=reject dis=none) header.from=example.com")
        #expect(
            results.field(name: "ARC-Authentication-Results", prefix: "i=1; ").hasPrefix(
                "ARC-Authentication-Results: i=1; relay.example.net;"))
    }

    @Test func newLinesInValuesCannotInjectAField() throws {
        let hostile = AuthenticationResults(
            authservID: "a.example\r\nX-Injected: 1",
            results: [AuthenticationResult(method: "spf", result: "pass", comments: ["x\r\nBcc: y"])])
        let field = hostile.field()
        let header = try MessageHeader.parse(ByteBuffer(string: field + "\r\n"))
        #expect(header.fields.count == 1)
    }

    @Test func parsesARCAuthenticationResults() throws {
        let (instance, results) = try AuthenticationResults.parseARC(
            " i=2; lists.example.org;\r\n spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com")
        #expect(instance == 2)
        #expect(results.authservID == "lists.example.org")
        #expect(results.results.map(\.method) == ["spf", "dkim"])
        #expect(throws: AuthenticationResultsParseError.self) { try AuthenticationResults.parseARC("i=0; a; none") }
        #expect(throws: AuthenticationResultsParseError.self) { try AuthenticationResults.parseARC("a; none") }
    }

    @Test func findsTheFieldsOfOneAuthservID() throws {
        let header = try MessageHeader.parse(
            ByteBuffer(
                string: """
                    Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=a.example\r
                    Received: from x by y\r
                    Authentication-Results: other.example; dkim=fail\r
                    authentication-results: MX.Example.NET;\r
                    \tdkim=pass header.d=a.example\r
                    Authentication-Results: mx.example.net; this is ( broken\r
                    From: a@a.example\r

                    """))
        let found = AuthenticationResults.fields(in: header, authservID: "mx.example.net")
        #expect(found.map { $0.results.map(\.method) } == [["spf"], ["dkim"]])
    }
}
