#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// An IPv4 or IPv6 address as SPF compares it: a number, so that CIDR matching is a shift and a compare.
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt128)

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text; nil for anything else.
    public init?(_ text: some StringProtocol) {
        let string = String(text)
        if string.contains(":") {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, string, &raw) == 1 else { return nil }
            var value: UInt128 = 0
            withUnsafeBytes(of: &raw) { bytes in
                for byte in bytes { value = value << 8 | UInt128(byte) }
            }
            self = .v6(value)
        } else {
            var raw = in_addr()
            guard inet_pton(AF_INET, string, &raw) == 1 else { return nil }
            var value: UInt32 = 0
            withUnsafeBytes(of: &raw) { bytes in
                for byte in bytes { value = value << 8 | UInt32(byte) }
            }
            self = .v4(value)
        }
    }

    /// From network-order bytes: 4 for IPv4, 16 for IPv6.
    public init?(bytes: some Collection<UInt8>) {
        switch bytes.count {
        case 4: self = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16: self = .v6(bytes.reduce(0) { $0 << 8 | UInt128($1) })
        default: return nil
        }
    }

    /// Network-order bytes.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let value): return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let value): return (0..<16).map { UInt8(truncatingIfNeeded: value >> (120 - 8 * $0)) }
        }
    }

    /// 32 or 128.
    public var bitWidth: Int {
        if case .v4 = self { return 32 }
        return 128
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), which SPF treats as IPv4
    /// (RFC 7208 §5); the address itself otherwise.
    public var unmapped: IPAddress {
        if case .v6(let value) = self, value >> 32 == 0xffff { return .v4(UInt32(truncatingIfNeeded: value)) }
        return self
    }

    /// True when both are the same family and agree on the first `prefixLength` bits.
    public func matches(_ network: IPAddress, prefixLength: Int) -> Bool {
        switch (self, network) {
        case (.v4(let a), .v4(let b)):
            let bits = min(max(prefixLength, 0), 32)
            if bits == 0 { return true }
            return a >> (32 - bits) == b >> (32 - bits)
        case (.v6(let a), .v6(let b)):
            let bits = min(max(prefixLength, 0), 128)
            if bits == 0 { return true }
            return a >> (128 - bits) == b >> (128 - bits)
        default:
            return false
        }
    }

    /// The name a PTR question asks: `d.c.b.a.in-addr.arpa` or the 32 nibbles under `ip6.arpa`.
    public var reverseName: String {
        switch self {
        case .v4:
            return bytes.reversed().map(String.init).joined(separator: ".") + ".in-addr.arpa"
        case .v6:
            let nibbles = bytes.flatMap { [$0 >> 4, $0 & 0x0f] }
            return nibbles.reversed().map { String($0, radix: 16) }.joined(separator: ".") + ".ip6.arpa"
        }
    }

    /// Dotted quad, or RFC 5952 text for IPv6.
    public var description: String {
        var raw = bytes
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bitWidth == 32 ? AF_INET : AF_INET6
        _ = inet_ntop(family, &raw, &buffer, socklen_t(buffer.count))
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
