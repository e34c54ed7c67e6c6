import NIOCore
import SMTPProtocol

/// Who the SMTP client is, as Postfix's XCLIENT and XFORWARD describe it: what Signet tells a Postfix next hop so
/// that its logs and policies see the original client instead of Signet, and what a trusted upstream MTA may tell
/// Signet the same way.
struct ClientIdentity: Sendable, Hashable {
    /// The client's IP address ("192.0.2.1", "2001:db8::1"), nil when not known.
    var address: String?
    var port: Int?
    /// The verified reverse DNS name; nil is sent as `[UNAVAILABLE]` (Signet does no DNS of its own here).
    var name: String?
    /// The EHLO or HELO argument.
    var helo: String?
    /// SMTP or ESMTP.
    var proto: String?
    /// The SASL login name, when the client authenticated.
    var login: String?

    /// The identity of a directly connected client.
    init(peer: SocketAddress?) {
        address = peer?.ipAddress
        port = peer?.port
    }

    /// XCLIENT and XFORWARD attributes for this identity, limited to the names the next hop listed.
    func attributes(offered names: [String], xforward: Bool) -> [SMTPParameter] {
        var all: [(String, String)] = [
            ("NAME", name ?? "[UNAVAILABLE]"),
            ("ADDR", address.map(Self.postfixAddress) ?? "[UNAVAILABLE]"),
            ("PORT", port.map(String.init) ?? "[UNAVAILABLE]"),
            ("PROTO", proto ?? "[UNAVAILABLE]"),
            ("HELO", helo ?? "[UNAVAILABLE]"),
        ]
        if xforward {
            // Postfix's SOURCE: LOCAL for mail submitted on this machine, which for a relay in front is everything
            // from loopback.
            let local = address.map { $0.hasPrefix("127.") || $0 == "::1" } ?? false
            all.append(("SOURCE", local ? "LOCAL" : "REMOTE"))
        } else {
            all.append(("LOGIN", login ?? "[UNAVAILABLE]"))
        }
        return all.filter { names.contains($0.0) }.map { SMTPParameter($0.0, XText.encode($0.1)) }
    }

    /// Applies XCLIENT or XFORWARD attributes received from a trusted client; `[UNAVAILABLE]` and `[TEMPUNAVAIL]`
    /// clear a value. Returns the name of an attribute whose value is malformed.
    mutating func apply(_ attributes: [SMTPParameter]) -> String? {
        for attribute in attributes {
            guard let raw = attribute.value, let value = XText.decode(raw) else { return attribute.keyword }
            // xtext can encode CR and LF ("+0D+0A"); sent on in EHLO, XCLIENT or XFORWARD, such a value would
            // end the line and start a command of the client's choosing at the next hop.
            guard !value.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { return attribute.keyword }
            let known = value == "[UNAVAILABLE]" || value == "[TEMPUNAVAIL]" ? nil : value
            switch attribute.keyword {
            case "ADDR":
                guard let known else {
                    address = nil
                    continue
                }
                let bare = known.uppercased().hasPrefix("IPV6:") ? String(known.dropFirst(5)) : known
                guard (try? SocketAddress(ipAddress: bare, port: 0)) != nil else { return attribute.keyword }
                address = bare
            case "PORT":
                guard let known else {
                    port = nil
                    continue
                }
                guard let number = Int(known), (0...65535).contains(number) else { return attribute.keyword }
                port = number
            case "NAME": name = known
            case "HELO": helo = known
            case "PROTO": proto = known
            case "LOGIN": login = known
            default: continue  // SOURCE, IDENT, DESTADDR, ...: nothing Signet uses
            }
        }
        return nil
    }

    /// Postfix writes IPv6 addresses in XCLIENT and XFORWARD with an `IPV6:` prefix.
    private static func postfixAddress(_ address: String) -> String {
        address.contains(":") ? "IPV6:" + address : address
    }
}
