// How the session answers each command: order rules of RFC 5321 §4.1.4 and the extensions, replies as Postfix gives them.

extension SMTPServerSession {
    /// Checks `command` against the session's state and says what to do with it.
    public mutating func handle(_ command: SMTPCommand) -> Action {
        if state == .quitting { return .reply(.badSequence("QUIT already received")) }
        switch command {
        case .ehlo, .helo:
            // RFC 5321 §4.1.4: a new EHLO or HELO resets any transaction as RSET would.
            endTransaction()
            state = .greeted
            if case .ehlo = command {
                isExtended = true
                return .reply(advertisedCapabilities.ehloReply(domain: configuration.hostname, greeting: ""))
            }
            isExtended = false
            return .reply(SMTPReply(code: 250, nil, configuration.hostname))
        case .mail(let from, let parameters):
            return mail(from: from, parameters: parameters)
        case .rcpt(let to, let parameters):
            return recipient(to: to, parameters: parameters)
        case .data:
            return data()
        case .bdat(let size, let last):
            return chunk(size: size, last: last)
        case .rset:
            endTransaction()
            return .reset
        case .noop:
            return .reply(.ok())
        case .quit:
            state = .quitting
            return .quit
        case .vrfy:
            // RFC 5321 §3.5.3: 252 when we will not say, rather than a refusal.
            return .reply(
                SMTPReply(code: 252, EnhancedStatusCode(2, 5, 2), "cannot VRFY user, but will accept message"))
        case .expn:
            return .reply(.notImplemented("EXPN not available"))
        case .help:
            return .reply(
                SMTPReply(code: 214, EnhancedStatusCode(2, 0, 0), "see https://www.rfc-editor.org/rfc/rfc5321"))
        case .starttls:
            return startTLS()
        case .auth(let mechanism, let initialResponse):
            return auth(mechanism: mechanism, initialResponse: initialResponse)
        case .xclient(let attributes):
            guard let names = advertisedCapabilities.xclient else {
                return .reply(.notImplemented("XCLIENT not available"))
            }
            if let problem = checkAttributes(attributes, names: names, command: "XCLIENT") { return problem }
            return .xclient(attributes)
        case .xforward(let attributes):
            guard let names = advertisedCapabilities.xforward else {
                return .reply(.notImplemented("XFORWARD not available"))
            }
            if let problem = checkAttributes(attributes, names: names, command: "XFORWARD") { return problem }
            return .xforward(attributes)
        }
    }

    private var isInTransaction: Bool { state != .connected && state != .greeted }

