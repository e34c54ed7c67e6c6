import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Server session: command order and local answers")
struct SessionTests {
    static func capabilities() -> SMTPCapabilities {
        var capabilities = SMTPCapabilities()
        capabilities.pipelining = true
        capabilities.chunking = true
        capabilities.eightBitMIME = true
        capabilities.smtpUTF8 = true
        capabilities.enhancedStatusCodes = true
        capabilities.startTLS = true
        capabilities.size = 1000
        return capabilities
    }

    static func session(
        _ configure: (inout SMTPServerSession.Configuration) -> Void = { _ in }
    ) -> SMTPServerSession {
        var configuration = SMTPServerSession.Configuration(
            hostname: "signet.example", capabilities: capabilities(), maximumRecipients: 2, maximumMessageSize: 1000)
        configure(&configuration)
        return SMTPServerSession(configuration: configuration)
    }

    /// A session after EHLO, MAIL and one accepted RCPT.
    static func inTransaction(_ parameters: [SMTPParameter] = []) -> SMTPServerSession {
        var session = session()
        _ = session.handle(.ehlo("client"))
        _ = session.handle(.mail(from: "a@b", parameters: parameters))
        session.mailResult(accepted: true)
        _ = session.handle(.rcpt(to: "c@d", parameters: []))
        session.recipientResult(accepted: true)
        return session
    }

    static func code(_ action: SMTPServerSession.Action) -> String {
        guard case .reply(let reply) = action else { return "\(action)" }
        return "\(reply.code) \(reply.enhancedCode.map { "\($0)" } ?? "-")"
    }

    @Test func greetingAndEHLO() {
        var session = Self.session()
        #expect(String(buffer: session.greeting().encoded()) == "220 signet.example ESMTP\r\n")
        guard case .reply(let reply) = session.handle(.ehlo("client.example")) else {
            Issue.record("no reply")
            return
        }
        #expect(reply.lines.first == "signet.example")
        #expect(SMTPCapabilities(ehloReply: reply) == Self.capabilities())
        #expect(session.state == .greeted)
        #expect(session.handle(.helo("client")) == .reply(SMTPReply(code: 250, nil, "signet.example")))
    }

    @Test func fullTransactionWithDATA() {
        var session = Self.inTransaction()
        #expect(session.state == .recipients)
        #expect(session.handle(.data) == .startData)
        #expect(session.state == .data)
        session.messageFinished()
        #expect(session.state == .greeted)
        #expect(session.handle(.mail(from: "", parameters: [])) == .forwardMail(from: "", parameters: []))
    }

    @Test func transactionWithBDAT() {
        var session = Self.inTransaction()
        #expect(session.handle(.bdat(size: 400, last: false)) == .chunk(size: 400, last: false))
        #expect(Self.code(session.handle(.data)) == "503 5.5.1")
        #expect(session.handle(.bdat(size: 600, last: true)) == .chunk(size: 600, last: true))
        session.messageFinished()
        #expect(session.state == .greeted)
    }

    @Test func orderRules() {
        var fresh = Self.session()
        #expect(Self.code(fresh.handle(.mail(from: "a@b", parameters: []))) == "503 5.5.1")
        #expect(Self.code(fresh.handle(.rcpt(to: "a@b", parameters: []))) == "503 5.5.1")
        #expect(Self.code(fresh.handle(.data)) == "503 5.5.1")
        _ = fresh.handle(.ehlo("x"))
        #expect(Self.code(fresh.handle(.rcpt(to: "a@b", parameters: []))) == "503 5.5.1")
        #expect(Self.code(fresh.handle(.bdat(size: 1, last: true))) == "503 5.5.1")

        var nested = Self.inTransaction()
        #expect(Self.code(nested.handle(.mail(from: "a@b", parameters: []))) == "503 5.5.1")
        #expect(Self.code(nested.handle(.starttls)) == "503 5.5.1")

        var dataAfterBdat = Self.inTransaction()
        _ = dataAfterBdat.handle(.bdat(size: 1, last: false))
        #expect(Self.code(dataAfterBdat.handle(.data)) == "503 5.5.1")
    }

