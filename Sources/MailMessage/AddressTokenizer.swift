/// One lexical unit of an address list; comments and white space are dropped but remembered in `spaceBefore`.
struct AddressToken {
    enum Kind: Equatable {
        /// A run of atext, UTF-8 included (RFC 6532).
        case atom
        /// `"..."`, quotes included in `range`.
        case quotedString
        /// `[...]`, brackets included in `range`.
        case domainLiteral
        /// One of `< > @ , : ; .`.
        case special(UInt8)
    }

    var kind: Kind
    /// Byte range in the text.
    var range: Range<Int>
    /// White space or a comment came before it (it separates words of a display name).
    var spaceBefore: Bool

    var isWord: Bool { kind == .atom || kind == .quotedString }
}

/// RFC 5322 §3.2 lexical layer: atoms, quoted strings, domain literals, specials; CFWS skipped.
enum AddressTokenizer {
    /// Comments nest; deeper than this is not mail but an attack on the parser.
    static let maxCommentDepth = 32

    static func tokenize(_ text: [UInt8]) throws(MailMessageError) -> [AddressToken] {
        var tokens: [AddressToken] = []
        var index = 0
        var spaceBefore = false
        while index < text.count {
            let byte = text[index]
            switch byte {
            case ASCII.space, ASCII.htab, ASCII.cr, ASCII.lf:
                spaceBefore = true
                index += 1
                continue
            case UInt8(ascii: "("):
                index = try skipComment(text, from: index)
                spaceBefore = true
                continue
            case UInt8(ascii: "\""):
                let end = try closing(text, from: index, close: UInt8(ascii: "\""), what: "quoted string")
                tokens.append(AddressToken(kind: .quotedString, range: index..<end, spaceBefore: spaceBefore))
                index = end
            case UInt8(ascii: "["):
                let end = try closing(text, from: index, close: UInt8(ascii: "]"), what: "domain literal")
                tokens.append(AddressToken(kind: .domainLiteral, range: index..<end, spaceBefore: spaceBefore))
                index = end
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"), UInt8(ascii: ","), UInt8(ascii: ":"),
                UInt8(ascii: ";"), UInt8(ascii: "."):
                tokens.append(AddressToken(kind: .special(byte), range: index..<index + 1, spaceBefore: spaceBefore))
                index += 1
            default:
                guard isAtomByte(byte) else {
                    throw AddressParser.error("unexpected \(describe(byte)) at byte \(index)", text)
                }
                let start = index
                while index < text.count && isAtomByte(text[index]) {
                    index += 1
                }
                tokens.append(AddressToken(kind: .atom, range: start..<index, spaceBefore: spaceBefore))
            }
            spaceBefore = false
        }
        return tokens
    }

    /// atext (RFC 5322 §3.2.3) plus every non-ASCII byte (UTF-8, RFC 6532 §3.2).
    @inline(__always)
    static func isAtomByte(_ byte: UInt8) -> Bool {
        if byte >= 0x80 { return true }
        guard byte > 0x20 && byte < 0x7F else { return false }
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "["),
            UInt8(ascii: "]"), UInt8(ascii: ":"), UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "\\"),
            UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "\""):
            return false
        default:
            return true
        }
    }

    /// Index just past the comment that starts at `start`; nested comments and quoted pairs allowed.
    private static func skipComment(_ text: [UInt8], from start: Int) throws(MailMessageError) -> Int {
        var depth = 0
        var index = start
        while index < text.count {
            switch text[index] {
            case UInt8(ascii: "\\"):
                index += 2
                continue
            case UInt8(ascii: "("):
                depth += 1
                guard depth <= maxCommentDepth else {
                    throw AddressParser.error("comments nested more than \(maxCommentDepth) deep", text)
                }
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return index + 1 }
            case ASCII.nul:
                throw AddressParser.error("NUL byte in a comment", text)
            default:
                break
            }
            index += 1
        }
        throw AddressParser.error("a comment opened at byte \(start) is not closed", text)
    }

    /// Index just past the `close` byte that ends the quoted string or literal opened at `start`.
    private static func closing(
        _ text: [UInt8],
        from start: Int,
        close: UInt8,
        what: String
    ) throws(MailMessageError) -> Int {
        var index = start + 1
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == close { return index + 1 }
            if byte == ASCII.nul { throw AddressParser.error("NUL byte in a \(what)", text) }
            if close == UInt8(ascii: "]") && byte == UInt8(ascii: "[") {
                throw AddressParser.error("'[' inside a domain literal", text)
            }
            index += 1
        }
        throw AddressParser.error("a \(what) opened at byte \(start) is not closed", text)
    }

    static func describe(_ byte: UInt8) -> String {
        if byte > 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        let digits = Array("0123456789ABCDEF")
        return "byte 0x" + String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
