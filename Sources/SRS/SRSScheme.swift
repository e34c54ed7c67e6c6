import Keys

/// The Mail::SRS "Guarded" Sender Rewriting Scheme, byte for byte as Mail::SRS 0.31 and libsrs2/postsrsd write it.
///
/// - `forward("alice@orig.example", domain: "fwd.example")` gives `SRS0=HHHH=TT=orig.example=alice@fwd.example`:
///   HHHH is HMAC-SHA1 (first secret) over the lower-cased timestamp, host and user, base64, first 4 characters;
///   TT is the day number mod 1024 in base32.
/// - Forwarding an SRS0 address again gives `SRS1=HHHH=first.example==HHHH=TT=orig.example=alice@fwd2.example`
///   (hash over host and the rest), and an SRS1 address keeps its first forwarder and gets a new hash.
/// - `reverse` checks the hash against every secret (rotation) case-insensitively, in either base64 alphabet, then
///   the timestamp; SRS1 reverses to the SRS0 address at the first forwarder, as Mail::SRS does.
///
/// Pure: no I/O, the time is a parameter. Immutable, so one value serves every thread.
public struct SRSScheme: Sendable {
    /// Options in effect.
    public let options: SRSOptions
    /// One HMAC key per secret; the first signs.
    private let keys: [HMACSHA1Key]

    static let secondsPerDay = 86_400
    static let timestampSlots = 1024
    static let base32: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    static let base64: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let base64url: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Characters of a base64 SHA-1 digest without padding: the longest hash prefix that can match.
    static let fullHashLength = 27

    /// A scheme signing with `secrets[0]` and verifying with all of them.
    public init(secrets: [String], options: SRSOptions = SRSOptions()) throws(SRSError) {
        guard !secrets.isEmpty, secrets.allSatisfy({ !$0.isEmpty }) else { throw .noSecret }
        self.options = options
        self.keys = secrets.map { HMACSHA1Key(secret: $0) }
    }

    // MARK: Forward

