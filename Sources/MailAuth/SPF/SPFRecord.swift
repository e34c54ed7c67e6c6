/// An SPF record (`v=spf1 ...`) read into its directives and modifiers (RFC 7208 §4.6, §12).
///
/// The whole record is checked before any of it is evaluated, so a syntax error anywhere gives `permerror`
/// even when an earlier mechanism would have matched (§4.6).
public struct SPFRecord: Sendable, Hashable {
    /// `+`, `-`, `~` or `?` before a mechanism.
    public enum Qualifier: Character, Sendable, Hashable {
        case pass = "+"
        case fail = "-"
        case softfail = "~"
        case neutral = "?"

        var status: SPFResult.Status {
            switch self {
            case .pass: return .pass
            case .fail: return .fail
            case .softfail: return .softfail
            case .neutral: return .neutral
            }
        }
    }

    /// The eight mechanisms of §5.
    public enum Mechanism: Sendable, Hashable {
        case all
        case include(SPFMacroString)
        case a(SPFMacroString?, ip4Prefix: Int, ip6Prefix: Int)
        case mx(SPFMacroString?, ip4Prefix: Int, ip6Prefix: Int)
        case ptr(SPFMacroString?)
        case ip4(IPAddress, prefix: Int)
        case ip6(IPAddress, prefix: Int)
        case exists(SPFMacroString)

        /// True for the terms that query DNS and count toward the limit of 10 (§4.6.4).
        var queriesDNS: Bool {
            switch self {
            case .all, .ip4, .ip6: return false
            default: return true
            }
        }
    }

    /// A qualifier and a mechanism, with the term as written.
    public struct Directive: Sendable, Hashable {
        public var qualifier: Qualifier
        public var mechanism: Mechanism
        public var text: String
    }

    public var directives: [Directive]
    /// `redirect=`: the policy to use when no mechanism matches.
    public var redirect: SPFMacroString?
    /// `exp=`: where the explanation of a `fail` is.
    public var explanation: SPFMacroString?

    /// True when `text` is an SPF version 1 record: `v=spf1` alone or followed by a space (§4.5).
    public static func isSPF(_ text: String) -> Bool {
        let prefix = text.utf8.prefix(7)
        guard prefix.count >= 6, String(decoding: prefix.prefix(6), as: UTF8.self).lowercased() == "v=spf1" else {
            return false
        }
        return prefix.count == 6 || prefix.last == UInt8(ascii: " ")
    }

    /// Reads a whole record, version included.
    public init(parsing text: String) throws(SPFSyntaxError) {
        guard Self.isSPF(text) else { throw SPFSyntaxError("the record does not start with 'v=spf1'") }
        directives = []
        redirect = nil
        explanation = nil
        // Terms are separated by spaces only (§4.6.1); any other control or non-ASCII character is an error.
        for byte in text.utf8 where byte < 0x20 || byte > 0x7e {
            throw SPFSyntaxError("the record holds the byte 0x\(String(byte, radix: 16)), which is not printable ASCII")
        }
        for term in text.dropFirst(6).split(separator: " ") {
            try read(term)
        }
    }

