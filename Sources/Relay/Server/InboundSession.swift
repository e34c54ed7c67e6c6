import ARC
import DKIM
import Foundation
import Logging
import MailAuth
import MailMessage
import NIOCore
import SMTPProtocol

/// Everything a session needs that outlives it: configuration, signing table, signer pool, next hop.
final class RelayContext: Sendable {
    let configuration: RelayConfiguration
    let signingTable: SigningTable
    let signerPool: SignerPool
    let nextHop: any NextHop
    let nextHopCapabilities: NextHopCapabilityCache
    let logger: Logger
    let metrics: RelayMetrics
    let nextHopHealth: NextHopHealth
    let security: RelaySecurity
    /// SRS envelope rewriting (MAIL FROM forward, RCPT TO reverse); a no-op unless configured.
    let srs: SRSRewriter
    /// Verification and ARC sealing; nil when neither `authentication.add_results` nor `arc.rules` asks for it.
    let authenticator: MessageAuthenticator?
    /// Where messages above `limits.spool_threshold` are spooled (TMPDIR), read once: `NSTemporaryDirectory()` goes
    /// through FileManager and URL, about 1% of a relayed message's CPU when it ran per message.
    let spoolDirectory = NSTemporaryDirectory()

    init(
        configuration: RelayConfiguration, signingTable: SigningTable, signerPool: SignerPool, nextHop: any NextHop,
        nextHopCapabilities: NextHopCapabilityCache, logger: Logger, metrics: RelayMetrics,
        nextHopHealth: NextHopHealth, security: RelaySecurity = RelaySecurity(), srs: SRSRewriter,
        authenticator: MessageAuthenticator? = nil
    ) {
        self.configuration = configuration
        self.signingTable = signingTable
        self.signerPool = signerPool
        self.nextHop = nextHop
        self.nextHopCapabilities = nextHopCapabilities
        self.logger = logger
        self.metrics = metrics
        self.nextHopHealth = nextHopHealth
        self.security = security
        self.srs = srs
        self.authenticator = authenticator
    }
}

/// One client connection: parses what the client sends, answers locally what it can, asks the next hop the rest
/// and passes its replies back, and signs each message between the two.
struct InboundSession {
    let context: RelayContext
    let peer: String
    private let timer: ClientTimer
    private let drain: SessionDrain
    /// Who the client is, for XCLIENT/XFORWARD to the next hop; a trusted client may restate it.
    private var identity: ClientIdentity

    var framer: SMTPServerFramer
    var session: SMTPServerSession
    /// Read but not yet framed.
    var pending = ByteBuffer()
    var security: InboundSecurity
    private var downstream: (any NextHopSession)?
    private var assembler: MessageAssembler?
    private var messageProblem: SMTPReply?
    private var chunkRefusal: SMTPReply?
    /// When the next hop last heard from this session during the message's content (`timeouts.next_hop_keepalive`).
    private var nextHopQuietSince = NIODeadline.now()
    private var transactionOpen = false {
        didSet { if !transactionOpen { drain.leaveTransaction() } }
    }
    var logger: Logger
    /// Metrics and the log line of the transaction in progress.
    private var transaction: TransactionRecord?
    /// The listen address this connection came in on (for `arc.rules[].listener`).
    private let listener: HostPort?
    /// The client connection's loop; the next-hop connection joins it.
    private let eventLoop: (any EventLoop)?
    /// The same loop as a task executor, for the verification lookups (`MessageAuthenticator`).
    private let executor: EventLoopTaskExecutor?
    /// MAIL FROM and the accepted RCPT TO of the transaction, as the client sent them (sealing rules, SPF).
    private var envelopeSender = ""
    private var envelopeRecipients: [String] = []
    /// SPF of the transaction, started at MAIL FROM.
    private var spfCheck: Task<SPFResult, Never>?
    /// A frame read while looking for RCPTs pipelined behind MAIL that was not one; handled next.
    private var heldFrame: SMTPServerFramer.Frame?

    /// Attribute names Signet accepts from a client in `xclient_networks` (those Postfix sends).
    static let xclientAttributes = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN"]
    static let xforwardAttributes = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"]