    @Test func dataWithoutAcceptedRecipients() {
        var session = Self.session()
        _ = session.handle(.ehlo("x"))
        _ = session.handle(.mail(from: "a@b", parameters: []))
        session.mailResult(accepted: true)
        #expect(session.handle(.rcpt(to: "c@d", parameters: [])) == .forwardRecipient(to: "c@d", parameters: []))
        session.recipientResult(accepted: false)
        #expect(Self.code(session.handle(.data)) == "554 5.5.1")
        #expect(Self.code(session.handle(.bdat(size: 5, last: true))) == "554 5.5.1")
    }

    @Test func refusedMailEndsTheTransaction() {
        var session = Self.session()
        _ = session.handle(.ehlo("x"))
        _ = session.handle(.mail(from: "a@b", parameters: []))
        session.mailResult(accepted: false)
        #expect(session.state == .greeted)
        #expect(Self.code(session.handle(.rcpt(to: "c@d", parameters: []))) == "503 5.5.1")
    }

    @Test func recipientLimit() {
        var session = Self.inTransaction()
        #expect(session.handle(.rcpt(to: "e@f", parameters: [])) == .forwardRecipient(to: "e@f", parameters: []))
        session.recipientResult(accepted: true)
        #expect(Self.code(session.handle(.rcpt(to: "g@h", parameters: []))) == "452 4.5.3")
        #expect(session.acceptedRecipients == 2)
    }

    @Test func mailParameters() {
        func mail(_ parameters: [SMTPParameter], helo: Bool = false) -> String {
            var session = Self.session { $0.capabilities.dsn = false }
            _ = session.handle(helo ? .helo("x") : .ehlo("x"))
            let action = session.handle(.mail(from: "a@b", parameters: parameters))
            return action == .forwardMail(from: "a@b", parameters: parameters) ? "forward" : Self.code(action)
        }
        #expect(mail([SMTPParameter("SIZE", "1000"), SMTPParameter("BODY", "8bitmime")]) == "forward")
        #expect(mail([SMTPParameter("BODY", "7BIT")]) == "forward")
        #expect(mail([SMTPParameter("SMTPUTF8")]) == "forward")
        #expect(mail([SMTPParameter("SIZE", "1001")]) == "552 5.3.4")
        #expect(mail([SMTPParameter("SIZE", "99999999999999999999999999")]) == "552 5.3.4")
        #expect(mail([SMTPParameter("SIZE", "ten")]) == "501 5.5.4")
        #expect(mail([SMTPParameter("SIZE")]) == "501 5.5.4")
        #expect(mail([SMTPParameter("BODY", "BINARYMIME")]) == "555 5.5.4")
        #expect(mail([SMTPParameter("BODY", "9BIT")]) == "501 5.5.4")
        #expect(mail([SMTPParameter("SMTPUTF8", "yes")]) == "501 5.5.4")
        #expect(mail([SMTPParameter("RET", "FULL")]) == "555 5.5.4")
        #expect(mail([SMTPParameter("AUTH", "<>")]) == "555 5.5.4")
        #expect(mail([SMTPParameter("XYZ")]) == "555 5.5.4")
        #expect(mail([SMTPParameter("SIZE", "10")], helo: true) == "555 5.5.4")
        #expect(mail([], helo: true) == "forward")
    }

    @Test func smtpUTF8Transactions() {
        var session = Self.session()
        _ = session.handle(.ehlo("x"))
        #expect(Self.code(session.handle(.mail(from: "ü@b", parameters: []))) == "553 5.6.7")
        #expect(
            session.handle(.mail(from: "ü@b", parameters: [SMTPParameter("SMTPUTF8")]))
                == .forwardMail(from: "ü@b", parameters: [SMTPParameter("SMTPUTF8")]))
        #expect(session.isSMTPUTF8Transaction)
        session.mailResult(accepted: true)
        #expect(session.handle(.rcpt(to: "ü@d", parameters: [])) == .forwardRecipient(to: "ü@d", parameters: []))
        _ = session.handle(.rset)
        #expect(!session.isSMTPUTF8Transaction)
        _ = session.handle(.mail(from: "a@b", parameters: []))
        session.mailResult(accepted: true)
        #expect(Self.code(session.handle(.rcpt(to: "ü@d", parameters: []))) == "553 5.6.7")

