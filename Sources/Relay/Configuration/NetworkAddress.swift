import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A `host:port` pair as written in configuration (`127.0.0.1:10025`, `[::1]:25`, `mx.example.net:25`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address literal, without brackets.
    public var host: String
    /// TCP port.
    public var port: Int

    /// A pair from its parts.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; IPv6 literals in brackets. Nil when the port is missing or out of range.
    public init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let number = Int(port), (1...65535).contains(number) else { return nil }
        self.init(host: String(host), port: number)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// An IPv4 or IPv6 network in CIDR notation, for the client access list.
public struct NetworkPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The network address bytes (4 or 16).
    public let address: [UInt8]
    /// Prefix length in bits.
    public let length: Int

    /// Parses `10.0.0.0/8`, `::1/128`, or a bare address (a host route).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let bytes = Self.parseAddress(String(parts[0])) else { return nil }
        let maxLength = bytes.count * 8
        let length: Int
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...maxLength).contains(parsed) else { return nil }
            length = parsed
        } else {
            length = maxLength
        }
        self.address = Self.masked(bytes, length)
        self.length = length
    }

    /// Whether `peer` is inside this network. IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks.
    public func contains(_ peer: SocketAddress) -> Bool {
        guard var bytes = Self.bytes(of: peer) else { return false }
        if bytes.count == 16 && address.count == 4 && bytes.prefix(12).elementsEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]) {
            bytes = Array(bytes.suffix(4))
        }
        guard bytes.count == address.count else { return false }
        return Self.masked(bytes, length) == address
    }

    public var description: String {
        let host: String
        if address.count == 4 {
            host = address.map(String.init).joined(separator: ".")
        } else {
            host = stride(from: 0, to: 16, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return "\(host)/\(length)"
    }

    /// The 4 or 16 bytes of an IP address literal.
    static func parseAddress(_ text: String) -> [UInt8]? {
        var v4 = [UInt8](repeating: 0, count: 4)
        if inet_pton(AF_INET, text, &v4) == 1 { return v4 }
        var v6 = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET6, text, &v6) == 1 { return v6 }
        return nil
    }

    static func bytes(of address: SocketAddress) -> [UInt8]? {
        address.ipAddress.flatMap(parseAddress)
    }

    static func masked(_ bytes: [UInt8], _ length: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsHere = max(0, min(8, length - index * 8))
            return bitsHere == 8 ? byte : byte & ~(UInt8(0xFF) >> bitsHere)
        }
    }
}
