/// RFC 5321 command order for one inbound session: answers what can be answered locally and says what the
/// relay must ask the next hop. Pure state, no I/O.
public struct SMTPServerSession: Sendable {
    /// What this server offers.
    public struct Configuration: Sendable {
        public var hostname: String
        public var capabilities: SMTPCapabilities
        public var maximumRecipients: Int
        public var maximumMessageSize: Int?
        public var requireTLS = false
        public var authRequired = false

        public init(hostname: String, capabilities: SMTPCapabilities, maximumRecipients: Int, maximumMessageSize: Int?) {
            self.hostname = hostname
            self.capabilities = capabilities
            self.maximumRecipients = maximumRecipients
            self.maximumMessageSize = maximumMessageSize
        }
    }

    /// Where the session is.
    public enum State: Sendable, Hashable {
        case connected, greeted, mail, recipients, data, bdat
    }

    /// What the relay does with a command.
    public enum Action: Sendable, Hashable {
        case reply(SMTPReply)
        case forwardMail(from: String, parameters: [SMTPParameter])
        case forwardRecipient(to: String, parameters: [SMTPParameter])
        /// Reply 354 and read the content.
        case startData
        /// A BDAT chunk was accepted; its bytes follow.
        case chunk(size: Int, last: Bool)
        case reset
        case startTLS
        case authenticate(mechanism: String, initialResponse: String?)
        case xclient([SMTPParameter])
        case quit
    }

    public private(set) var state = State.connected
    public private(set) var hasTLS = false
    public private(set) var authenticatedAs: String?
    public private(set) var isSMTPUTF8Transaction = false
    private var usedESMTP = false
    private var acceptedRecipients = 0
    private var requestedRecipients = 0
    private var chunkedBytes = 0
    private let configuration: Configuration

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    public func greeting() -> SMTPReply {
        SMTPReply(code: 220, nil, "\(configuration.hostname) ESMTP Signet")
    }

    private static func badSequence(_ text: String) -> Action {
        .reply(SMTPReply(code: 503, EnhancedStatusCode(5, 5, 1), text))
    }

    private var advertised: SMTPCapabilities {
        var capabilities = configuration.capabilities
        if hasTLS { capabilities.startTLS = false }
        return capabilities
    }

