import Logging
import NIOCore
import NIOSSL
import SMTPProtocol

/// How `SMTPNextHop` uses STARTTLS: the configured mode and the client context built from it.
struct NextHopTLSPolicy: Sendable {
    var mode: RelayConfiguration.NextHopTLSMode
    var context: NIOSSLContext?
    /// Sent as SNI and checked against the certificate; nil: the next hop's host when it is a name.
    var serverName: String?
    /// The certificate is checked.
    var verifies: Bool
    var logger: Logger

    init(_ configuration: RelayConfiguration.NextHopTLS, logger: Logger) throws(ConfigurationError) {
        self.mode = configuration.mode
        self.context = try TLSContexts.client(configuration)
        self.serverName = configuration.serverName
        self.verifies = configuration.effectiveVerify
        self.logger = logger
    }

    /// The name for SNI and the certificate check: SNI cannot carry an IP address (RFC 6066 §3); for an IP
    /// address NIOSSL checks the certificate's IP SANs against the connected address instead.
    func hostname(for host: String) -> String? {
        if let serverName { return serverName }
        return (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }

    /// The 451 a transaction gets when TLS is required and cannot be had.
    static func required(_ why: String) -> NextHopError {
        NextHopError(
            "TLS required with the next hop: \(why)",
            reply: SMTPReply(
                code: 451, EnhancedStatusCode(4, 7, 5), "TLS to the next hop is required but failed: \(why)"))
    }
}

/// A handshake with the next hop failed in opportunistic mode: `SMTPNextHop` retries without TLS.
struct OpportunisticTLSFailure: Error {
    var underlying: any Error
}

extension SMTPNextHop {
    /// STARTTLS on a greeted connection (RFC 3207 §4): 220, TLS handler in front, EHLO again; returns the
    /// capabilities the next hop offers inside TLS. Anything learnt before TLS is forgotten.
    func upgrade(
        _ connection: SMTPConnection, context: NIOSSLContext, offered: SMTPCapabilities
    ) async throws
        -> SMTPCapabilities
    {
        guard offered.startTLS else {
            if tls.mode == .required { throw NextHopTLSPolicy.required("the next hop does not offer STARTTLS") }
            tls.logger.debug("the next hop does not offer STARTTLS", metadata: ["next_hop": "\(address)"])
            return offered
        }
        let go = try await connection.exchange(
            [SMTPCommand.starttls.encoded()], replies: 1, timeout: timeouts.nextHopCommand)[0]
        guard go.code == 220 else {
            if tls.mode == .required { throw NextHopTLSPolicy.required("the next hop answered STARTTLS with \(go)") }
            tls.logger.notice("the next hop refused STARTTLS", metadata: ["next_hop": "\(address)", "reply": "\(go)"])
            return offered
        }
        let channel = connection.channel
        let collector = connection.collector
        let serverHostname = tls.hostname(for: address.host)
        try await channel.eventLoop.submit {
            // A reply that came with the 220 was sent in plain text: an injection (CVE-2011-0411's mirror image).
            guard collector.value.unclaimedReplies == 0 else {
                throw NextHopError("the next hop sent data after its 220 to STARTTLS")
            }
            let handler = try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
            try channel.pipeline.syncOperations.addHandler(handler, position: .first)
        }.get()
        let reply: SMTPReply
        do {
            reply = try await connection.exchange(
                [SMTPCommand.ehlo(hostname).encoded()], replies: 1, timeout: timeouts.nextHopCommand)[0]
        } catch {
            connection.close()
            if tls.mode == .required { throw NextHopTLSPolicy.required("\(error)") }
            throw OpportunisticTLSFailure(underlying: error)
        }
        guard reply.code == 250 else {
            throw NextHopError(
                "the next hop refused EHLO after STARTTLS: \(reply)",
                reply: tls.mode == .required
                    ? NextHopTLSPolicy.required("EHLO refused after STARTTLS").reply : nil)
        }
        let version = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self).tlsVersion
        }.get()
        tls.logger.info(
            "next hop TLS established",
            metadata: [
                "next_hop": "\(address)", "version": "\(version.flatMap { $0 }.map { "\($0)" } ?? "?")",
                "verified": "\(tls.verifies)",
            ])
        return SMTPCapabilities(ehloReply: reply)
    }
}
