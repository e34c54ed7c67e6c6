import NIOCore
import SMTPProtocol
import Testing

@testable import Relay

@Suite("Client identity: XCLIENT and XFORWARD attributes, capabilities offered in front of a next hop")
struct ClientIdentityTests {
    @Test func attributesForThePostfixNextHop() throws {
        var identity = ClientIdentity(peer: try SocketAddress(ipAddress: "192.0.2.1", port: 40000))
        identity.helo = "client.example"
        identity.proto = "ESMTP"
        let xclient = identity.attributes(offered: ["NAME", "ADDR", "PORT", "HELO", "PROTO", "LOGIN"], xforward: false)
        #expect(
            xclient.map(\.description) == [
                "NAME=[UNAVAILABLE]", "ADDR=192.0.2.1", "PORT=40000", "PROTO=ESMTP", "HELO=client.example",
                "LOGIN=[UNAVAILABLE]",
            ])
        // Only what the next hop listed, and SOURCE for XFORWARD.
        let xforward = identity.attributes(offered: ["ADDR", "HELO", "SOURCE"], xforward: true)
        #expect(xforward.map(\.description) == ["ADDR=192.0.2.1", "HELO=client.example", "SOURCE=REMOTE"])
        let local = ClientIdentity(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        #expect(local.attributes(offered: ["SOURCE"], xforward: true).map(\.description) == ["SOURCE=LOCAL"])
    }

    @Test func ipv6AddressesCarryPostfixsPrefixBothWays() throws {
        var identity = ClientIdentity(peer: try SocketAddress(ipAddress: "2001:db8::1", port: 25))
        #expect(identity.attributes(offered: ["ADDR"], xforward: false).map(\.description) == ["ADDR=IPV6:2001:db8::1"])
        #expect(identity.apply([SMTPParameter("ADDR", "IPV6:2001:db8::7")]) == nil)
        #expect(identity.address == "2001:db8::7")
    }

    /// xtext can carry CR, LF and other controls; sent on in EHLO after XCLIENT they would end the line.
    @Test func valuesWithControlCharactersAreRefused() throws {
        var identity = ClientIdentity(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        identity.helo = "before.example"
        for (keyword, value) in [
            ("HELO", "foo+0D+0ABcc:+20victim@example.net"), ("NAME", "a+0Ab"), ("LOGIN", "alice+0D"),
            ("PROTO", "ESMTP+00"), ("HELO", "x+7Fy"), ("HELO", "tab+09here"),
        ] {
            #expect(identity.apply([SMTPParameter(keyword, value)]) == keyword, "\(keyword)=\(value)")
        }
        #expect(identity.helo == "before.example")
        // Printable text is still taken.
        #expect(identity.apply([SMTPParameter("HELO", "ok+20name")]) == nil)
        #expect(identity.helo == "ok name")
    }

    @Test func applyingAttributesFromATrustedClient() throws {
        var identity = ClientIdentity(peer: try SocketAddress(ipAddress: "127.0.0.1", port: 1))
        #expect(
            identity.apply([
                SMTPParameter("ADDR", "198.51.100.9"), SMTPParameter("NAME", "mx.sender.example"),
                SMTPParameter("HELO", "a+20b"), SMTPParameter("PORT", "2525"), SMTPParameter("SOURCE", "REMOTE"),
            ]) == nil)
        #expect(identity.address == "198.51.100.9")
        #expect(identity.name == "mx.sender.example")
        #expect(identity.helo == "a b")
        #expect(identity.port == 2525)
        #expect(identity.apply([SMTPParameter("NAME", "[UNAVAILABLE]")]) == nil)
        #expect(identity.name == nil)
        // Malformed values are refused by name, and nothing is half-applied by the caller (it applies to a copy).
        #expect(identity.apply([SMTPParameter("ADDR", "not-an-address")]) == "ADDR")
        #expect(identity.apply([SMTPParameter("PORT", "70000")]) == "PORT")
        #expect(identity.apply([SMTPParameter("HELO", "bad+Z")]) == "HELO")
        #expect(identity.apply([SMTPParameter("HELO")]) == "HELO")
    }

    @Test func capabilitiesOfferedInFrontOfANextHop() {
        var ours = SMTPCapabilities()
        ours.pipelining = true
        ours.chunking = true
        ours.eightBitMIME = true
        ours.smtpUTF8 = true
        ours.enhancedStatusCodes = true
        ours.size = 50_000_000
        // Unknown next hop: our own set.
        #expect(ours.offered(inFrontOf: nil) == ours)
        var plain = SMTPCapabilities()
        plain.size = 10_000_000
        plain.dsn = true
        let offered = ours.offered(inFrontOf: plain)
        // End-to-end extensions follow the next hop; hop-by-hop ones stay ours.
        #expect(!offered.smtpUTF8 && !offered.eightBitMIME)
        #expect(offered.dsn)
        #expect(offered.size == 10_000_000)
        #expect(offered.pipelining && offered.chunking && offered.enhancedStatusCodes)
        var unlimited = SMTPCapabilities()
        unlimited.size = 0
        #expect(ours.offered(inFrontOf: unlimited).size == 50_000_000)
    }
}
