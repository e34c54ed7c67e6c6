/// RFC 5322 address-list parsing: display names, comments (nested), quoted local parts, group syntax, obs-route
/// tolerance, UTF-8 (RFC 6532).
///
/// Values are taken as written: the domain keeps its case, a quoted local part keeps its quotes, encoded-words
/// stay encoded. Unquoted local parts may have empty words (`a..b`, `a.`) because such addresses are still handed
/// out by some providers and refusing them would only leave their mail unsigned; domains must be exact.
public enum AddressParser {
    /// Every mailbox of an address list, groups flattened; empty groups and empty list elements contribute none.
    public static func parseAddressList(_ value: String) throws(MailMessageError) -> [Mailbox] {
        var parser = try Parser(value)
        var mailboxes: [Mailbox] = []
        while true {
            parser.skipCommas()
            guard !parser.atEnd else { break }
            try parser.parseAddress(into: &mailboxes, allowGroup: true)
            guard parser.atEnd || parser.peek(UInt8(ascii: ",")) else {
                throw parser.error("expected ',' between addresses, found \(parser.describeNext())")
            }
        }
        return mailboxes
    }

    /// Exactly one mailbox (no group, no list).
    public static func parseMailbox(_ value: String) throws(MailMessageError) -> Mailbox {
        var parser = try Parser(value)
        guard !parser.atEnd else { throw parser.error("no mailbox") }
        var mailboxes: [Mailbox] = []
        try parser.parseAddress(into: &mailboxes, allowGroup: false)
        guard parser.atEnd, let mailbox = mailboxes.first else {
            throw parser.error("expected one mailbox, found more after it: \(parser.describeNext())")
        }
        return mailbox
    }

    /// An `invalidAddress` error quoting (the start of) the text.
    static func error(_ problem: String, _ text: [UInt8]) -> MailMessageError {
        let shown = String(decoding: text.prefix(120), as: UTF8.self)
        return MailMessageError(.invalidAddress, "\(problem) in \"\(shown)\(text.count > 120 ? "…" : "")\"")
    }
}

/// Recursive descent over the tokens; groups cannot nest, so the depth is fixed.
private struct Parser {
    let text: [UInt8]
    let tokens: [AddressToken]
    var position = 0

    init(_ value: String) throws(MailMessageError) {
        text = Array(value.utf8)
        tokens = try AddressTokenizer.tokenize(text)
    }

    var atEnd: Bool { position >= tokens.count }

    func peek(_ special: UInt8) -> Bool {
        position < tokens.count && tokens[position].kind == .special(special)
    }

    mutating func skipCommas() {
        while peek(UInt8(ascii: ",")) { position += 1 }
    }

    func error(_ problem: String) -> MailMessageError {
        AddressParser.error(problem, text)
    }

    func describeNext() -> String {
        guard position < tokens.count else { return "the end of the text" }
        return "\"" + string(tokens[position].range) + "\""
    }

    func string(_ range: Range<Int>) -> String {
        String(decoding: text[range], as: UTF8.self)
    }

    // address = mailbox / group; mailbox = name-addr / addr-spec; group = display-name ":" [group-list] ";"
    mutating func parseAddress(into mailboxes: inout [Mailbox], allowGroup: Bool) throws(MailMessageError) {
        let phraseStart = position
        while position < tokens.count && (tokens[position].isWord || tokens[position].kind == .special(ASCII.dot)) {
            position += 1
        }
        let phrase = phraseStart..<position
        guard position < tokens.count else {
            guard let first = phrase.first, let last = phrase.last else { throw error("missing address") }
            let words = string(tokens[first].range.lowerBound..<tokens[last].range.upperBound)
            throw error("\"\(words)\" is not an address (no '@')")
        }
        switch tokens[position].kind {
        case .special(UInt8(ascii: "<")):
            position += 1
            var mailbox = try parseAngleAddress()
            mailbox.displayName = displayName(phrase)
            mailboxes.append(mailbox)
        case .special(UInt8(ascii: "@")):
            guard !phrase.isEmpty else { throw error("an address has no local part before '@'") }
            let localPart = try self.localPart(phrase)
            position += 1
            mailboxes.append(Mailbox(localPart: localPart, domain: try domain()))
        case .special(UInt8(ascii: ":")):
            guard allowGroup else { throw error("a group where a single mailbox was expected") }
            guard !phrase.isEmpty else { throw error("a group without a name before ':'") }
            position += 1
            try parseGroupList(into: &mailboxes)
        default:
            throw error("expected an address, found \(describeNext())")
        }
    }