    public mutating func handle(_ command: SMTPCommand) -> Action {
        switch command {
        case .ehlo, .helo:
            resetTransaction()
            state = .greeted
            if case .ehlo = command {
                usedESMTP = true
                return .reply(advertised.ehloReply(domain: configuration.hostname, greeting: "at your service"))
            }
            usedESMTP = false
            return .reply(SMTPReply(code: 250, nil, configuration.hostname))
        case .mail(let from, let parameters):
            guard state != .connected else { return Self.badSequence("send EHLO or HELO first") }
            guard state == .greeted else { return Self.badSequence("nested MAIL command") }
            if configuration.requireTLS && !hasTLS {
                return .reply(SMTPReply(code: 530, EnhancedStatusCode(5, 7, 0), "must issue a STARTTLS command first"))
            }
            if configuration.authRequired && authenticatedAs == nil {
                return .reply(SMTPReply(code: 530, EnhancedStatusCode(5, 7, 0), "authentication required"))
            }
            var utf8 = false
            for parameter in parameters {
                switch parameter.keyword {
                case "SIZE":
                    guard usedESMTP, advertised.size != nil, let value = parameter.value, let size = Int(value), size >= 0
                    else { return unsupported(parameter) }
                    if let limit = configuration.maximumMessageSize, size > limit {
                        return .reply(SMTPReply(code: 552, EnhancedStatusCode(5, 3, 4), "message size exceeds fixed limit of \(limit) bytes"))
                    }
                case "BODY":
                    let value = parameter.value?.uppercased()
                    guard usedESMTP, value == "7BIT" || (value == "8BITMIME" && advertised.eightBitMIME)
                        || (value == "BINARYMIME" && advertised.binaryMIME)
                    else { return unsupported(parameter) }
                case "SMTPUTF8":
                    guard usedESMTP, advertised.smtpUTF8, parameter.value == nil else { return unsupported(parameter) }
                    utf8 = true
                case "AUTH":
                    guard usedESMTP else { return unsupported(parameter) }
                default:
                    return unsupported(parameter)
                }
            }
            if !utf8 && from.utf8.contains(where: { $0 >= 0x80 }) {
                return .reply(SMTPReply(code: 553, EnhancedStatusCode(5, 6, 7), "non-ASCII address needs SMTPUTF8"))
            }
            isSMTPUTF8Transaction = utf8
            state = .mail
            return .forwardMail(from: from, parameters: parameters)
        case .rcpt(let to, let parameters):
            guard state == .mail || state == .recipients else { return Self.badSequence("need MAIL before RCPT") }
            guard parameters.isEmpty || usedESMTP else { return unsupported(parameters[0]) }
            if let parameter = parameters.first(where: { !["NOTIFY", "ORCPT"].contains($0.keyword) || !advertised.dsn }) {
                return unsupported(parameter)
            }
            if !isSMTPUTF8Transaction && to.utf8.contains(where: { $0 >= 0x80 }) {
                return .reply(SMTPReply(code: 553, EnhancedStatusCode(5, 6, 7), "non-ASCII address needs SMTPUTF8"))
            }
            guard requestedRecipients < configuration.maximumRecipients else {
                return .reply(SMTPReply(code: 452, EnhancedStatusCode(4, 5, 3), "too many recipients"))
            }
            requestedRecipients += 1
            return .forwardRecipient(to: to, parameters: parameters)
        case .data:
            guard state != .bdat else { return Self.badSequence("DATA cannot follow BDAT in one transaction") }
            guard state == .recipients, acceptedRecipients > 0 else {
                return state == .mail
                    ? .reply(SMTPReply(code: 554, EnhancedStatusCode(5, 5, 1), "no valid recipients"))
                    : Self.badSequence("need RCPT before DATA")
            }
            state = .data
            return .startData
        case .bdat(let size, let last):
            guard advertised.chunking && usedESMTP else {
                return .reply(SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), "BDAT not available"))
            }
            guard (state == .recipients && acceptedRecipients > 0) || state == .bdat else {
                return state == .mail
                    ? .reply(SMTPReply(code: 554, EnhancedStatusCode(5, 5, 1), "no valid recipients"))
                    : Self.badSequence("need RCPT before BDAT")
            }
            chunkedBytes += size
            if let limit = configuration.maximumMessageSize, chunkedBytes > limit {
                resetTransaction()
                state = .greeted
                return .reply(SMTPReply(code: 552, EnhancedStatusCode(5, 3, 4), "message size exceeds fixed limit of \(limit) bytes"))
            }
            state = .bdat
            return .chunk(size: size, last: last)
        case .rset:
            if state != .connected { state = .greeted }
            resetTransaction()
            return .reset
        case .noop:
            return .reply(SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "OK"))
        case .quit:
            return .quit
        case .vrfy:
            return .reply(SMTPReply(code: 252, EnhancedStatusCode(2, 5, 2), "cannot VRFY user, but will accept message"))
        case .expn:
            return .reply(SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), "EXPN not available"))
        case .help:
            return .reply(SMTPReply(code: 214, EnhancedStatusCode(2, 0, 0), "see RFC 5321"))
        case .starttls:
            guard advertised.startTLS else { return .reply(SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), "STARTTLS not available")) }
            guard state == .greeted || state == .connected else { return Self.badSequence("STARTTLS inside a transaction") }
            return .startTLS
        case .auth(let mechanism, let initialResponse):
            guard usedESMTP, advertised.auth.contains(mechanism) else {
                return .reply(SMTPReply(code: 504, EnhancedStatusCode(5, 5, 4), "unrecognized authentication type"))
            }
            guard authenticatedAs == nil else { return Self.badSequence("already authenticated") }
            guard state == .greeted else { return Self.badSequence("AUTH not allowed now") }
            return .authenticate(mechanism: mechanism, initialResponse: initialResponse)
        case .xclient(let parameters):
            guard advertised.xclient != nil, state == .greeted else {
                return .reply(SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), "XCLIENT not available"))
            }
            return .xclient(parameters)
        case .xforward:
            return .reply(SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), "XFORWARD not available"))
        }
    }

    private func unsupported(_ parameter: SMTPParameter) -> Action {
        .reply(SMTPReply(code: 555, EnhancedStatusCode(5, 5, 4), "unsupported parameter \(parameter.keyword)"))
    }

    private mutating func resetTransaction() {
        acceptedRecipients = 0
        requestedRecipients = 0
        chunkedBytes = 0
        isSMTPUTF8Transaction = false
    }

    public mutating func mailResult(accepted: Bool) {
        if !accepted {
            state = .greeted
            resetTransaction()
        }
    }

    public mutating func recipientResult(accepted: Bool) {
        if accepted {
            acceptedRecipients += 1
            state = .recipients
        }
    }

    /// The transaction ended (whatever the reply).
    public mutating func messageFinished() {
        state = .greeted
        resetTransaction()
    }

    public mutating func tlsEstablished() {
        hasTLS = true
        state = .connected
        resetTransaction()
    }

    public mutating func authenticated(_ identity: String) {
        authenticatedAs = identity
    }
}
