import MailMessage
import Testing

@Suite("AddressParser")
struct AddressParserTests {
    private func list(_ text: String) throws -> [Mailbox] {
        try AddressParser.parseAddressList(text)
    }

    private func addresses(_ text: String) throws -> [String] {
        try list(text).map(\.address)
    }

    @Test("a quoted display name")
    func quotedDisplayName() throws {
        let mailbox = try AddressParser.parseMailbox("\"Joe Q. Public\" <john.q.public@example.com>")
        #expect(mailbox == Mailbox(displayName: "Joe Q. Public", localPart: "john.q.public", domain: "example.com"))
        #expect(mailbox.address == "john.q.public@example.com")
    }

    @Test("an unquoted display name with a '.' (obs-phrase)")
    func obsPhrase() throws {
        let mailbox = try AddressParser.parseMailbox("Joe Q. Public <john.q.public@example.com>")
        #expect(mailbox.displayName == "Joe Q. Public")
    }

    @Test("a list of a name-addr and an addr-spec")
    func simpleList() throws {
        let mailboxes = try list("Mary Smith <mary@x.test>, jdoe@example.org")
        #expect(
            mailboxes == [
                Mailbox(displayName: "Mary Smith", localPart: "mary", domain: "x.test"),
                Mailbox(localPart: "jdoe", domain: "example.org"),
            ]
        )
    }

    @Test("RFC 5322 A.1.2: a question mark and a quoted name with specials")
    func rfcA12() throws {
        let mailboxes = try list("Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>")
        #expect(mailboxes.map(\.address) == ["mary@x.test", "jdoe@example.org", "one@y.test"])
        #expect(mailboxes[2].displayName == "Who?")
        let second = try list("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>")
        #expect(second[0] == Mailbox(localPart: "boss", domain: "nil.test"))
        #expect(second[1].displayName == "Giant; \"Big\" Box")
        #expect(second[1].address == "sysservices@example.net")
    }

    @Test("groups are flattened; empty groups give nothing")
    func groups() throws {
        #expect(try addresses("A Group:Ed Jones <c@a.test>,joe@where.test;") == ["c@a.test", "joe@where.test"])
        #expect(try list("Undisclosed recipients:;").isEmpty)
        #expect(
            try addresses("A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, after@x.test")
                == ["c@a.test", "joe@where.test", "jdoe@one.test", "after@x.test"]
        )
        #expect(try list("A Group:Ed Jones <c@a.test>;")[0].displayName == "Ed Jones")
        #expect(try addresses("G: , a@b.test, ,;") == ["a@b.test"])
    }

    @Test("comments anywhere, nested, with quoted pairs")
    func comments() throws {
        let pete = try AddressParser.parseMailbox("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>")
        #expect(pete == Mailbox(displayName: "Pete", localPart: "pete", domain: "silly.test"))
        let group = try list(
            "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
                + "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)"
        )
        #expect(
            group == [
                Mailbox(displayName: "Chris Jones", localPart: "c", domain: "public.example"),
                Mailbox(localPart: "joe", domain: "example.org"),
                Mailbox(displayName: "John", localPart: "jdoe", domain: "one.test"),
            ]
        )
        #expect(try AddressParser.parseMailbox("(a (nested (comment)))x@y.test(and (more))").address == "x@y.test")
    }

    @Test("a comment after an addr-spec is not a display name")
    func trailingCommentName() throws {
        let mailbox = try AddressParser.parseMailbox("joe@example.com (Joe Bloggs)")
        #expect(mailbox.displayName == nil)
        #expect(mailbox.address == "joe@example.com")
    }

    @Test("quoted local parts keep their quotes")
    func quotedLocalParts() throws {
        let doubleDot = try AddressParser.parseMailbox("\"john..doe\"@example.com")
        #expect(doubleDot.localPart == "\"john..doe\"")
        #expect(doubleDot.address == "\"john..doe\"@example.com")
        #expect(try AddressParser.parseMailbox("\"a b\"@x").address == "\"a b\"@x")
        #expect(try AddressParser.parseMailbox("<\"a\\\"b\"@x.test>").localPart == "\"a\\\"b\"")
        #expect(try AddressParser.parseMailbox("Name <\"x y\".z@w.test>").localPart == "\"x y\".z")
    }

    @Test("obs-route is accepted and dropped")
    func obsRoute() throws {
        #expect(try AddressParser.parseMailbox("<@a,@b:user@host>").address == "user@host")
        #expect(try AddressParser.parseMailbox("Mary <@node.test:mary@example.net>").address == "mary@example.net")
        #expect(try AddressParser.parseMailbox("<,@a, ,@b:user@host>").address == "user@host")
    }

    @Test("RFC 5322 A.6: obsolete white space, comments and empty list elements")
    func obsolete() throws {
        #expect(
            try addresses("Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example")
                == ["mary@example.net", "jdoe@test.example"]
        )
        let mailbox = try AddressParser.parseMailbox("John Doe <jdoe@machine(comment).  example>")
        #expect(mailbox == Mailbox(displayName: "John Doe", localPart: "jdoe", domain: "machine.example"))
        #expect(try AddressParser.parseMailbox("Mary Smith\r\n   \r\n <mary@example.net>").displayName == "Mary Smith")
        #expect(try addresses(", a@b.test ,, c@d.test,") == ["a@b.test", "c@d.test"])
    }

    @Test("UTF-8 names and domains (RFC 6532), domain case as written")
    func utf8() throws {
        let mailbox = try AddressParser.parseMailbox("Jöran <j@bücher.example>")
        #expect(mailbox == Mailbox(displayName: "Jöran", localPart: "j", domain: "bücher.example"))
        #expect(try AddressParser.parseMailbox("用户@例子.广告").address == "用户@例子.广告")
        #expect(try AddressParser.parseMailbox("x@Example.COM").domain == "Example.COM")
    }

    @Test("encoded-words are left as written")
    func encodedWords() throws {
        let mailbox = try AddressParser.parseMailbox("=?UTF-8?Q?J=C3=B6ran?= <j@x.test>")
        #expect(mailbox.displayName == "=?UTF-8?Q?J=C3=B6ran?=")
        let two = try AddressParser.parseMailbox("=?utf-8?b?SsO2cmFu?= =?utf-8?q?_X?= <j@x.test>")
        #expect(two.displayName == "=?utf-8?b?SsO2cmFu?= =?utf-8?q?_X?=")
    }

    @Test("domain literals")
    func domainLiterals() throws {
        #expect(try AddressParser.parseMailbox("user@[192.0.2.1]").domain == "[192.0.2.1]")
        #expect(try AddressParser.parseMailbox("<user@[IPv6:2001:db8::1]>").domain == "[IPv6:2001:db8::1]")
    }

    @Test("display names: white space collapses, quoted-pairs unescape, empty names are nil")
    func displayNames() throws {
        #expect(try AddressParser.parseMailbox("  Joe \t  Bloggs   <j@x.test>").displayName == "Joe Bloggs")
        #expect(try AddressParser.parseMailbox("\"a\\\"b\" <x@y.test>").displayName == "a\"b")
        #expect(try AddressParser.parseMailbox("\"\" <x@y.test>").displayName == nil)
        #expect(try AddressParser.parseMailbox("<x@y.test>").displayName == nil)
        #expect(try AddressParser.parseMailbox("Joe(comment)Bloggs <x@y.test>").displayName == "Joe Bloggs")
        #expect(try AddressParser.parseMailbox("\"Joe\"Bloggs <x@y.test>").displayName == "JoeBloggs")
    }

    @Test("lenient unquoted local parts with empty words")
    func lenientLocalParts() throws {
        #expect(try AddressParser.parseMailbox("taro..hanako@example.jp").localPart == "taro..hanako")
        #expect(try AddressParser.parseMailbox("taro.@example.jp").localPart == "taro.")
    }

    @Test("an empty address list is no mailbox, not an error")
    func emptyList() throws {
        #expect(try list("").isEmpty)
        #expect(try list("  (comment) ").isEmpty)
        #expect(try list(",,").isEmpty)
    }

    @Test(
        "invalid address lists",
        arguments: [
            "joe", "Joe Smith", "@x.test", "joe@", "joe@x..test", "joe@x.test.", "joe@.x", "<joe@x.test",
            "joe@x.test>", "Joe <>", "Joe Smith joe@x.test", "a@b@c", "(unclosed", "\"unclosed@x",
            "a@[1.2.3.4", "a@[1[2]]", "G: a@b.test", "G: H: a@b.test;;", "a@b.test;", ":;", "a@b.test c@d.test",
            "a\u{1}b@c.test", ")", "a@b.test)", "<a@b.test> <c@d.test>", "a@b.test <c@d.test>", "\\", "]",
            "<@a:>", "<@a b:c@d>", "<a>", ".@x.test", "John Smith@x.test", "a@b.test.", "a@\"quoted\".test",
            "a@b.test <", "<a@b.test", "x@y\u{0}", "\"\u{0}\"@x",
        ]
    )
    func invalidLists(text: String) {
        #expect(throws: MailMessageError.invalidAddress) { try AddressParser.parseAddressList(text) }
    }

    @Test(
        "parseMailbox refuses lists, groups and nothing",
        arguments: [
            "", " ", "a@b.test, c@d.test", "G: a@b.test;", "a@b.test,", "Undisclosed recipients:;", ",a@b.test",
        ]
    )
    func invalidMailbox(text: String) {
        #expect(throws: MailMessageError.invalidAddress) { try AddressParser.parseMailbox(text) }
    }

    @Test("comment nesting is bounded")
    func commentDepth() throws {
        let ok = String(repeating: "(", count: 32) + String(repeating: ")", count: 32) + "a@b.test"
        #expect(try AddressParser.parseMailbox(ok).address == "a@b.test")
        let deep = String(repeating: "(", count: 33) + String(repeating: ")", count: 33) + "a@b.test"
        #expect(throws: MailMessageError.invalidAddress) { try AddressParser.parseMailbox(deep) }
        let huge = String(repeating: "(", count: 100_000) + "a@b.test"
        #expect(throws: MailMessageError.invalidAddress) { try AddressParser.parseMailbox(huge) }
    }

    @Test("reasons name the problem and quote the text")
    func reasons() {
        do {
            _ = try AddressParser.parseMailbox("Joe <joe@example.com")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .invalidAddress)
            #expect(error.reason.contains("'>'"))
            #expect(error.reason.contains("Joe <joe@example.com"))
        }
    }

    @Test("a long list parses in one pass")
    func longList() throws {
        let text = (0..<5000).map { "User \($0) <u\($0)@host\($0 % 7).test>" }.joined(separator: ", ")
        let mailboxes = try list(text)
        #expect(mailboxes.count == 5000)
        #expect(mailboxes[4999] == Mailbox(displayName: "User 4999", localPart: "u4999", domain: "host1.test"))
    }
}