    // group-list = mailbox-list / CFWS / obs-group-list, then ";"
    private mutating func parseGroupList(into mailboxes: inout [Mailbox]) throws(MailMessageError) {
        while true {
            skipCommas()
            guard !atEnd else { throw error("a group is not closed with ';'") }
            if peek(UInt8(ascii: ";")) {
                position += 1
                return
            }
            try parseAddress(into: &mailboxes, allowGroup: false)
            guard peek(UInt8(ascii: ",")) || peek(UInt8(ascii: ";")) else {
                throw error("expected ',' or ';' in a group, found \(describeNext())")
            }
        }
    }

    // angle-addr = "<" [obs-route] addr-spec ">"; obs-route = obs-domain-list ":"
    private mutating func parseAngleAddress() throws(MailMessageError) -> Mailbox {
        if peek(UInt8(ascii: "@")) || peek(UInt8(ascii: ",")) {
            // The source route is obsolete and ignored; only its syntax is checked.
            while true {
                if peek(UInt8(ascii: ",")) {
                    position += 1
                } else if peek(UInt8(ascii: "@")) {
                    position += 1
                    _ = try domain()
                } else {
                    break
                }
            }
            guard peek(UInt8(ascii: ":")) else { throw error("a source route in <...> does not end with ':'") }
            position += 1
        }
        if peek(UInt8(ascii: ">")) { throw error("an empty address <>") }
        let start = position
        while position < tokens.count && (tokens[position].isWord || tokens[position].kind == .special(ASCII.dot)) {
            position += 1
        }
        guard start < position else { throw error("expected an address after '<', found \(describeNext())") }
        let localPart = try self.localPart(start..<position)
        guard peek(UInt8(ascii: "@")) else { throw error("the address in <...> has no '@'") }
        position += 1
        let domain = try domain()
        guard peek(UInt8(ascii: ">")) else { throw error("expected '>' after the address, found \(describeNext())") }
        position += 1
        return Mailbox(localPart: localPart, domain: domain)
    }

    // local-part = dot-atom / quoted-string / obs-local-part (word *("." word)), as written without CFWS.
    private func localPart(_ range: Range<Int>) throws(MailMessageError) -> String {
        var bytes: [UInt8] = []
        var previousWasWord = false
        for index in range {
            let token = tokens[index]
            if token.isWord {
                guard !previousWasWord else {
                    throw error("the local part has words without '.' between them (a display name needs <...>)")
                }
                previousWasWord = true
            } else {
                previousWasWord = false
            }
            bytes.append(contentsOf: text[token.range])
        }
        guard range.contains(where: { tokens[$0].isWord }) else { throw error("the local part has no word") }
        return String(decoding: bytes, as: UTF8.self)
    }

    // domain = dot-atom / domain-literal / obs-domain (atom *("." atom)), as written without CFWS.
    private mutating func domain() throws(MailMessageError) -> String {
        guard position < tokens.count else { throw error("missing domain after '@'") }
        if tokens[position].kind == .domainLiteral {
            position += 1
            return string(tokens[position - 1].range)
        }
        var bytes: [UInt8] = []
        while true {
            guard position < tokens.count, tokens[position].kind == .atom else {
                throw error(bytes.isEmpty ? "missing domain after '@'" : "the domain has an empty label")
            }
            bytes.append(contentsOf: text[tokens[position].range])
            position += 1
            guard peek(ASCII.dot) else { break }
            bytes.append(ASCII.dot)
            position += 1
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Words joined by one space where white space or a comment separated them; quoted strings unquoted.
    private func displayName(_ range: Range<Int>) -> String? {
        var bytes: [UInt8] = []
        for index in range {
            let token = tokens[index]
            if index != range.lowerBound && token.spaceBefore { bytes.append(ASCII.space) }
            guard token.kind == .quotedString else {
                bytes.append(contentsOf: text[token.range])
                continue
            }
            var inner = token.range.lowerBound + 1
            let end = token.range.upperBound - 1
            while inner < end {
                let byte = text[inner]
                if byte == UInt8(ascii: "\\") && inner + 1 < end {
                    bytes.append(text[inner + 1])
                    inner += 2
                    continue
                }
                if byte != ASCII.cr && byte != ASCII.lf { bytes.append(byte) }  // folding inside the quotes
                inner += 1
            }
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }
}
