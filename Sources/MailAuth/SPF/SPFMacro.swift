/// A `macro-string` of RFC 7208 §7.1, parsed once when the record is read and expanded per check.
public struct SPFMacroString: Sendable, Hashable {
    /// One `%{...}` expansion.
    public struct Macro: Sendable, Hashable {
        /// The macro letter, lower case (`s l o d i p h c r t v`).
        public var letter: Character
        /// How many right-hand parts to keep; nil keeps them all.
        public var keep: Int?
        public var reverse: Bool
        /// The characters the value is split on; `.` when the macro names none.
        public var delimiters: Set<Character>
        /// An upper-case letter asks for URL escaping (RFC 7208 §7.3).
        public var urlEscape: Bool
    }

    /// A literal run or a macro.
    public enum Piece: Sendable, Hashable {
        case literal(String)
        case macro(Macro)
    }

    public var pieces: [Piece]
    /// The text as written, for reasons and diagnostics.
    public var text: String

    /// True when the last piece is a macro: a `domain-spec` may end in one instead of a top label.
    var endsWithMacro: Bool {
        if case .macro = pieces.last { return true }
        return false
    }

    /// True when expanding needs the validated domain name of the client (`%{p}`), which costs DNS queries.
    var usesValidatedName: Bool {
        pieces.contains { if case .macro(let macro) = $0 { return macro.letter == "p" } else { return false } }
    }

    /// Parses a macro string. `explanation` allows the `c r t` letters and spaces (the `explain-string` of §6.2).
    public init(parsing text: some StringProtocol, explanation: Bool = false) throws(SPFSyntaxError) {
        let whole = String(text)
        var parsed: [Piece] = []
        var literal = ""
        let characters = Array(whole)
        var index = 0
        func flush() {
            if !literal.isEmpty { parsed.append(.literal(literal)) }
            literal = ""
        }
        while index < characters.count {
            let character = characters[index]
            guard let ascii = character.asciiValue, ascii >= 0x20, ascii <= 0x7e else {
                throw SPFSyntaxError("'\(whole)' holds a character that is not printable ASCII")
            }
            if character == " " && !explanation {
                throw SPFSyntaxError("'\(whole)' holds a space")
            }
            guard character == "%" else {
                literal.append(character)
                index += 1
                continue
            }
            guard index + 1 < characters.count else { throw SPFSyntaxError("'\(whole)' ends in a lone '%'") }
            switch characters[index + 1] {
            case "%": literal.append("%")
            case "_": literal.append(" ")
            case "-": literal.append("%20")
            case "{":
                guard let close = characters[(index + 2)...].firstIndex(of: "}") else {
                    throw SPFSyntaxError("'\(whole)' has a '%{' without '}'")
                }
                let macro = try Self.parseMacro(characters[(index + 2)..<close], explanation: explanation, in: whole)
                flush()
                parsed.append(.macro(macro))
                index = close + 1
                continue
            default:
                throw SPFSyntaxError("'\(whole)' has '%' followed by '\(characters[index + 1])'")
            }
            index += 2
        }
        flush()
        self.text = whole
        pieces = parsed
    }

    private static func parseMacro(
        _ body: ArraySlice<Character>, explanation: Bool, in text: String
    ) throws(SPFSyntaxError) -> Macro {
        guard let first = body.first, first.isASCII, first.isLetter else {
            throw SPFSyntaxError("'\(text)' has a macro without a letter")
        }
        let letter = Character(first.lowercased())
        let letters: Set<Character> =
            explanation
            ? ["s", "l", "o", "d", "i", "p", "h", "v", "c", "r", "t"] : ["s", "l", "o", "d", "i", "p", "h", "v"]
        guard letters.contains(letter) else {
            throw SPFSyntaxError("'\(text)' uses the unknown macro letter '\(first)'")
        }
        var rest = body.dropFirst()
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(digits.count)
        var keep: Int?
        if !digits.isEmpty {
            // More parts than any name has is the same as all of them; cap so a long digit run cannot overflow.
            let value = digits.count > 3 ? 1000 : Int(String(digits)) ?? 0
            guard digits.contains(where: { $0 != "0" }) else {
                throw SPFSyntaxError("'\(text)' asks a macro for zero parts")
            }
            keep = value
        }
        var reverse = false
        if rest.first == "r" || rest.first == "R" {
            reverse = true
            rest = rest.dropFirst()
        }
        var delimiters: Set<Character> = []
        for character in rest {
            guard ".-+,/_=".contains(character) else {
                throw SPFSyntaxError("'\(text)' has the character '\(character)' where a macro delimiter belongs")
            }
            delimiters.insert(character)
        }
        return Macro(
            letter: letter, keep: keep, reverse: reverse, delimiters: delimiters.isEmpty ? ["."] : delimiters,
            urlEscape: first.isUppercase)
    }
}

/// A record that breaks RFC 7208's grammar: the check's result is `permerror` with this reason.
public struct SPFSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The values the macros expand to in one check (RFC 7208 §7.2).
struct SPFMacroValues: Sendable {
    var sender: String
    var localPart: String
    var senderDomain: String
    var domain: String
    var ip: IPAddress
    var helo: String
    var receiver: String
    var timestamp: Int
    /// `%{p}`: found by DNS only when a macro asks for it.
    var validatedName: String?

    func value(of letter: Character) -> String {
        switch letter {
        case "s": return sender
        case "l": return localPart
        case "o": return senderDomain
        case "d": return domain
        case "i":
            if case .v6 = ip {
                // Dotted nibbles, upper case as RFC 7208 §7.4's example writes them.
                return ip.bytes.flatMap { [$0 >> 4, $0 & 0x0f] }.map { String($0, radix: 16, uppercase: true) }
                    .joined(separator: ".")
            }
            return ip.description
        case "p": return validatedName ?? "unknown"
        case "v": return ip.bitWidth == 32 ? "in-addr" : "ip6"
        case "h": return helo
        case "c": return ip.description
        case "r": return receiver
        case "t": return String(timestamp)
        default: return ""
        }
    }

    /// Expands a macro string; the caller has found `validatedName` first if the string needs it.
    func expand(_ string: SPFMacroString) -> String {
        var out = ""
        for piece in string.pieces {
            switch piece {
            case .literal(let text): out += text
            case .macro(let macro): out += expand(macro)
            }
        }
        return out
    }

    private func expand(_ macro: SPFMacroString.Macro) -> String {
        var parts = value(of: macro.letter).split(omittingEmptySubsequences: false) { macro.delimiters.contains($0) }
        if macro.reverse { parts.reverse() }
        if let keep = macro.keep, keep < parts.count { parts = Array(parts.suffix(keep)) }
        let joined = parts.joined(separator: ".")
        return macro.urlEscape ? Self.urlEscape(joined) : joined
    }

    /// Percent-encodes every byte outside RFC 3986's unreserved set.
    static func urlEscape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let character = Character(Unicode.Scalar(byte))
            if byte < 0x80 && (character.isLetter || character.isNumber || "-._~".contains(character)) {
                out.append(character)
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }
}