    private func checkAttributes(_ attributes: [SMTPParameter], names: [String], command: String) -> Action? {
        guard !isInTransaction else { return .reply(.badSequence("MAIL transaction in progress")) }
        if let bad = attributes.first(where: { !names.contains($0.keyword) }) {
            return .reply(
                SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), "bad \(command) attribute name: \(bad.keyword)"))
        }
        return nil
    }

    private func unsupported(_ parameter: SMTPParameter) -> Action {
        .reply(SMTPReply(code: 555, EnhancedStatusCode(5, 5, 4), "unsupported parameter \(parameter.keyword)"))
    }

    private func badParameter(_ parameter: SMTPParameter) -> Action {
        .reply(SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), "bad value of parameter \(parameter.keyword)"))
    }

    private static let tooBig = SMTPReply(code: 552, EnhancedStatusCode(5, 3, 4), "message size exceeds fixed limit")
    private static let needsSMTPUTF8 = SMTPReply(
        code: 553, EnhancedStatusCode(5, 6, 7), "non-ASCII address needs SMTPUTF8")

    /// The size limit MAIL's SIZE and BDAT totals are held to.
    private var sizeLimit: Int? {
        if let limit = configuration.maximumMessageSize { return limit }
        if let size = configuration.capabilities.size, size > 0 { return size }
        return nil
    }

    private mutating func mail(from: String, parameters: [SMTPParameter]) -> Action {
        switch state {
        case .connected: return .reply(.badSequence("send EHLO or HELO first"))
        case .greeted: break
        default: return .reply(.badSequence("nested MAIL command"))
        }
        if configuration.requireTLS && !hasTLS {
            return .reply(SMTPReply(code: 530, EnhancedStatusCode(5, 7, 0), "must issue a STARTTLS command first"))
        }
        if configuration.authRequired && authenticatedIdentity == nil {
            return .reply(SMTPReply(code: 530, EnhancedStatusCode(5, 7, 0), "authentication required"))
        }
        let offered = advertisedCapabilities
        var next = Transaction()
        for parameter in parameters {
            // After HELO no extension was advertised, so none may be used (RFC 5321 §4.1.1.1).
            guard isExtended else { return unsupported(parameter) }
            switch parameter.keyword {
            case "SIZE":
                guard offered.size != nil else { return unsupported(parameter) }
                guard let value = parameter.value, value.utf8.allSatisfy(\.isASCIIDigit) else {
                    return badParameter(parameter)
                }
                // More than 18 digits is more than any limit; Int(value) would not even hold it.
                if let limit = sizeLimit, value.utf8.count > 18 || (Int(value) ?? Int.max) > limit {
                    return .reply(Self.tooBig)
                }
            case "BODY":
                switch parameter.value?.uppercased() {
                case "7BIT": break
                case "8BITMIME": guard offered.eightBitMIME else { return unsupported(parameter) }
                case "BINARYMIME":
                    guard offered.binaryMIME && offered.chunking else { return unsupported(parameter) }
                    next.isBinaryMIME = true
                default: return badParameter(parameter)
                }
            case "SMTPUTF8":
                guard offered.smtpUTF8 else { return unsupported(parameter) }
                guard parameter.value == nil else { return badParameter(parameter) }
                next.isSMTPUTF8 = true
            case "AUTH":
                guard !offered.auth.isEmpty else { return unsupported(parameter) }
                guard parameter.value != nil else { return badParameter(parameter) }
            case "RET":
                guard offered.dsn else { return unsupported(parameter) }
                guard ["FULL", "HDRS"].contains(parameter.value?.uppercased()) else { return badParameter(parameter) }
            case "ENVID":
                guard offered.dsn else { return unsupported(parameter) }
                guard parameter.value != nil else { return badParameter(parameter) }
            default:
                return unsupported(parameter)
            }
        }
        if !next.isSMTPUTF8 && from.containsNonASCII { return .reply(Self.needsSMTPUTF8) }
        transaction = next
        state = .mail
        return .forwardMail(from: from, parameters: parameters)
    }

    private mutating func recipient(to: String, parameters: [SMTPParameter]) -> Action {
        guard state == .mail || state == .recipients else { return .reply(.badSequence("need MAIL command")) }
        let offered = advertisedCapabilities
        for parameter in parameters {
            guard isExtended else { return unsupported(parameter) }
            switch parameter.keyword {
            case "NOTIFY":
                guard offered.dsn else { return unsupported(parameter) }
                let values = (parameter.value ?? "").uppercased().split(
                    separator: ",", omittingEmptySubsequences: false)
                let valid =
                    values == ["NEVER"]
                    || (!values.isEmpty && values.allSatisfy { ["SUCCESS", "FAILURE", "DELAY"].contains($0) })
                guard valid else { return badParameter(parameter) }
            case "ORCPT":
                guard offered.dsn else { return unsupported(parameter) }
                guard let value = parameter.value, value.contains(";") else { return badParameter(parameter) }
            default:
                return unsupported(parameter)
            }
        }
        if !transaction.isSMTPUTF8 && to.containsNonASCII { return .reply(Self.needsSMTPUTF8) }
        guard transaction.acceptedRecipients + transaction.pendingRecipients < configuration.maximumRecipients else {
            return .reply(SMTPReply(code: 452, EnhancedStatusCode(4, 5, 3), "too many recipients"))
        }
        transaction.pendingRecipients += 1
        return .forwardRecipient(to: to, parameters: parameters)
    }

    private mutating func data() -> Action {
        switch state {
        case .recipients:
            // RFC 3030 §3: BINARYMIME content cannot be sent with DATA.
            guard !transaction.isBinaryMIME else { return .reply(.badSequence("BODY=BINARYMIME needs BDAT")) }
            state = .data
            return .startData
        case .mail:
            // RFC 5321 §3.3: 554 when every recipient was refused.
            return .reply(SMTPReply(code: 554, EnhancedStatusCode(5, 5, 1), "no valid recipients"))
        case .bdat:
            return .reply(.badSequence("DATA cannot follow BDAT"))
        default:
            return .reply(.badSequence("need RCPT command"))
        }
    }

    /// The framer reads the chunk whatever is answered here (RFC 3030 §2), so every refusal is safe.
    private mutating func chunk(size: Int, last: Bool) -> Action {
        guard isExtended && advertisedCapabilities.chunking else {
            return .reply(.notImplemented("BDAT not available"))
        }
        switch state {
        case .recipients, .bdat: break
        case .mail: return .reply(SMTPReply(code: 554, EnhancedStatusCode(5, 5, 1), "no valid recipients"))
        case .data: return .reply(.badSequence("BDAT cannot follow DATA"))
        default: return .reply(.badSequence("need RCPT command"))
        }
        state = .bdat
        // Sizes have at most 18 digits, but many of them could still add up past Int.max.
        let (total, overflow) = transaction.chunkedOctets.addingReportingOverflow(size)
        transaction.chunkedOctets = overflow ? Int.max : total
        if transaction.chunkRefused || (sizeLimit.map { transaction.chunkedOctets > $0 } ?? false) {
            let reply = transaction.chunkRefused ? .badSequence("an earlier chunk was refused, send RSET") : Self.tooBig
            transaction.chunkRefused = true
            // The LAST chunk ends the transaction whatever the answer; the relay learns nothing more to report.
            if last { endTransaction() }
            return .reply(reply)
        }
        return .chunk(size: size, last: last)
    }

    private func startTLS() -> Action {
        guard configuration.capabilities.startTLS else { return .reply(.notImplemented("STARTTLS not available")) }
        guard !hasTLS else { return .reply(.badSequence("TLS already active")) }
        guard !isInTransaction else { return .reply(.badSequence("MAIL transaction in progress")) }
        return .startTLS
    }

    private func auth(mechanism: String, initialResponse: String?) -> Action {
        guard isExtended, !configuration.capabilities.auth.isEmpty else {
            return .reply(.badSequence("authentication not enabled"))
        }
        let offered = advertisedCapabilities.auth
        guard !offered.isEmpty else {
            return .reply(SMTPReply(code: 538, EnhancedStatusCode(5, 7, 11), "encryption required for authentication"))
        }
        guard authenticatedIdentity == nil else { return .reply(.badSequence("already authenticated")) }
        guard !isInTransaction else { return .reply(.badSequence("MAIL transaction in progress")) }
        guard offered.contains(mechanism) else {
            return .reply(SMTPReply(code: 504, EnhancedStatusCode(5, 5, 4), "unrecognized authentication type"))
        }
        return .authenticate(mechanism: mechanism, initialResponse: initialResponse)
    }
}