    /// `channel` is needed for STARTTLS; `executor`, the channel's loop the session runs on, for the verification
    /// lookups; `trusted`: the client is in `client_networks`.
    init(
        context: RelayContext, peer: SocketAddress?, timer: ClientTimer, drain: SessionDrain = SessionDrain(),
        channel: (any Channel)? = nil, executor: EventLoopTaskExecutor? = nil, trusted: Bool = true
    ) {
        self.context = context
        self.peer = peer?.description ?? "?"
        self.timer = timer
        self.drain = drain
        self.identity = ClientIdentity(peer: peer)
        self.listener = channel?.localAddress.flatMap { address in
            address.ipAddress.flatMap { host in address.port.map { HostPort(host: host, port: $0) } }
        }
        self.eventLoop = channel?.eventLoop
        self.executor = executor
        self.framer = SMTPServerFramer()
        var capabilities = SMTPCapabilities()
        capabilities.pipelining = true
        capabilities.chunking = true
        capabilities.eightBitMIME = true
        capabilities.smtpUTF8 = true
        capabilities.enhancedStatusCodes = true
        capabilities.size = context.configuration.limits.maxMessageSize
        capabilities.startTLS = context.security.serverTLS != nil && channel != nil
        capabilities.auth = context.security.passwords != nil ? ["PLAIN"] : []
        if let peer, context.configuration.xclientNetworks.contains(where: { $0.contains(peer) }) {
            capabilities.xclient = Self.xclientAttributes
            capabilities.xforward = Self.xforwardAttributes
        }
        capabilities = capabilities.offered(inFrontOf: context.nextHopCapabilities.capabilities)
        self.session = SMTPServerSession(
            configuration: SMTPServerSession.Configuration(
                hostname: context.configuration.hostname,
                capabilities: capabilities,
                maximumRecipients: context.configuration.limits.maxRecipients,
                maximumMessageSize: context.configuration.limits.maxMessageSize,
                requireTLS: context.configuration.tls?.require ?? false,
                authRequired: InboundSecurity.authRequired(context.configuration, trusted: trusted),
                offerAuthWithoutTLS: context.configuration.auth?.allowPlaintext ?? false
            )
        )
        self.security = InboundSecurity(channel: channel, isTrustedNetwork: trusted)
        var logger = context.logger
        logger[metadataKey: "peer"] = "\(self.peer)"
        self.logger = logger
    }

    /// Runs the session until the client quits or goes away.
    mutating func run(on client: ClientStreamHandler) async throws {
        let replies = ReplyWriter(client: client)
        try await replies.send(session.greeting())
        defer { logger.debug("session ended") }
        reading: while true {
            while let frame = nextFrame() {
                guard try await handle(frame, replies) else { break reading }
            }
            if drain.shouldClose {
                try await replies.send(SessionDrain.reply(context.configuration.hostname))
                break
            }
            try await replies.flush()
            // Everything read is framed: let go of the receive buffer while waiting, so NIO's pool can reuse it
            // for the next read instead of allocating another one that the connection then keeps.
            if pending.readableBytes == 0 { pending = ByteBuffer() }
            switch framer.mode {
            case .messageData, .chunk: timer.enter(.data)
            default: timer.enter(.command)
            }
            guard var chunk = try await client.next() else { break }
            guard security.plaintextGuard.admit(&chunk) else { continue }
            if pending.readableBytes == 0 {
                pending = chunk  // no copy: frames are slices of what arrived
            } else {
                pending.writeBuffer(&chunk)
            }
        }
        try? await replies.flush()
        await abandonTransaction()
        await closeDownstream()
    }

    /// The frame read ahead and not taken into a pipelined group, else the framer's next.
    private mutating func nextFrame() -> SMTPServerFramer.Frame? {
        if let frame = heldFrame {
            heldFrame = nil
            return frame
        }
        return framer.next(from: &pending)
    }

    /// Hands the next-hop session back when the client leaves: kept for another client (`NextHopConnectionCache`)
    /// when no transaction is open there, else closed.
    private mutating func closeDownstream() async {
        if transactionOpen { await resetDownstream() }
        guard let downstream else { return }
        self.downstream = nil
        await context.nextHop.release(downstream)
    }

