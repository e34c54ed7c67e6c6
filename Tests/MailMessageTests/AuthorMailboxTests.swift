import MailMessage
import NIOCore
import Testing

@Suite("MessageHeader.authorMailbox")
struct AuthorMailboxTests {
    private func author(_ block: String) throws(MailMessageError) -> Mailbox {
        try MessageHeader.parse(buffer(block)).authorMailbox()
    }

    @Test("one From field with one mailbox")
    func single() throws {
        let mailbox = try author("To: x@y.test\r\nFrom: \"Joe Q. Public\" <john.q.public@Example.COM>\r\n")
        #expect(mailbox.displayName == "Joe Q. Public")
        #expect(mailbox.localPart == "john.q.public")
        #expect(mailbox.domain == "Example.COM")
    }

    @Test("a folded From field with comments")
    func folded() throws {
        let mailbox = try author("FROM: Pete(A nice \\) chap)\r\n <pete(his account)@silly.test(his host)>\r\n")
        #expect(mailbox.address == "pete@silly.test")
        #expect(mailbox.displayName == "Pete")
    }

    @Test("no From field")
    func none() {
        #expect(throws: MailMessageError.noFromHeader) { try author("To: a@b.test\r\nSubject: x\r\n") }
        #expect(throws: MailMessageError.noFromHeader) { try author("") }
    }

    @Test("two From fields")
    func twoFields() {
        #expect(throws: MailMessageError.multipleFromHeaders) {
            try author("From: a@b.test\r\nSubject: x\r\nfrom: c@d.test\r\n")
        }
    }

    @Test("two mailboxes in one From field, even though RFC 5322 allows it with Sender")
    func twoMailboxes() {
        #expect(throws: MailMessageError.multipleFromHeaders) {
            try author("From: a@b.test, c@d.test\r\nSender: a@b.test\r\n")
        }
        #expect(throws: MailMessageError.multipleFromHeaders) {
            try author("From: Authors: a@b.test, c@d.test;\r\n")
        }
    }

    @Test("a From field without a mailbox")
    func noAddress() {
        for block in [
            "From:\r\n", "From:   \r\n", "From: Undisclosed:;\r\n", "From: (just a comment)\r\n", "From: ,,\r\n",
        ] {
            #expect(throws: MailMessageError.noAddressInFrom) { try author(block) }
        }
    }

    @Test("an unparsable From field")
    func invalid() {
        for block in ["From: Joe Smith\r\n", "From: <joe@>\r\n", "From: joe@example.com>\r\n"] {
            #expect(throws: MailMessageError.invalidAddress) { try author(block) }
        }
    }

    @Test("a group with one mailbox in From (RFC 6854) is that mailbox")
    func groupOfOne() throws {
        #expect(try author("From: Team: lead@x.test;\r\n").address == "lead@x.test")
    }
}