        var plain = Self.session { $0.capabilities.smtpUTF8 = false }
        _ = plain.handle(.ehlo("x"))
        #expect(Self.code(plain.handle(.mail(from: "a@b", parameters: [SMTPParameter("SMTPUTF8")]))) == "555 5.5.4")
    }

    @Test func dsnAndBinaryMIME() {
        var session = Self.session {
            $0.capabilities.dsn = true
            $0.capabilities.binaryMIME = true
        }
        _ = session.handle(.ehlo("x"))
        let mailParameters = [
            SMTPParameter("RET", "HDRS"), SMTPParameter("ENVID", "abc"), SMTPParameter("BODY", "BINARYMIME"),
        ]
        #expect(
            session.handle(.mail(from: "a@b", parameters: mailParameters))
                == .forwardMail(from: "a@b", parameters: mailParameters))
        session.mailResult(accepted: true)
        let good = [SMTPParameter("NOTIFY", "SUCCESS,DELAY"), SMTPParameter("ORCPT", "rfc822;c@d")]
        #expect(session.handle(.rcpt(to: "c@d", parameters: good)) == .forwardRecipient(to: "c@d", parameters: good))
        session.recipientResult(accepted: true)
        #expect(
            Self.code(session.handle(.rcpt(to: "e@f", parameters: [SMTPParameter("NOTIFY", "NEVER,SUCCESS")])))
                == "501 5.5.4")
        #expect(
            Self.code(session.handle(.rcpt(to: "e@f", parameters: [SMTPParameter("ORCPT", "plain")]))) == "501 5.5.4")
        #expect(Self.code(session.handle(.data)) == "503 5.5.1")  // BINARYMIME needs BDAT
        #expect(session.handle(.bdat(size: 3, last: true)) == .chunk(size: 3, last: true))
    }

    @Test func bdatLimitsAndRefusals() {
        var unavailable = Self.session { $0.capabilities.chunking = false }
        _ = unavailable.handle(.ehlo("x"))
        #expect(Self.code(unavailable.handle(.bdat(size: 1, last: true))) == "502 5.5.1")

        var session = Self.inTransaction()
        #expect(session.handle(.bdat(size: 999, last: false)) == .chunk(size: 999, last: false))
        #expect(Self.code(session.handle(.bdat(size: 2, last: false))) == "552 5.3.4")
        #expect(Self.code(session.handle(.bdat(size: 0, last: false))) == "503 5.5.1")
        #expect(Self.code(session.handle(.bdat(size: 0, last: true))) == "503 5.5.1")
        #expect(session.state == .greeted)  // the refused LAST chunk ended the transaction

        var huge = Self.session {
            $0.maximumMessageSize = nil; $0.capabilities.size = 0
        }
        _ = huge.handle(.ehlo("x"))
        _ = huge.handle(.mail(from: "a@b", parameters: []))
        huge.mailResult(accepted: true)
        _ = huge.handle(.rcpt(to: "c@d", parameters: []))
        huge.recipientResult(accepted: true)
        for _ in 0..<20 {
            #expect(
                huge.handle(.bdat(size: 999_999_999_999_999_999, last: false))
                    == .chunk(size: 999_999_999_999_999_999, last: false))
        }
    }

    @Test func localAnswers() {
        var session = Self.session()
        #expect(session.handle(.noop) == .reply(.ok()))
        #expect(Self.code(session.handle(.vrfy("x"))) == "252 2.5.2")
        #expect(Self.code(session.handle(.expn("x"))) == "502 5.5.1")
        #expect(Self.code(session.handle(.help(nil))) == "214 2.0.0")
        #expect(session.handle(.rset) == .reset)
        #expect(Self.code(session.handle(.xforward([SMTPParameter("NAME", "x")]))) == "502 5.5.1")
        #expect(session.handle(.quit) == .quit)
        #expect(session.state == .quitting)
        #expect(Self.code(session.handle(.noop)) == "503 5.5.1")
    }

    @Test func ehloResetsATransaction() {
        var session = Self.inTransaction()
        _ = session.handle(.ehlo("again"))
        #expect(session.state == .greeted)
        #expect(session.acceptedRecipients == 0)
    }

    @Test func startTLS() {
        var session = Self.session { $0.requireTLS = true }
        _ = session.handle(.ehlo("x"))
        #expect(Self.code(session.handle(.mail(from: "a@b", parameters: []))) == "530 5.7.0")
        #expect(session.handle(.starttls) == .startTLS)
        session.tlsEstablished()
        #expect(session.hasTLS && session.state == .connected)
        #expect(Self.code(session.handle(.mail(from: "a@b", parameters: []))) == "503 5.5.1")  // EHLO again first
        guard case .reply(let ehlo) = session.handle(.ehlo("x")) else { return }
        #expect(!SMTPCapabilities(ehloReply: ehlo).startTLS)
        #expect(Self.code(session.handle(.starttls)) == "503 5.5.1")
        #expect(session.handle(.mail(from: "a@b", parameters: [])) == .forwardMail(from: "a@b", parameters: []))

        var unoffered = Self.session { $0.capabilities.startTLS = false }
        #expect(Self.code(unoffered.handle(.starttls)) == "502 5.5.1")
    }

    @Test func auth() {
        var session = Self.session {
            $0.capabilities.auth = ["PLAIN", "LOGIN"]
            $0.authRequired = true
        }
        guard case .reply(let plainEHLO) = session.handle(.ehlo("x")) else { return }
        #expect(SMTPCapabilities(ehloReply: plainEHLO).auth.isEmpty)  // hidden before TLS
        #expect(Self.code(session.handle(.auth(mechanism: "PLAIN", initialResponse: nil))) == "538 5.7.11")
        #expect(Self.code(session.handle(.mail(from: "a@b", parameters: []))) == "530 5.7.0")
        _ = session.handle(.starttls)
        session.tlsEstablished()
        guard case .reply(let tlsEHLO) = session.handle(.ehlo("x")) else { return }
        #expect(SMTPCapabilities(ehloReply: tlsEHLO).auth == ["PLAIN", "LOGIN"])
        #expect(Self.code(session.handle(.auth(mechanism: "CRAM-MD5", initialResponse: nil))) == "504 5.5.4")
        #expect(
            session.handle(.auth(mechanism: "PLAIN", initialResponse: "AA=="))
                == .authenticate(mechanism: "PLAIN", initialResponse: "AA=="))
        session.authenticated("alice")
        #expect(Self.code(session.handle(.auth(mechanism: "PLAIN", initialResponse: nil))) == "503 5.5.1")
        #expect(
            session.handle(.mail(from: "a@b", parameters: [SMTPParameter("AUTH", "<>")]))
                == .forwardMail(from: "a@b", parameters: [SMTPParameter("AUTH", "<>")]))

        var withoutTLS = Self.session {
            $0.capabilities.auth = ["PLAIN"]
            $0.offerAuthWithoutTLS = true
        }
        _ = withoutTLS.handle(.ehlo("x"))
        #expect(
            withoutTLS.handle(.auth(mechanism: "PLAIN", initialResponse: nil))
                == .authenticate(mechanism: "PLAIN", initialResponse: nil))
        var disabled = Self.session()
        _ = disabled.handle(.ehlo("x"))
        #expect(Self.code(disabled.handle(.auth(mechanism: "PLAIN", initialResponse: nil))) == "503 5.5.1")
    }

    @Test func xclientAndXforward() {
        var session = Self.session {
            $0.capabilities.xclient = ["ADDR", "NAME"]
            $0.capabilities.xforward = ["NAME"]
        }
        _ = session.handle(.ehlo("x"))
        #expect(Self.code(session.handle(.xclient([SMTPParameter("HELO", "x")]))) == "501 5.5.4")
        #expect(
            session.handle(.xclient([SMTPParameter("ADDR", "192.0.2.1")]))
                == .xclient([SMTPParameter("ADDR", "192.0.2.1")]))
        session.xclientAccepted()
        #expect(session.state == .connected)
        _ = session.handle(.ehlo("x"))
        #expect(session.handle(.xforward([SMTPParameter("NAME", "mx")])) == .xforward([SMTPParameter("NAME", "mx")]))
        _ = session.handle(.mail(from: "a@b", parameters: []))
        #expect(Self.code(session.handle(.xclient([SMTPParameter("ADDR", "192.0.2.1")]))) == "503 5.5.1")
    }
}
