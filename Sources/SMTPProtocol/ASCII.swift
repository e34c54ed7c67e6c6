// Byte constants and classes shared by the parsers; SMTP syntax is defined over ASCII octets.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension UInt8 {
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let dot = UInt8(ascii: ".")

    var isASCIIDigit: Bool { self >= 0x30 && self <= 0x39 }
    var isASCIILetter: Bool { (self | 0x20) >= 0x61 && (self | 0x20) <= 0x7A }
    var isASCIIControl: Bool { self < 0x20 || self == 0x7F }
    var asciiUppercased: UInt8 { self >= 0x61 && self <= 0x7A ? self - 0x20 : self }
}

extension Collection<UInt8> {
    /// The bytes as a String with ASCII letters upper-cased; callers use it on ASCII-only tokens.
    var asciiUppercasedString: String { String(decoding: self.map(\.asciiUppercased), as: UTF8.self) }

    /// Whether the bytes equal `token` ignoring ASCII case (`token` is upper-case ASCII).
    func equalsIgnoringASCIICase(_ token: String) -> Bool {
        self.count == token.utf8.count && zip(self, token.utf8).allSatisfy { $0.asciiUppercased == $1 }
    }

    /// Whether the bytes start with `token` ignoring ASCII case (`token` is upper-case ASCII).
    func hasPrefixIgnoringASCIICase(_ token: String) -> Bool {
        self.count >= token.utf8.count && zip(self, token.utf8).allSatisfy { $0.asciiUppercased == $1 }
    }
}

extension StringProtocol {
    /// Whether any character is outside ASCII (RFC 6531 addresses need SMTPUTF8).
    var containsNonASCII: Bool { utf8.contains { $0 >= 0x80 } }
}

extension UnsafeRawBufferPointer {
    /// The offset of the first LF at or after `start`, or nil. memchr rather than `firstIndex(of:)`: the line scans
    /// of DATA content run over every byte of every message, and the generic search goes byte by byte (about 1.3% of
    /// a relayed message's CPU, where memchr is vectorised).
    func firstLineFeed(from start: Int) -> Int? {
        guard start < count, let base = baseAddress, let found = memchr(base + start, Int32(UInt8.lf), count - start)
        else { return nil }
        return UnsafeRawPointer(found) - base
    }
}
