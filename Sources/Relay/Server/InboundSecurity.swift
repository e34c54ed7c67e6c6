import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SMTPProtocol

/// What the relay offers for client security, built once from the configuration: the STARTTLS context and the
/// AUTH users. A reload builds a new one.
struct RelaySecurity: Sendable {
    /// Inbound STARTTLS; nil: not offered.
    var serverTLS: NIOSSLContext?
    /// AUTH PLAIN users; nil: AUTH not offered.
    var passwords: PasswordFile?

    init(serverTLS: NIOSSLContext? = nil, passwords: PasswordFile? = nil) {
        self.serverTLS = serverTLS
        self.passwords = passwords
    }

    /// Reads the certificate, key and password file that `configuration` names.
    init(configuration: RelayConfiguration) throws(ConfigurationError) {
        self.serverTLS = try configuration.tls.map { (tls) throws(ConfigurationError) in try TLSContexts.server(tls) }
        self.passwords = try configuration.auth.map { (auth) throws(ConfigurationError) in
            try PasswordFile(contentsOf: auth.passwordFile)
        }
    }
}

/// One session's TLS and AUTH state.
struct InboundSecurity {
    /// The connection, for STARTTLS; nil when the session is not on a channel.
    var channel: (any Channel)?
    /// The client is in `client_networks`: it may send without AUTH unless `auth.required`.
    var isTrustedNetwork = true
    var plaintextGuard = PlaintextGuard()
    /// A 334 was sent; the next line answers it.
    var awaitingResponse = false
    var failures = 0

    /// Failed AUTH attempts after which the connection is closed (Postfix's smtpd_hard_error_limit is 20; a
    /// password guesser deserves fewer).
    static let maximumFailures = 3

    /// Whether MAIL needs AUTH first.
    static func authRequired(_ configuration: RelayConfiguration, trusted: Bool) -> Bool {
        guard let auth = configuration.auth else { return false }
        return auth.required || !trusted
    }
}

extension InboundSession {
    /// STARTTLS accepted by the session: 220, TLS handler in front, plaintext pipelined after it dropped, the
    /// SMTP state back to before EHLO (RFC 3207 §4.2).
    mutating func startTLS(_ replies: ReplyWriter) async throws {
        guard let tls = context.security.serverTLS, let channel = security.channel else {
            framer.resumeCommands()
            try await replies.send(SMTPReply(code: 454, EnhancedStatusCode(4, 7, 0), "TLS not available"))
            return
        }
        let dropped = framer.startTLS(discarding: &pending)
        // Earlier replies were flushed: the writer hands them to the event loop before this task runs.
        let ready = SMTPReply(code: 220, EnhancedStatusCode(2, 0, 0), "ready to start TLS").encoded()
        let plaintext = try await StartTLSHandler.startTLS(on: channel, context: tls, replies: ready)
        security.plaintextGuard.tlsStarted(plaintextBytes: plaintext)
        let discarded = dropped.readableBytes + security.plaintextGuard.toDiscard
        if discarded > 0 {
            logger.notice("discarding plaintext pipelined after STARTTLS", metadata: ["bytes": "\(discarded)"])
        }
        session.tlsEstablished()
    }

    /// AUTH accepted by the session: decode an initial response, or ask for it with 334.
    mutating func startAuthentication(
        mechanism: String, initialResponse: String?, _ replies: ReplyWriter
    )
        async throws -> Bool
    {
        guard mechanism == "PLAIN" else {
            try await replies.send(
                SMTPReply(code: 504, EnhancedStatusCode(5, 5, 4), "unrecognized authentication type"))
            return true
        }
        guard let initialResponse else {
            security.awaitingResponse = true
            framer.expectAuthenticationResponse()
            // PLAIN has no challenge: an empty 334 (RFC 4954 §4).
            try await replies.send(SMTPReply(code: 334, nil, ""))
            return true
        }
        return try await verify(initialResponse, replies)
    }

    /// The client's answer to 334.
    mutating func continueAuthentication(_ line: String, _ replies: ReplyWriter) async throws -> Bool {
        guard security.awaitingResponse else {
            try await replies.send(
                SMTPReply(code: 500, EnhancedStatusCode(5, 5, 2), "unexpected authentication response"))
            return true
        }
        security.awaitingResponse = false
        if line == "*" {
            try await replies.send(SMTPReply(code: 501, EnhancedStatusCode(5, 0, 0), "authentication cancelled"))
            return true
        }
        return try await verify(line, replies)
    }

    /// Checks the credentials off the event loop (crypt is slow on purpose); false ends the session.
    private mutating func verify(_ response: String, _ replies: ReplyWriter) async throws -> Bool {
        let credentials: SASLPlain
        do {
            credentials = try SASLPlain(base64: response)
        } catch .malformed {
            try await replies.send(SMTPReply(code: 501, EnhancedStatusCode(5, 5, 2), "cannot decode response"))
            return true
        } catch .otherAuthorizationIdentity {
            return try await authenticationFailed(user: "?", reason: "authorization identity differs", replies)
        }
        guard let passwords = context.security.passwords else {
            try await replies.send(SMTPReply(code: 454, EnhancedStatusCode(4, 7, 0), "authentication not available"))
            return true
        }
        try await replies.flush()
        let user = credentials.user
        let password = credentials.password
        let valid = try await NIOThreadPool.singleton.runIfActive {
            passwords.verify(user: user, password: password)
        }
        guard valid else {
            return try await authenticationFailed(user: user, reason: "wrong user or password", replies)
        }
        session.authenticated(user)
        context.statistics.authSuccesses.increment()
        logger[metadataKey: "user"] = "\(user)"
        logger.info("authenticated")
        try await replies.send(SMTPReply(code: 235, EnhancedStatusCode(2, 7, 0), "authentication successful"))
        return true
    }

    private mutating func authenticationFailed(
        user: String, reason: String, _ replies: ReplyWriter
    ) async throws
        -> Bool
    {
        security.failures += 1
        context.statistics.authFailures.increment()
        logger.warning(
            "authentication failed",
            metadata: [
                "user": "\(user)", "reason": "\(reason)", "session_failures": "\(security.failures)",
                "failures_total": "\(context.statistics.authFailures.count)",
            ])
        try await replies.send(SMTPReply(code: 535, EnhancedStatusCode(5, 7, 8), "authentication credentials invalid"))
        guard security.failures < InboundSecurity.maximumFailures else {
            try await replies.send(
                SMTPReply(
                    code: 421, EnhancedStatusCode(4, 7, 0),
                    "\(context.configuration.hostname) too many failed authentications"))
            return false
        }
        return true
    }
}

extension RelayConfiguration {
    /// Reads the certificate, keys, CA file and password file this configuration names, as `signet run` will;
    /// returns a short summary for `signet check-config`.
    public func checkSecurityFiles() throws(ConfigurationError) -> String {
        let security = try RelaySecurity(configuration: self)
        _ = try TLSContexts.client(nextHopTLS)
        var parts = [
            tls.map { "STARTTLS offered\($0.require ? " and required" : "") (TLS \($0.minimumVersion.rawValue)+)" }
                ?? "no STARTTLS"
        ]
        if let auth, let users = security.passwords?.users.count {
            parts.append("AUTH PLAIN for \(users) users\(auth.required ? ", required" : "")")
        }
        parts.append("next hop TLS \(nextHopTLS.mode.rawValue)\(nextHopTLS.effectiveVerify ? ", verified" : "")")
        return parts.joined(separator: ", ")
    }
}