    /// RSET at the next hop. A session that does not answer it with 250 is closed: its state is unknown, and it
    /// must not carry another transaction.
    private mutating func resetDownstream() async {
        guard let downstream, downstream.isUsable else { return }
        if !(await downstream.reset()).isPositive {
            await downstream.quit()
            self.downstream = nil
        }
    }

    /// Handles one frame; false ends the session.
    private mutating func handle(_ frame: SMTPServerFramer.Frame, _ replies: ReplyWriter) async throws -> Bool {
        switch frame {
        case .command(let command):
            return try await handle(command, replies)
        case .invalidCommand(let error):
            try await replies.send(error.reply)
            // A BDAT line that cannot be parsed leaves no way to find where the next command starts.
            if error.closesConnection { return false }
        case .lineTooLong:
            security.awaitingResponse = false
            try await replies.send(.lineTooLong)
        case .authenticationResponse(let line):
            return try await continueAuthentication(line, replies)
        case .messageData(let data), .chunkData(let data):
            append(data)
            await keepNextHopAwake()
        case .messageEnd:
            try await replies.send(await finishMessage())
        case .chunkEnd(let last):
            if let refusal = chunkRefusal {
                chunkRefusal = nil
                // A refused LAST chunk ends the transaction (RFC 3030 §2): nothing of it may reach the next hop.
                if last { await abandonTransaction() }
                try await replies.send(refusal)
            } else if last {
                try await replies.send(await finishMessage())
            } else {
                try await replies.send(
                    SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "\(assembler?.size ?? 0) octets received so far"))
            }
        }
        return true
    }

    /// `sentWithMail`: for a RCPT that went to the next hop with MAIL, the reply it gave.
    ///
    /// Each branch that waits is a function of its own (kept out of line): an async function's frame holds the
    /// locals of all its branches at once, and the deepest frames a session reaches stay allocated in its task
    /// until the connection closes (4.3 KiB for this one when the branches were inline).
    private mutating func handle(
        _ command: SMTPCommand, _ replies: ReplyWriter, sentWithMail: SMTPReply? = nil
    ) async throws -> Bool {
        switch command {
        case .ehlo(let name), .helo(let name):
            // RFC 5321 §4.1.4: a new greeting resets the transaction, here and at the next hop.
            await abandonTransaction()
            identity.helo = name
            if case .ehlo = command { identity.proto = "ESMTP" } else { identity.proto = "SMTP" }
        default:
            break
        }
        switch session.handle(command) {
        case .reply(let reply):
            try await answerLocally(command, with: reply, replies)
        case .forwardMail(let from, let parameters):
            return try await mail(from: from, parameters: parameters, replies)
        case .forwardRecipient(let recipient, let parameters):
            try await forwardRecipient(recipient, parameters: parameters, sentWithMail: sentWithMail, replies)
        case .startData:
            startMessage()
            framer.startMessageData()
            try await replies.send(SMTPReply(code: 354, nil, "end data with <CR><LF>.<CR><LF>"))
        case .chunk:
            if assembler == nil { startMessage() }
        case .reset:
            await abandonTransaction()
            try await replies.send(SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "reset"))
        case .quit:
            try await replies.send(
                SMTPReply(code: 221, EnhancedStatusCode(2, 0, 0), "\(context.configuration.hostname) closing"))
            return false
        case .startTLS:
            try await replies.flush()
            try await startTLS(replies)
        case .authenticate(let mechanism, let initialResponse):
            return try await startAuthentication(mechanism: mechanism, initialResponse: initialResponse, replies)
        case .xclient(let attributes):
            try await restate(attributes, xclient: true, replies)
        case .xforward(let attributes):
            try await restate(attributes, xclient: false, replies)
        }
        return true
    }

    /// A reply the session gives itself, without the next hop.
    @inline(never)
    private mutating func answerLocally(
        _ command: SMTPCommand, with reply: SMTPReply, _ replies: ReplyWriter
    )
        async throws
    {
        if case .rcpt = command, reply.code == 452 { context.metrics.limitExceeded("recipients") }
        if case .data = command { framer.rejectMessageData() }
        if case .bdat = command {
            chunkRefusal = reply  // RFC 3030: the chunk is read first, then refused
            return
        }
        if case .starttls = command { framer.resumeCommands() }
        try await replies.send(reply)
    }

    /// MAIL, and the RCPTs that went to the next hop with it, handled in order with the replies it gave them.
    @inline(never)
    private mutating func mail(from: String, parameters: [SMTPParameter], _ replies: ReplyWriter) async throws -> Bool {
        let (reply, pipelined) = await forwardMail(from: from, parameters: parameters)
        try await replies.send(reply)
        for (command, reply) in pipelined {
            guard try await handle(command, replies, sentWithMail: reply) else { return false }
        }
        return true
    }

    @inline(never)
    private mutating func forwardRecipient(
        _ recipient: String, parameters: [SMTPParameter], sentWithMail: SMTPReply?, _ replies: ReplyWriter
    ) async throws {
        let to: String
        switch context.srs.recipient(recipient) {
        case .use(let address): to = address
        case .refuse(let reply):
            session.recipientResult(accepted: false)
            try await replies.send(reply)
            return
        }
        guard let downstream, downstream.isUsable else {
            session.recipientResult(accepted: false)
            context.metrics.tempfailed(.nextHopLost)
            try await replies.send(NextHopReplies.lost("before RCPT"))
            return
        }
        // No flush here: a pipelined group's replies go out together when its last command is handled.
        timer.enter(.waitingForUs)
        let reply: SMTPReply
        if let sent = sentWithMail {
            // Sent with MAIL. (Had MAIL been refused, the session would not be here, and the next hop, with no
            // transaction, refused it as well.)
            reply = sent
        } else {
            reply = await downstream.recipient(to: to, parameters: forwardedRecipientParameters(parameters, downstream))
        }
        session.recipientResult(accepted: reply.isPositive)
        context.metrics.passedBack(reply, command: "rcpt", nextHopUsable: downstream.isUsable)
        if reply.isPositive {
            transaction?.recipients += 1
            envelopeRecipients.append(recipient)
        }
        try await replies.send(reply)
    }

    /// XCLIENT or XFORWARD from a trusted MTA in front: who the client really is.
    @inline(never)
    private mutating func restate(_ attributes: [SMTPParameter], xclient: Bool, _ replies: ReplyWriter) async throws {
        var updated = identity
        if let bad = updated.apply(attributes) {
            let verb = xclient ? "XCLIENT" : "XFORWARD"
            try await replies.send(SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), "bad \(verb) \(bad) value"))
            return
        }
        identity = updated
        if xclient {
            session.xclientAccepted()
            logger.debug("XCLIENT", metadata: ["client": "\(identity)"])
            try await replies.send(session.greeting())
        } else {
            try await replies.send(.ok())
        }
    }

    private mutating func resetEnvelope() {
        spfCheck?.cancel()
        spfCheck = nil
        envelopeSender = ""
        envelopeRecipients = []
    }

    /// DSN parameters (RFC 3461), passed on only when the next hop offers DSN.
    private static let dsnParameters: Set<String> = ["RET", "ENVID", "NOTIFY", "ORCPT"]

    /// Drops the transaction in progress, here and at the next hop (RSET, QUIT, a new EHLO, a refused LAST chunk).
    private mutating func abandonTransaction() async {
        assembler = nil
        resetEnvelope()
        messageProblem = nil
        transaction?.log(reply: nil, outcome: "abandoned", logger: logger, client: peer)
        transaction = nil
        if transactionOpen {
            timer.enter(.waitingForUs)
            await resetDownstream()
        }
        transactionOpen = false
    }

    /// The next hop's reply to MAIL, and the RCPTs sent with it (already read from the client) with their replies.
    private mutating func forwardMail(
        from sender: String, parameters: [SMTPParameter]
    ) async -> (reply: SMTPReply, pipelined: [(command: SMTPCommand, reply: SMTPReply)]) {
        timer.enter(.waitingForUs)
        // A shutdown lets transactions in flight finish but starts no new one.
        guard drain.enterTransaction() else {
            session.mailResult(accepted: false)
            return (SessionDrain.reply(context.configuration.hostname), [])
        }
        defer { if !transactionOpen { drain.leaveTransaction() } }
        transaction = TransactionRecord(sender: sender)
        let from: String
        switch context.srs.sender(sender) {
        case .use(let address): from = address
        case .refuse(let reply):
            session.mailResult(accepted: false)
            context.metrics.tempfailed(.srsTooLong)
            transaction?.log(reply: reply, outcome: "tempfailed", logger: logger, client: peer)
            transaction = nil
            return (reply, [])
        }
        identity.login = session.authenticatedIdentity
        var downstream: any NextHopSession
        var group: [(command: SMTPCommand, to: String, parameters: [SMTPParameter])] = []
        var answers: [SMTPReply]
        var attempts = 0
        var carriedMail: Bool
        // A session that carried earlier mail (a kept one, or this client's) and fails at once was most likely
        // closed by the next hop while it sat idle, or speaks for another client (XCLIENT). Nothing of this
        // transaction reached anyone, so it goes again, once, on a new connection.
        repeat {
            if let failure = await openDownstream() { return (failure, []) }
            guard let current = self.downstream else { return (NextHopReplies.unavailable("no connection"), []) }
            downstream = current
            carriedMail = downstream.hasCarriedMail
            if attempts == 0 && downstream.capabilities.pipelining { group = pipelinedRecipients(downstream) }
            answers = await downstream.mail(
                from: from, parameters: forwardedMailParameters(parameters, downstream), client: identity,
                recipients: group.map { (to: $0.to, parameters: $0.parameters) })
            attempts += 1
        } while attempts < 2 && carriedMail && !downstream.isUsable
        let reply = answers[0]
        transactionOpen = reply.isPositive
        session.mailResult(accepted: reply.isPositive)
        context.metrics.passedBack(reply, command: "mail", nextHopUsable: downstream.isUsable)
        if !reply.isPositive {
            transaction?.log(reply: reply, outcome: "refused", logger: logger, client: peer)
            transaction = nil
        } else if let authenticator = context.authenticator {
            // The client identity is the session's, or what a trusted MTA in front stated with XCLIENT/XFORWARD.
            envelopeSender = sender
            envelopeRecipients = []
            spfCheck = authenticator.startSPF(
                clientAddress: identity.address, helo: identity.helo, mailFrom: sender, on: executor)
        }
        return (reply, zip(group, answers.dropFirst()).map { (command: $0.command, reply: $1) })
    }

    /// A usable next-hop session in `downstream` (a broken one is closed first), or the reply for the client when
    /// the next hop cannot be reached.
    private mutating func openDownstream() async -> SMTPReply? {
        if let current = downstream, !current.isUsable {
            await current.quit()
            downstream = nil
        }
        if downstream == nil {
            do {
                downstream = try await context.nextHop.connect(on: eventLoop)
            } catch {
                logger.warning("next hop unavailable", metadata: ["error": "\(error)"])
                session.mailResult(accepted: false)
                let reply = (error as? NextHopError)?.reply ?? NextHopReplies.unavailable("\(error)")
                context.metrics.tempfailed(.nextHopUnavailable)
                transaction?.log(reply: reply, outcome: "tempfailed", logger: logger, client: peer)
                transaction = nil
                return reply
            }
        }
        if let downstream { context.nextHopCapabilities.update(downstream.capabilities) }
        return nil
    }

    /// MAIL parameters for the next hop: those it does not know would fail the transaction; AUTH= is ours to
    /// judge, not its.
    private func forwardedMailParameters(
        _ parameters: [SMTPParameter], _ downstream: any NextHopSession
    ) -> [SMTPParameter] {
        let offered = downstream.capabilities
        return parameters.filter { parameter in
            switch parameter.keyword {
            case "SIZE": return offered.size != nil
            case "BODY": return offered.eightBitMIME || parameter.value?.uppercased() == "7BIT"
            case "SMTPUTF8": return true
            case "AUTH": return false
            case "RET", "ENVID": return offered.dsn
            default: return true
            }
        }
    }

    /// The RCPTs the client pipelined behind MAIL (already read), which this session would forward if the next
    /// hop accepted MAIL: they go out with MAIL in one write, one round trip instead of one per command. A
    /// recipient is only sent ahead when the session would send it anyway; if MAIL is refused, the next hop has no
    /// transaction and refuses them too, as the session does.
    private mutating func pipelinedRecipients(
        _ downstream: any NextHopSession
    ) -> [(command: SMTPCommand, to: String, parameters: [SMTPParameter])] {
        var trial = session
        trial.mailResult(accepted: true)
        var group: [(command: SMTPCommand, to: String, parameters: [SMTPParameter])] = []
        while group.count < Self.maximumPipelinedRecipients, let frame = framer.next(from: &pending) {
            guard case .command(let command) = frame, case .rcpt = command,
                case .forwardRecipient(let recipient, let parameters) = trial.handle(command),
                case .use(let to) = context.srs.recipient(recipient)
            else {
                heldFrame = frame
                break
            }
            group.append((command, to, forwardedRecipientParameters(parameters, downstream)))
        }
        return group
    }

    /// RCPTs sent with one MAIL at most; the rest go one by one.
    static let maximumPipelinedRecipients = 100

    private func forwardedRecipientParameters(
        _ parameters: [SMTPParameter], _ downstream: any NextHopSession
    ) -> [SMTPParameter] {
        let dsn = downstream.capabilities.dsn
        return parameters.filter { dsn || !Self.dsnParameters.contains($0.keyword) }
    }

    private mutating func startMessage() {
        messageProblem = nil
        nextHopQuietSince = .now()
        let limits = context.configuration.limits
        var begin: (@Sendable (MessageHeader) -> MessageAuthentication)?
        if let authenticator = context.authenticator {
            let request = SealingPolicy.Request(
                listener: listener, recipients: envelopeRecipients, sender: envelopeSender, listID: nil)
            let spf = spfCheck
            let executor = self.executor
            begin = { header in
                var request = request
                request.listID = header.fields(named: "list-id").first?.unfoldedValue
                return authenticator.begin(
                    header: header, now: Int(Date().timeIntervalSince1970), spf: spf,
                    seal: authenticator.sealing.match(request), on: executor)
            }
        }
        assembler = MessageAssembler(
            signingTable: context.signingTable,
            spoolThreshold: limits.spoolThreshold,
            spoolDirectory: context.spoolDirectory,
            limits: MailMessageLimits(maxHeaderBytes: limits.maxHeaderSize, maxHeaderFields: limits.maxHeaderFields),
            beginAuthentication: begin
        )
    }

    /// A NOOP to the next hop when it has heard nothing for `timeouts.next_hop_keepalive` while the client sends
    /// the content. Checked as content arrives, so a silence between reads is bounded by the client's own timeout
    /// (`data_block` inside DATA, 180 s; `command` between BDAT chunks): a slow client is covered, a stalled one is
    /// cut off by its timeout anyway.
    private mutating func keepNextHopAwake() async {
        let interval = context.configuration.timeouts.nextHopKeepalive
        guard interval > 0, transactionOpen, let downstream, downstream.isUsable,
            NIODeadline.now() - nextHopQuietSince >= .seconds(Int64(interval))
        else { return }
        let reply = await downstream.noop()
        nextHopQuietSince = .now()
        // A refusal or a lost connection shows at the end of data, as 451 (the next hop's state is unknown).
        if !reply.isPositive { logger.warning("the next hop refused NOOP", metadata: ["reply": "\(reply)"]) }
    }

    /// How the 552 for a header section over the limits begins (the metrics tell it from a message too large).
    static let headerLimitText = "header section over the limit"

    private mutating func append(_ data: ByteBuffer) {
        guard messageProblem == nil, assembler != nil else { return }
        if assembler!.size + data.readableBytes > context.configuration.limits.maxMessageSize {
            messageProblem = SMTPReply(
                code: 552, EnhancedStatusCode(5, 3, 4),
                "message larger than \(context.configuration.limits.maxMessageSize) bytes")
            return
        }
        do {
            try assembler!.append(data)
            if let error = assembler!.headerLimitExceeded {
                // Refused rather than sent on unsigned: the client learns why, and nothing half-checked goes out.
                messageProblem = SMTPReply(
                    code: 552, EnhancedStatusCode(5, 3, 4), "\(Self.headerLimitText): \(error.reason)")
            }
        } catch let error as MailMessageError {
            messageProblem = SMTPReply(code: 554, EnhancedStatusCode(5, 6, 0), "message refused: \(error.reason)")
        } catch {
            messageProblem = SMTPReply(
                code: 451, EnhancedStatusCode(4, 3, 0), "local problem storing the message: \(error)")
        }
    }

    /// End of data: sign, send, and answer with the next hop's own reply.
    private mutating func finishMessage() async -> SMTPReply {
        timer.enter(.waitingForUs)
        transaction?.endOfData = .now
        defer {
            assembler = nil
            transactionOpen = false
            transaction = nil
            session.messageFinished()
            resetEnvelope()
        }
        let assembled: AssembledMessage
        switch assembleMessage() {
        case .assembled(let message):
            assembled = message
        case .refused(let reply, let outcome):
            await resetDownstream()
            return answered(reply, outcome: outcome)
        case .noMessage(let reply):
            return reply
        }
        // Not even called without an authenticator: an async call reserves its whole frame on the task's stack,
        // whose slabs the connection keeps until it closes.
        let authenticationFields =
            context.authenticator == nil ? (fields: [], summary: nil, seal: nil) : await authenticationFields(assembled)
        transaction?.authentication = authenticationFields.summary
        transaction?.arcSeal = authenticationFields.seal
        var fields: [String]
        let signingStarted = ContinuousClock.now
        do {
            fields = try await context.signerPool.signatureFields(for: assembled.signatures)
            let signing = signingStarted.duration(to: .now)
            let made = context.metrics.signed(assembled, duration: signing)
            transaction?.signing = signing
            transaction?.signatures = made
        } catch {
            logger.error("signing failed", metadata: ["error": "\(error)"])
            context.metrics.signingFailed(assembled)
            await resetDownstream()
            let reply = SMTPReply(code: 451, EnhancedStatusCode(4, 3, 0), "signing failed, try again later")
            return answered(reply, outcome: "tempfailed")
        }
        transaction?.unsigned = assembled.unsignedReason?.rawValue
        fields = authenticationFields.fields + fields
        guard let downstream, downstream.isUsable else {
            context.metrics.tempfailed(.nextHopLost)
            return answered(NextHopReplies.lost("before the message was sent"), outcome: "tempfailed")
        }
        let sendStarted = ContinuousClock.now
        let reply = await downstream.message(prepending: fields, content: assembled.content)
        transaction?.nextHop = sendStarted.duration(to: .now)
        let sent = assembled.content.count + fields.reduce(0) { $0 + $1.utf8.count }
        let outcome = context.metrics.delivered(
            reply, nextHopUsable: downstream.isUsable, bytes: sent, nextHopDuration: transaction?.nextHop)
        return answered(reply, outcome: outcome)
    }

    private enum Assembly {
        case assembled(AssembledMessage)
        case refused(SMTPReply, outcome: String)
        case noMessage(SMTPReply)
    }

    /// The synchronous part of the end of data: the body hash and the prepared signatures, or why the message is
    /// refused. Kept out of `finishMessage` (never inlined) so the assembler's state, hashers included, lives on
    /// the thread's stack for this call instead of in the async frame: a task keeps the slabs of its largest
    /// frame for as long as the connection lasts, 12 KiB per connection when this was inlined.
    @inline(never)
    private mutating func assembleMessage() -> Assembly {
        guard var assembler = assembler else {
            return .noMessage(SMTPReply(code: 503, EnhancedStatusCode(5, 5, 1), "no message in progress"))
        }
        self.assembler = nil
        context.metrics.received(bytes: assembler.size)
        transaction?.size = assembler.size
        if let problem = messageProblem {
            context.metrics.refusedLocally(problem)
            logger.notice("message refused", metadata: ["reply": "\(problem)"])
            return .refused(problem, outcome: problem.isTransientFailure ? "tempfailed" : "rejected")
        }
        do {
            return .assembled(try assembler.finish(now: Int(Date().timeIntervalSince1970)))
        } catch {
            context.metrics.tempfailed(.localError)
            let reply = SMTPReply(
                code: 451, EnhancedStatusCode(4, 3, 0), "local problem finishing the message: \(error)")
            return .refused(reply, outcome: "tempfailed")
        }
    }

    /// Verification results and the ARC set, as fields to prepend (ARC set first, then Authentication-Results).
    /// Nothing here fails the message: a check that cannot finish is a temperror, a seal that cannot be made is
    /// logged and left out.
    private func authenticationFields(
        _ assembled: AssembledMessage
    ) async -> (fields: [String], summary: String?, seal: String?) {
        guard let authenticator = context.authenticator, let authentication = assembled.authentication,
            let header = assembled.header
        else { return ([], nil, nil) }
        let deadline = ContinuousClock.now + .seconds(authenticator.settings.timeBudget)
        let outcome = await authentication.finish(
            bodyHashes: assembled.bodyHashes, fromDomain: assembled.fromDomain, deadline: deadline)
        for result in outcome.results.results {
            context.metrics.authenticationResult(method: result.method, result: result.result)
        }
        var fields: [String] = []
        var sealSummary: String?
        if let seal = authentication.seal {
            sealSummary = "not sealed"
            if outcome.arcTemporaryFailure {
                logger.warning(
                    "not sealed: the ARC chain's keys could not be looked up",
                    metadata: ["arc": "\(outcome.arc)", "rule": "\(seal.index)"])
            } else if let bodyHash = assembled.bodyHashes[ARCSealer.bodyHasherKey] {
                // The AAR carries this hop's results under the rule's authserv-id, arc= included: fresh ones, or
                // with trust_results those the border recorded before a list changed the message.
                var chainStatus = outcome.arc.status
                var results = outcome.results.results
                if seal.trustResults, let recorded = Self.recordedResults(in: header, authservID: seal.authservID) {
                    chainStatus = recorded.status
                    results = recorded.results
                }
                let resultsText = results.map(\.text).joined(separator: "; ")
                do {
                    let sealed = try await context.signerPool.seal(
                        seal.sealer, header: header, bodyHash: bodyHash, chainStatus: chainStatus,
                        authservID: seal.authservID, results: resultsText, now: Int(Date().timeIntervalSince1970))
                    switch sealed {
                    case .sealed(let arcFields, let instance, let status):
                        context.metrics.arcSeal(cv: status.rawValue)
                        sealSummary = "i=\(instance) cv=\(status.rawValue)"
                        logger.debug("sealed", metadata: ["i": "\(instance)", "cv": "\(status.rawValue)"])
                        fields += arcFields
                    case .notSealed(let why):
                        logger.info("not sealed", metadata: ["why": "\(why)"])
                    }
                } catch {
                    logger.error("sealing failed", metadata: ["error": "\(error)"])
                }
            }
        }
        if authenticator.settings.addResults {
            fields.append(outcome.results.field() + "\r\n")
        }
        let summary = outcome.results.results.map { "\($0.method)=\($0.result)" }.joined(separator: " ")
        return (fields, summary, sealSummary)
    }

    /// The results of the newest Authentication-Results field from `authservID` that has an `arc` result, and
    /// that result as a chain status (anything but pass and none counts as fail).
    static func recordedResults(
        in header: MessageHeader, authservID: String
    ) -> (status: ARCChainStatus, results: [AuthenticationResult])? {
        for field in AuthenticationResults.fields(in: header, authservID: authservID) {
            guard let arc = field.results(for: "arc").first else { continue }
            return (ARCChainStatus(rawValue: arc.result.lowercased()) ?? .fail, field.results)
        }
        return nil
    }

    /// Ends the transaction's record (latencies, its log line) with the reply the client gets.
    private func answered(_ reply: SMTPReply, outcome: String) -> SMTPReply {
        transaction?.finished(with: reply, outcome: outcome, metrics: context.metrics, logger: logger, client: peer)
        return reply
    }
}

/// Buffers replies so a pipelined group is answered in one write.
struct ReplyWriter {
    let client: ClientStreamHandler
    private let buffer = Box()

    private final class Box { var pending = ByteBuffer() }

    init(client: ClientStreamHandler) {
        self.client = client
    }

    func send(_ reply: SMTPReply) async throws {
        // A group of replies (MAIL, RCPT, DATA) fits at once; growing from empty copied the buffer two or three times.
        if buffer.pending.capacity == 0 { buffer.pending.reserveCapacity(256) }
        reply.write(into: &buffer.pending)
    }

    func flush() async throws {
        guard buffer.pending.readableBytes > 0 else { return }
        let out = buffer.pending
        buffer.pending = ByteBuffer()
        try await client.write(out)
    }
}