    private mutating func read(_ term: Substring) throws(SPFSyntaxError) {
        // A modifier is a name then '=' before any ':' or '/' (§4.6.1, §12).
        if let equals = term.firstIndex(of: "="), Self.isModifierName(term[..<equals]) {
            let name = term[..<equals].lowercased()
            let value = term[term.index(after: equals)...]
            switch name {
            case "redirect", "exp":
                let spec = try Self.domainSpec(value, in: term)
                if name == "redirect" {
                    guard redirect == nil else { throw SPFSyntaxError("'redirect' appears twice") }
                    redirect = spec
                } else {
                    guard explanation == nil else { throw SPFSyntaxError("'exp' appears twice") }
                    explanation = spec
                }
            default:
                // Unknown modifiers are ignored (§6), but their value must still be a macro string.
                _ = try SPFMacroString(parsing: value)
            }
            return
        }
        var rest = term
        let qualifier = rest.first.flatMap(Qualifier.init(rawValue:)) ?? .pass
        if rest.first.flatMap(Qualifier.init(rawValue:)) != nil { rest = rest.dropFirst() }
        let nameEnd = rest.firstIndex { $0 == ":" || $0 == "/" } ?? rest.endIndex
        let name = rest[..<nameEnd].lowercased()
        let argument = rest[nameEnd...]
        let mechanism: Mechanism
        switch name {
        case "all":
            guard argument.isEmpty else { throw SPFSyntaxError("'\(term)': 'all' takes no argument") }
            mechanism = .all
        case "include", "exists":
            guard argument.first == ":" else { throw SPFSyntaxError("'\(term)' needs ':' and a domain") }
            let spec = try Self.domainSpec(argument.dropFirst(), in: term)
            mechanism = name == "include" ? .include(spec) : .exists(spec)
        case "a", "mx":
            let (domainPart, ip4Prefix, ip6Prefix) = try Self.dualCIDR(argument, in: term)
            var spec: SPFMacroString?
            if let domainPart {
                guard domainPart.first == ":" else { throw SPFSyntaxError("'\(term)' is not a mechanism") }
                spec = try Self.domainSpec(domainPart.dropFirst(), in: term)
            }
            mechanism =
                name == "a"
                ? .a(spec, ip4Prefix: ip4Prefix, ip6Prefix: ip6Prefix)
                : .mx(spec, ip4Prefix: ip4Prefix, ip6Prefix: ip6Prefix)
        case "ptr":
            if argument.isEmpty {
                mechanism = .ptr(nil)
            } else {
                guard argument.first == ":" else { throw SPFSyntaxError("'\(term)': 'ptr' takes no prefix length") }
                mechanism = .ptr(try Self.domainSpec(argument.dropFirst(), in: term))
            }
        case "ip4", "ip6":
            guard argument.first == ":" else { throw SPFSyntaxError("'\(term)' needs ':' and an address") }
            let network = argument.dropFirst()
            let slash = network.firstIndex(of: "/") ?? network.endIndex
            let width = name == "ip4" ? 32 : 128
            guard let address = IPAddress(network[..<slash]), address.bitWidth == width,
                name == "ip6" || !network[..<slash].contains(":")
            else {
                throw SPFSyntaxError(
                    "'\(term)': '\(network[..<slash])' is not an \(name == "ip4" ? "IPv4" : "IPv6") address")
            }
            var prefix = width
            if slash < network.endIndex {
                prefix = try Self.prefixLength(network[network.index(after: slash)...], maximum: width, in: term)
            }
            mechanism = name == "ip4" ? .ip4(address, prefix: prefix) : .ip6(address, prefix: prefix)
        default:
            throw SPFSyntaxError("'\(term)' is not a mechanism or modifier")
        }
        directives.append(Directive(qualifier: qualifier, mechanism: mechanism, text: String(term)))
    }

    /// `name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )`
    private static func isModifierName(_ name: Substring) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// Splits `[":" domain-spec] [ip4-cidr-length] ["/" ip6-cidr-length]` off the end of an `a` or `mx` term.
    private static func dualCIDR(
        _ argument: Substring, in term: Substring
    ) throws(SPFSyntaxError) -> (Substring?, Int, Int) {
        var rest = argument
        var ip4 = 32
        var ip6 = 128
        // The lengths are digits after the last '/' (and '//'); anything else belongs to the domain-spec, where
        // '/' is a legal character (`a:foo:bar/baz.example.com`).
        if let slash = rest.lastIndex(of: "/"),
            rest[rest.index(after: slash)...].allSatisfy({ $0.isASCII && $0.isNumber })
        {
            let digits = rest[rest.index(after: slash)...]
            let before = rest[..<slash]
            if before.hasSuffix("/") {
                ip6 = try prefixLength(digits, maximum: 128, in: term)
                rest = before.dropLast()
                if let slash4 = rest.lastIndex(of: "/"),
                    rest[rest.index(after: slash4)...].allSatisfy({ $0.isASCII && $0.isNumber })
                {
                    ip4 = try prefixLength(rest[rest.index(after: slash4)...], maximum: 32, in: term)
                    rest = rest[..<slash4]
                }
            } else {
                ip4 = try prefixLength(digits, maximum: 32, in: term)
                rest = before
            }
        }
        return (rest.isEmpty ? nil : rest, ip4, ip6)
    }

    /// A CIDR length: digits without a leading zero, at most `maximum` (§5.6).
    private static func prefixLength(
        _ digits: Substring, maximum: Int, in term: Substring
    ) throws(SPFSyntaxError) -> Int {
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
            digits == "0" || digits.first != "0", let value = Int(digits), value <= maximum
        else { throw SPFSyntaxError("'\(term)' has the bad prefix length '/\(digits)'") }
        return value
    }

    /// `domain-spec = macro-string domain-end`, `domain-end = ( "." toplabel [ "." ] ) / macro-expand` (§7.1).
    private static func domainSpec(_ text: Substring, in term: Substring) throws(SPFSyntaxError) -> SPFMacroString {
        guard !text.isEmpty else { throw SPFSyntaxError("'\(term)' has an empty domain") }
        let spec = try SPFMacroString(parsing: text)
        if spec.endsWithMacro { return spec }
        var name = text
        if name.hasSuffix(".") { name = name.dropLast() }
        guard let dot = name.lastIndex(of: "."), isTopLabel(name[name.index(after: dot)...]) else {
            throw SPFSyntaxError("'\(term)': '\(text)' does not end in a valid top-level label or a macro")
        }
        return spec
    }

    /// `toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )`: not all
    /// digits, letters, digits and inner hyphens.
    private static func isTopLabel(_ label: Substring) -> Bool {
        guard let first = label.first, let last = label.last, first != "-", last != "-" else { return false }
        guard label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return false }
        return label.contains { $0.isLetter } || label.contains("-")
    }
}
