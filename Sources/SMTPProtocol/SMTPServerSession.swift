/// RFC 5321 command order for one inbound session: answers what can be answered locally and says what the relay
/// must ask the next hop. Pure state, no I/O.
public struct SMTPServerSession: Sendable {
    /// What this server offers and enforces.
    public struct Configuration: Sendable {
        /// Our name in the greeting and the EHLO reply.
        public var hostname: String
        /// What EHLO advertises (STARTTLS is hidden once TLS is on, AUTH before it unless `offerAuthWithoutTLS`).
        public var capabilities: SMTPCapabilities
        /// Accepted recipients per transaction; more get 452 4.5.3 (RFC 5321 §4.5.3.1.8).
        public var maximumRecipients: Int
        /// Largest message in octets, checked against MAIL's SIZE and BDAT totals; nil for none.
        public var maximumMessageSize: Int?
        /// MAIL needs TLS first (530 5.7.0).
        public var requireTLS: Bool
        /// MAIL needs AUTH first (530 5.7.0).
        public var authRequired: Bool
        /// Advertise and accept AUTH on a plaintext connection (RFC 4954 §4 discourages it).
        public var offerAuthWithoutTLS: Bool

        public init(
            hostname: String, capabilities: SMTPCapabilities, maximumRecipients: Int = 1000,
            maximumMessageSize: Int? = nil, requireTLS: Bool = false, authRequired: Bool = false,
            offerAuthWithoutTLS: Bool = false
        ) {
            self.hostname = hostname
            self.capabilities = capabilities
            self.maximumRecipients = maximumRecipients
            self.maximumMessageSize = maximumMessageSize
            self.requireTLS = requireTLS
            self.authRequired = authRequired
            self.offerAuthWithoutTLS = offerAuthWithoutTLS
        }
    }

    /// Where the session is in RFC 5321's order.
    public enum State: Sendable, Hashable {
        /// No EHLO or HELO yet (again, after STARTTLS or XCLIENT).
        case connected
        /// Greeted, no transaction.
        case greeted
        /// MAIL forwarded or accepted, no recipient accepted yet.
        case mail
        /// At least one recipient accepted.
        case recipients
        /// Reading DATA content.
        case data
        /// Inside a BDAT sequence.
        case bdat
        /// QUIT received.
        case quitting
    }

    /// What the relay does with a command.
    public enum Action: Sendable, Hashable {
        /// Answer locally with this reply.
        case reply(SMTPReply)
        /// Local checks passed; ask the next hop, then report with `mailResult(accepted:)`.
        case forwardMail(from: String, parameters: [SMTPParameter])
        /// Local checks passed; ask the next hop, then report with `recipientResult(accepted:)`.
        case forwardRecipient(to: String, parameters: [SMTPParameter])
        /// DATA accepted: reply 354, call the framer's `startMessageData()`, then `messageFinished()` at the end.
        case startData
        /// A BDAT chunk was accepted; its bytes follow. `messageFinished()` after the LAST one.
        case chunk(size: Int, last: Bool)
        /// RSET: reset the next hop too, then reply 250 2.0.0.
        case reset
        /// Reply 220, hand the framer's buffered bytes to `startTLS(discarding:)`, handshake, `tlsEstablished()`.
        case startTLS
        case authenticate(mechanism: String, initialResponse: String?)
        /// Apply the attributes, reply 220 and call `xclientAccepted()`, or refuse.
        case xclient([SMTPParameter])
        /// Remember the attributes for the next transaction and reply 250 2.0.0 (Postfix XFORWARD).
        case xforward([SMTPParameter])
        /// Reply 221 2.0.0 and close.
        case quit
    }

    public let configuration: Configuration
    public internal(set) var state = State.connected
    public private(set) var hasTLS = false
    /// The identity given to `authenticated(_:)`.
    public private(set) var authenticatedIdentity: String?
    /// The client greeted with EHLO (not HELO), so extensions may be used.
    public internal(set) var isExtended = false
    var transaction = Transaction()

    /// What one mail transaction has used so far.
    struct Transaction: Sendable {
        var isSMTPUTF8 = false
        var isBinaryMIME = false
        var acceptedRecipients = 0
        var pendingRecipients = 0
        var chunkedOctets = 0
        /// A BDAT chunk was refused: the rest are refused too (RFC 3030 §2).
        var chunkRefused = false
    }

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// MAIL carried SMTPUTF8 (RFC 6531), for the framer's `isSMTPUTF8`.
    public var isSMTPUTF8Transaction: Bool { transaction.isSMTPUTF8 }

    /// Recipients the next hop accepted in this transaction.
    public var acceptedRecipients: Int { transaction.acceptedRecipients }

    /// The banner: 220 hostname ESMTP.
    public func greeting() -> SMTPReply {
        SMTPReply(code: 220, nil, "\(configuration.hostname) ESMTP")
    }

    /// The capabilities as EHLO advertises them now.
    public var advertisedCapabilities: SMTPCapabilities {
        var capabilities = configuration.capabilities
        if hasTLS { capabilities.startTLS = false }
        if !hasTLS && !configuration.offerAuthWithoutTLS { capabilities.auth = [] }
        return capabilities
    }

    /// The next hop answered MAIL; a refusal ends the transaction.
    public mutating func mailResult(accepted: Bool) {
        if !accepted && state == .mail { endTransaction() }
    }

    /// The next hop answered RCPT.
    public mutating func recipientResult(accepted: Bool) {
        transaction.pendingRecipients = max(0, transaction.pendingRecipients - 1)
        guard accepted else { return }
        transaction.acceptedRecipients += 1
        if state == .mail { state = .recipients }
    }

    /// The end of data or BDAT LAST was answered, whatever the reply: the transaction is over.
    public mutating func messageFinished() {
        endTransaction()
    }

    /// The TLS handshake succeeded: RFC 3207 §4.2 wants everything learnt before forgotten, EHLO again.
    public mutating func tlsEstablished() {
        hasTLS = true
        state = .connected
        isExtended = false
        authenticatedIdentity = nil
        transaction = Transaction()
    }

    /// AUTH succeeded.
    public mutating func authenticated(_ identity: String) {
        authenticatedIdentity = identity
    }

    /// XCLIENT was applied: Postfix semantics, the client starts over with EHLO.
    public mutating func xclientAccepted() {
        state = .connected
        isExtended = false
        transaction = Transaction()
    }

    mutating func endTransaction() {
        if state != .connected && state != .quitting { state = .greeted }
        transaction = Transaction()
    }
}