    /// The SRS address for `address` forwarded by `domain` (a domain, or an address whose domain is used), at Unix
    /// time `now`. An address already in `domain` comes back unchanged unless `alwaysRewrite` is set.
    public func forward(_ address: String, domain: String, now: Int) throws(SRSError) -> String {
        let bytes = Array(address.utf8)
        guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7f }) else {
            throw .malformed(address: address, reason: "control character in the address")
        }
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at + 1 < bytes.count else {
            throw .malformed(address: address, reason: "no @domain")
        }
        let user = bytes[..<at]
        let host = bytes[(at + 1)...]
        guard !user.isEmpty else { throw .malformed(address: address, reason: "empty local part") }
        guard !host.contains(UInt8(ascii: "=")) else {
            // "=" separates the fields of an SRS address: such a host could never be read back (found by SRSFuzzer).
            throw .malformed(address: address, reason: "the domain contains '='")
        }
        guard !user.contains(UInt8(ascii: "@")) else {
            // Mail::SRS refuses this too ("Sender username may not contain an @"): reversal would be ambiguous.
            throw .malformed(address: address, reason: "the local part contains @")
        }
        var alias = Array(domain.utf8)
        if let aliasAt = alias.lastIndex(of: UInt8(ascii: "@")) { alias = Array(alias[(aliasAt + 1)...]) }
        guard !alias.isEmpty, !alias.contains(where: { $0 <= 0x20 || $0 == 0x7f }) else {
            throw .malformed(address: address, reason: "the forwarding domain '\(domain)' is empty or not a domain")
        }
        if !options.alwaysRewrite && equalIgnoringASCIICase(host, alias[...]) { return address }

        var local: [UInt8] = []
        local.reserveCapacity(user.count + host.count + 16)
        if let rest = Self.afterTag(user, digit: UInt8(ascii: "1")),
            case let fields = Self.split(rest, maxFields: 3), fields.count == 3
        {
            // SRS1 of another forwarder: keep its first-hop host and opaque part, re-sign them with our secret.
            local += Array("SRS1".utf8)
            local.append(options.separator)
            local += hash(fields[1], fields[2])
            local.append(UInt8(ascii: "="))
            local += fields[1]
            local.append(UInt8(ascii: "="))
            local += fields[2]
        } else if Self.afterTag(user, digit: UInt8(ascii: "0")) != nil {
            // SRS0 of another forwarder: drop the tag but keep its separator (hence the `==` in SRS1 addresses).
            let opaque = user.dropFirst(4)
            local += Array("SRS1".utf8)
            local.append(options.separator)
            local += hash(host, opaque)
            local.append(UInt8(ascii: "="))
            local += host
            local.append(UInt8(ascii: "="))
            local += opaque
        } else {
            // A plain address; also an SRS1 look-alike without its three fields, which Mail::SRS would mangle and
            // libsrs2 refuse: wrapping it whole keeps it reversible.
            let stamp = Self.timestamp(now)
            local += Array("SRS0".utf8)
            local.append(options.separator)
            local += hash(stamp[...], host, user)
            local.append(UInt8(ascii: "="))
            local += stamp
            local.append(UInt8(ascii: "="))
            local += host
            local.append(UInt8(ascii: "="))
            local += user
        }
        let rewritten = String(decoding: local + [UInt8(ascii: "@")] + alias, as: UTF8.self)
        if let limit = options.maximumLocalPartLength, local.count > limit {
            throw .localPartTooLong(address: address, rewritten: rewritten, length: local.count, limit: limit)
        }
        return rewritten
    }

    // MARK: Reverse

    /// The address an SRS address stands for: the original sender for SRS0, the first forwarder's SRS0 address
    /// for SRS1. Any domain is accepted (the caller decides which domains are ours), as Mail::SRS does.
    public func reverse(_ address: String, now: Int) throws(SRSError) -> String {
        let bytes = Array(address.utf8)
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at + 1 < bytes.count else {
            if Self.isSRS(localPart: bytes[...]) { throw .malformed(address: address, reason: "no @domain") }
            throw .notSRS(address: address)
        }
        let user = bytes[..<at]
        if let rest = Self.afterTag(user, digit: UInt8(ascii: "1")) {
            let fields = Self.split(rest, maxFields: 3)
            if let first = fields.first, first.contains(UInt8(ascii: ".")) {
                throw .malformed(address: address, reason: "SRS1 address without a hash (the unsafe pre-0.28 format)")
            }
            guard fields.count == 3, !fields[1].isEmpty, !fields[2].isEmpty else {
                throw .malformed(address: address, reason: "an SRS1 address needs hash, host and the rest")
            }
            guard verify(fields[0], fields[1], fields[2]) else { throw .invalidHash(address: address) }
            return String(decoding: Array("SRS0".utf8) + fields[2] + [UInt8(ascii: "@")] + fields[1], as: UTF8.self)
        }
        if let rest = Self.afterTag(user, digit: UInt8(ascii: "0")) {
            let fields = Self.split(rest, maxFields: 4)
            guard fields.count == 4, !fields[2].isEmpty, !fields[3].isEmpty else {
                throw .malformed(address: address, reason: "an SRS0 address needs hash, timestamp, host and user")
            }
            // The hash first, then the timestamp: the order in which Mail::SRS reports them.
            guard verify(fields[0], fields[1], fields[2], fields[3]) else { throw .invalidHash(address: address) }
            try checkTimestamp(fields[1], now: now, address: address)
            return String(decoding: fields[3] + [UInt8(ascii: "@")] + fields[2], as: UTF8.self)
        }
        throw .notSRS(address: address)
    }

    /// Whether a local part starts like an SRS address (`SRS0` or `SRS1`, any case, then `=`, `+` or `-`).
    public static func isSRS(localPart: some StringProtocol) -> Bool {
        isSRS(localPart: Array(localPart.utf8)[...])
    }

    static func isSRS(localPart: ArraySlice<UInt8>) -> Bool {
        afterTag(localPart, digit: UInt8(ascii: "0")) != nil || afterTag(localPart, digit: UInt8(ascii: "1")) != nil
    }

    // MARK: Pieces

    /// The two base32 characters of the day of `now` (Mail::SRS `timestamp_create`).
    static func timestamp(_ now: Int) -> [UInt8] {
        let day = now >= 0 ? now / secondsPerDay : (now - secondsPerDay + 1) / secondsPerDay
        return [base32[(day >> 5) & 31], base32[day & 31]]
    }

    /// Mail::SRS `timestamp_check`: valid when today is at most `maximumAgeDays` after the stamp, counted round the
    /// 1024-day cycle. Outside the window, a stamp less than half a cycle ahead is reported as from the future.
    func checkTimestamp(_ stamp: ArraySlice<UInt8>, now: Int, address: String) throws(SRSError) {
        guard !stamp.isEmpty else { throw .malformed(address: address, reason: "empty timestamp") }
        var then = 0
        for byte in stamp {
            guard let value = Self.base32Value(byte) else {
                throw .malformed(address: address, reason: "timestamp is not base32")
            }
            then = (then << 5 | value) & (Self.timestampSlots - 1)
        }
        let today = Self.timestampValue(now)
        let age = ((today - then) % Self.timestampSlots + Self.timestampSlots) % Self.timestampSlots
        if age <= options.maximumAgeDays { return }
        if age > Self.timestampSlots / 2 {
            throw .futureTimestamp(address: address, daysAhead: Self.timestampSlots - age)
        }
        throw .expired(address: address, ageDays: age, maximumAgeDays: options.maximumAgeDays)
    }

    static func timestampValue(_ now: Int) -> Int {
        let day = now >= 0 ? now / secondsPerDay : (now - secondsPerDay + 1) / secondsPerDay
        return ((day % timestampSlots) + timestampSlots) % timestampSlots
    }

    static func base32Value(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): Int(byte - UInt8(ascii: "A"))
        case UInt8(ascii: "a")...UInt8(ascii: "z"): Int(byte - UInt8(ascii: "a"))
        case UInt8(ascii: "2")...UInt8(ascii: "7"): Int(byte - UInt8(ascii: "2")) + 26
        default: nil
        }
    }

    /// The hash written into a new address: HMAC with the first secret over the lower-cased parts.
    func hash(_ parts: ArraySlice<UInt8>...) -> [UInt8] {
        let code = keys[0].code(Self.lowercasedConcatenation(parts))
        let alphabet = options.hashEncoding == .base64 ? Self.base64 : Self.base64url
        return Array(Self.base64Prefix(code, alphabet: alphabet, count: options.hashLength))
    }

    /// Mail::SRS `hash_verify`: at least `hashMinimum` characters that are a prefix of some secret's hash,
    /// compared without regard to case (an MTA may have smashed it); `-` and `_` count as `+` and `/`.
    func verify(_ given: ArraySlice<UInt8>, _ parts: ArraySlice<UInt8>...) -> Bool {
        guard given.count >= options.hashMinimum, given.count <= Self.fullHashLength else { return false }
        let candidate = given.map { byte -> UInt8 in
            switch byte {
            case UInt8(ascii: "-"): UInt8(ascii: "+")
            case UInt8(ascii: "_"): UInt8(ascii: "/")
            default: Self.lower(byte)
            }
        }
        let message = Self.lowercasedConcatenation(parts)
        for key in keys {
            let expected = Self.base64Prefix(key.code(message), alphabet: Self.base64, count: candidate.count)
            if expected.map(Self.lower) == candidate { return true }
        }
        return false
    }

    static func lowercasedConcatenation(_ parts: [ArraySlice<UInt8>]) -> [UInt8] {
        var message: [UInt8] = []
        message.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { message += part.lazy.map(lower) }
        return message
    }

    /// The first `count` characters of the unpadded base64 of `bytes`.
    static func base64Prefix(_ bytes: [UInt8], alphabet: [UInt8], count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var index = 0
        while out.count < count && index < bytes.count {
            let b0 = Int(bytes[index])
            let b1 = index + 1 < bytes.count ? Int(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? Int(bytes[index + 2]) : 0
            let remaining = bytes.count - index
            let sextets = [b0 >> 2, (b0 & 3) << 4 | b1 >> 4, (b1 & 15) << 2 | b2 >> 6, b2 & 63]
            for (position, sextet) in sextets.enumerated() where out.count < count && position <= remaining {
                out.append(alphabet[sextet])
            }
            index += 3
        }
        return out
    }

    /// The rest of `user` after `SRSd` and a separator, or nil when it does not start so.
    static func afterTag(_ user: ArraySlice<UInt8>, digit: UInt8) -> ArraySlice<UInt8>? {
        guard user.count >= 5 else { return nil }
        let start = user.startIndex
        guard lower(user[start]) == UInt8(ascii: "s"), lower(user[start + 1]) == UInt8(ascii: "r"),
            lower(user[start + 2]) == UInt8(ascii: "s"), user[start + 3] == digit,
            SRSOptions.allowedSeparators.contains(user[start + 4])
        else { return nil }
        return user[(start + 5)...]
    }

    /// Perl's `split(/=/, $text, maxFields)`: the last field keeps any further `=`.
    static func split(_ text: ArraySlice<UInt8>, maxFields: Int) -> [ArraySlice<UInt8>] {
        var fields: [ArraySlice<UInt8>] = []
        var start = text.startIndex
        var index = text.startIndex
        while index < text.endIndex && fields.count < maxFields - 1 {
            if text[index] == UInt8(ascii: "=") {
                fields.append(text[start..<index])
                start = index + 1
            }
            index += 1
        }
        fields.append(text[start...])
        return fields
    }

    /// ASCII-only lower case, as Perl's `lc` on byte strings and libsrs2's `tolower` in the C locale.
    @inline(__always)
    static func lower(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    func equalIgnoringASCIICase(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { Self.lower($0) == Self.lower($1) }
    }
}
