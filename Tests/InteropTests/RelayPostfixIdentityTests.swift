import Foundation
import Testing

/// Signet in front of a real Postfix smtpd: STARTTLS to it with the certificate checked, and the original
/// client's address and HELO handed on with XCLIENT or XFORWARD, as Postfix's own Received field and log show,
/// also when a second client gets the next-hop session the first left.
@Suite("Relay → Postfix: TLS to the next hop, the client's identity by XCLIENT and XFORWARD", .serialized)
struct RelayPostfixIdentityTests {
    typealias H = RelayHarness

    @Test(arguments: ["xclient", "xforward"])
    func postfixSeesTheOriginalClientOverTLS(mode: String) throws {
        let setup = try H.Setup("postfix-\(mode)")
        defer { setup.remove() }
        let certificate = try RelayTLSAuthTests.makeCertificate(in: setup.dir)
        // Postfix's smtpd reads the key after dropping privileges to the postfix user.
        _ = chmod(certificate.key, 0o644)
        let postfix = try PostfixInstance(
            try setup.subdirectory("postfix"),
            extraMain: """
                smtpd_tls_cert_file = \(certificate.chain)
                smtpd_tls_key_file = \(certificate.key)
                smtpd_tls_security_level = may
                smtpd_tls_received_header = yes
                smtpd_tls_loglevel = 1
                smtpd_authorized_xclient_hosts = 127.0.0.0/8
                smtpd_authorized_xforward_hosts = 127.0.0.0/8
                """)
        defer { postfix.stop() }
        try postfix.start()
        let metricsPort = RelayEndToEndTests.freePort()
        let (relay, port) = try RelayEndToEndTests.startSignet(
            setup.dir, nextHop: postfix.port, keys: setup.keys,
            environment: [
                "SIGNET_FORWARD_CLIENT_IDENTITY": mode,
                // The test client plays an MTA in front of Signet that tells it who its own client was.
                "SIGNET_XCLIENT_NETWORKS": "127.0.0.0/8",
                "SIGNET_NEXT_HOP_TLS_MODE": "required",
                "SIGNET_NEXT_HOP_TLS_CA_FILE": certificate.chain,
                "SIGNET_TIMEOUTS_NEXT_HOP_IDLE": "30",
                "SIGNET_METRICS_LISTEN": "127.0.0.1:\(metricsPort)",
            ])
        defer { relay.stop() }

        // Two clients one after the other, each another sender's MTA: the second gets the next-hop session the
        // first left (TLS already up), and Postfix must see each message as its own client's.
        let senders = [("192.0.2.55", "mx.sender.example"), ("192.0.2.66", "mx2.sender.example")]
        var messages: [[UInt8]] = []
        for (index, (address, helo)) in senders.enumerated() {
            let client = try H.greetedClient(port)
            let xclient = try client.command("XCLIENT ADDR=\(address) HELO=\(helo) NAME=[UNAVAILABLE]")
            #expect(xclient.code == 220, "\(xclient)")
            #expect(try client.command("EHLO \(helo)").code == 250)
            let message = Mail.message(token: "identity-\(mode)-\(index)", body: "Who sent this?\r\n")
            messages.append(message)
            let reply = try H.sendWithData(client, message)
            #expect(reply.code == 250 && reply.text.contains("queued as"), "\(reply)\n\(relay.output)")
            #expect(try client.command("QUIT").code == 221)
            #expect(NextHopReuseTests.waitForKept(1, metricsPort: metricsPort), "\(relay.output)")
        }

        let delivered = H.wait(seconds: 30) { ((try? postfix.delivered()) ?? []).count == 2 }
        #expect(delivered, "not delivered in 30 s:\n\(postfix.log)")
        let metrics = ObservabilityEndToEndTests.samples(
            try ObservabilityEndToEndTests.get("/metrics", port: metricsPort).body)
        #expect(metrics[#"signet_next_hop_connections_total{result="reused"}"#] == 1)
        for (index, (address, helo)) in senders.enumerated() {
            let files = try postfix.delivered().filter {
                String(decoding: try Data(contentsOf: $0), as: UTF8.self).contains("identity-\(mode)-\(index)")
            }
            try #require(files.count == 1)
            let raw = try Data(contentsOf: files[0])
            let text = String(decoding: raw, as: UTF8.self)
            // TLS on Signet's hop, in Postfix's own Received field.
            #expect(text.contains("(using TLSv1."), "\(text.prefix(800))")
            // The original client in Postfix's log; with XCLIENT also in its Received field (XFORWARD is for
            // logging).
            #expect(postfix.log.contains("client=unknown[\(address)]"), "\(postfix.log)")
            if mode == "xclient" {
                #expect(text.contains("Received: from \(helo) (unknown [\(address)])"), "\(text.prefix(800))")
            } else {
                #expect(text.contains("Received: from localhost (localhost [127.0.0.1])"), "\(text.prefix(800))")
            }
            let content = H.maildirContent(raw)
            H.expectSignedCopy(content, of: messages[index], "via Postfix with \(mode)")
            try H.expectVerified([content], keys: setup.keys, in: setup.dir)
        }
        #expect(relay.output.contains("next hop TLS established"), "\(relay.output)")
    }
}
