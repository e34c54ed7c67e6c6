/// RFC 8601 §2.2 over the bytes of a field value: CFWS (white space, folding, nested comments) may stand between
/// any two tokens, values are RFC 2045 tokens or quoted strings.
///
/// Two leniencies that real verifiers need: a property value may be any run of bytes other than white space, `;`,
/// `(`, `)` and `"` (Gmail writes `header.b=ab+/cd=`, which is not an RFC 2045 token), and a trailing `;` after the
/// last result is accepted. Everything else that breaks the grammar is an error naming what was expected.
struct AuthenticationResultsParser {
    private let bytes: [UInt8]
    private var index = 0
    /// Comments seen by the last `skipCFWS`, kept for the result entry being read.
    private var comments: [String] = []

    // Values far beyond any real header are refused before they cost anything.
    private static let maximumLength = 64 * 1024
    private static let maximumCommentDepth = 32

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    private var atEnd: Bool { index >= bytes.count }
    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func error(_ message: String) -> AuthenticationResultsParseError {
        AuthenticationResultsParseError(message, offset: index)
    }

    /// What is at the current position, for error messages.
    private var found: String {
        guard let byte = current else { return "the end of the value" }
        if byte < 0x20 || byte >= 0x7F { return "byte 0x\(String(byte, radix: 16))" }
        return "'\(Character(Unicode.Scalar(byte)))'"
    }

    /// `i=<digits>` and `;` at the start of an ARC-Authentication-Results value.
    mutating func parseInstanceTag() throws(AuthenticationResultsParseError) -> Int {
        try skipCFWS()
        guard current == UInt8(ascii: "i") || current == UInt8(ascii: "I") else { throw error("expected 'i='") }
        index += 1
        try skipCFWS()
        try expect(UInt8(ascii: "="), "'=' after 'i'")
        try skipCFWS()
        guard let instance = try readNumber(), (1...50).contains(instance) else {
            throw error("the ARC instance must be a number from 1 to 50")
        }
        try skipCFWS()
        try expect(UInt8(ascii: ";"), "';' after the ARC instance")
        return instance
    }

    mutating func parsePayload() throws(AuthenticationResultsParseError) -> AuthenticationResults {
        guard bytes.count <= Self.maximumLength else {
            throw error("the value is \(bytes.count) bytes, above the \(Self.maximumLength)-byte limit")
        }
        try skipCFWS()
        guard !atEnd else { throw error("the value is empty: no authserv-id") }
        let authservID = try readValue(what: "the authserv-id")
        try skipCFWS()
        var version: Int? = nil
        if let byte = current, ASCII.isDigit(byte) {
            version = try readNumber()
            // Only version 1 exists; a later one may change the grammar, so it is not guessed at (§2.2).
            guard version == 1 else { throw error("unsupported Authentication-Results version \(version ?? 0)") }
            try skipCFWS()
        }
        var results: [AuthenticationResult] = []
        var sawNone = false
        while !atEnd {
            try expect(UInt8(ascii: ";"), "';' before a result")
            try skipCFWS()
            if atEnd { break }  // a trailing ';'
            guard !sawNone else { throw error("'none' must be the only result") }
            let start = index
            let method = try readKeyword(what: "a method name")
            if method == "none" {
                try skipCFWS()
                if atEnd || current == UInt8(ascii: ";") {
                    guard results.isEmpty else {
                        index = start
                        throw error("'none' must be the only result")
                    }
                    sawNone = true
                    continue
                }
            }
            results.append(try parseResultInfo(method: method))
        }
        guard !results.isEmpty || sawNone else { throw error("expected '; none' or at least one result") }
        return AuthenticationResults(authservID: authservID, version: version, results: results)
    }

    /// `[/version] = result [reason=value] *(ptype.property=value)`, after the method name.
    private mutating func parseResultInfo(
        method: String
    ) throws(AuthenticationResultsParseError)
        -> AuthenticationResult
    {
        comments = []
        try skipCFWS()
        var methodVersion: Int? = nil
        if current == UInt8(ascii: "/") {
            index += 1
            try skipCFWS()
            guard let number = try readNumber() else { throw error("expected a method version after '/'") }
            methodVersion = number
            try skipCFWS()
        }
        try expect(UInt8(ascii: "="), "'=' after the method '\(method)'")
        try skipCFWS()
        let result = try readKeyword(what: "a result for '\(method)'")
        var entry = AuthenticationResult(method: method, methodVersion: methodVersion, result: result)
        try skipCFWS()
        while let byte = current, byte != UInt8(ascii: ";") {
            let name = try readKeyword(what: "'reason=' or a property ('ptype.property=value')")
            try skipCFWS()
            if name == "reason" && current == UInt8(ascii: "=") {
                guard entry.reason == nil, entry.properties.isEmpty else {
                    throw error("'reason=' must come once, before the properties")
                }
                index += 1
                try skipCFWS()
                entry.reason = try readPropertyValue(what: "the reason")
            } else {
                try expect(UInt8(ascii: "."), "'.' after the property type '\(name)'")
                try skipCFWS()
                let property = try readKeyword(what: "a property name after '\(name).'")
                try skipCFWS()
                try expect(UInt8(ascii: "="), "'=' after '\(name).\(property)'")
                try skipCFWS()
                let value = try readPropertyValue(what: "the value of '\(name).\(property)'")
                entry.properties.append(AuthenticationProperty(name, property, value))
            }
            try skipCFWS()
        }
        entry.comments = comments
        return entry
    }

    private mutating func expect(_ byte: UInt8, _ what: String) throws(AuthenticationResultsParseError) {
        guard current == byte else { throw error("expected \(what), found \(found)") }
        index += 1
    }

    /// White space, CRLF folding and comments; comments are collected into `comments`.
    private mutating func skipCFWS() throws(AuthenticationResultsParseError) {
        while let byte = current {
            switch byte {
            case ASCII.space, ASCII.tab, ASCII.cr, ASCII.lf:
                index += 1
            case UInt8(ascii: "("):
                comments.append(try readComment())
            default:
                return
            }
        }
    }

    /// A comment, nested comments kept as written; returns its text without the outer parentheses.
    private mutating func readComment() throws(AuthenticationResultsParseError) -> String {
        let start = index
        var depth = 0
        var text: [UInt8] = []
        while let byte = current {
            index += 1
            switch byte {
            case UInt8(ascii: "\\"):
                guard let escaped = current else { break }
                try checkEscaped(escaped)
                text.append(escaped)
                index += 1
                continue
            case UInt8(ascii: "("):
                depth += 1
                guard depth <= Self.maximumCommentDepth else { throw error("comments nested too deeply") }
                if depth == 1 { continue }
            case UInt8(ascii: ")"):
                depth -= 1
                if depth == 0 { return Self.collapse(text) }
            case ASCII.cr, ASCII.lf:
                continue  // folding inside a comment
            default:
                break
            }
            text.append(byte)
        }
        index = start
        throw error("a comment is not closed")
    }

    /// A quoted-pair escapes a visible character or white space (RFC 5322 §3.2.1), never a line break or control.
    private func checkEscaped(_ byte: UInt8) throws(AuthenticationResultsParseError) {
        guard byte >= 0x20 || byte == ASCII.tab, byte != 0x7F else {
            throw error("a backslash escapes byte 0x\(String(byte, radix: 16)), which may not be escaped")
        }
    }

    /// Let-dig [Ldh-str], lower-cased (method, result, ptype, property names).
    private mutating func readKeyword(what: String) throws(AuthenticationResultsParseError) -> String {
        let start = index
        while let byte = current, ASCII.isLetterOrDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        {
            index += 1
        }
        guard index > start else { throw error("expected \(what), found \(found)") }
        guard bytes[index - 1] != UInt8(ascii: "-") else {
            throw error("\(what) may not end with '-'")
        }
        return String(decoding: bytes[start..<index], as: UTF8.self).lowercased()
    }

    private mutating func readNumber() throws(AuthenticationResultsParseError) -> Int? {
        let start = index
        while let byte = current, ASCII.isDigit(byte) { index += 1 }
        guard index > start else { return nil }
        guard index - start <= 9 else { throw error("number too long") }
        return Int(String(decoding: bytes[start..<index], as: UTF8.self))
    }

    /// An RFC 2045 token or a quoted string (the authserv-id).
    private mutating func readValue(what: String) throws(AuthenticationResultsParseError) -> String {
        if current == ASCII.quote { return try readQuotedString() }
        let start = index
        while let byte = current, Self.isTokenByte(byte) { index += 1 }
        guard index > start else { throw error("expected \(what), found \(found)") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// A property or reason value: a quoted string, an address whose local-part is quoted, or a bare
    /// run of bytes up to white space, `;`, `(`, `)` or `"`.
    private mutating func readPropertyValue(what: String) throws(AuthenticationResultsParseError) -> String {
        if current == ASCII.quote {
            let start = index
            let quoted = try readQuotedString()
            guard current == UInt8(ascii: "@") else { return quoted }
            // A quoted local-part belongs to the address, quotes and all: `"a b"@example.com`.
            _ = readBare()
            // Folding inside the quotes is invisible, as in any quoted string (AuthResultsFuzzer: keeping a CR
            // here made the value differ once written and read back).
            return String(decoding: bytes[start..<index].filter { $0 != ASCII.cr && $0 != ASCII.lf }, as: UTF8.self)
        }
        let value = readBare()
        guard !value.isEmpty else { throw error("expected \(what), found \(found)") }
        return value
    }

    private mutating func readBare() -> String {
        let start = index
        while let byte = current, Self.isBareValueByte(byte) { index += 1 }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func readQuotedString() throws(AuthenticationResultsParseError) -> String {
        let start = index
        index += 1
        var text: [UInt8] = []
        while let byte = current {
            index += 1
            switch byte {
            case ASCII.quote:
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let escaped = current else { continue }
                try checkEscaped(escaped)
                text.append(escaped)
                index += 1
            case ASCII.cr, ASCII.lf:
                continue  // folding inside a quoted string
            default:
                text.append(byte)
            }
        }
        index = start
        throw error("a quoted string is not closed")
    }

    /// Runs of white space (from folding) become one space; ends are trimmed.
    private static func collapse(_ text: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var pendingSpace = false
        for byte in text {
            if byte == ASCII.space || byte == ASCII.tab {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(ASCII.space) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 2045 token: visible ASCII except tspecials (and non-ASCII, which RFC 6532 allows in values).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        if byte >= 0x80 { return true }
        guard byte > 0x20 && byte < 0x7F else { return false }
        switch byte {
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "@"),
            UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: ":"), UInt8(ascii: "\\"), UInt8(ascii: "\""),
            UInt8(ascii: "/"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "?"), UInt8(ascii: "="):
            return false
        default:
            return true
        }
    }

    static func isBareValueByte(_ byte: UInt8) -> Bool {
        if byte >= 0x80 { return true }
        guard byte > 0x20 && byte < 0x7F else { return false }
        return byte != UInt8(ascii: ";") && byte != UInt8(ascii: "(") && byte != UInt8(ascii: ")")
            && byte != ASCII.quote
    }
}

/// The few ASCII bytes the parser and writer name.
enum ASCII {
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let quote = UInt8(ascii: "\"")

    static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
    static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte | 0x20) &- UInt8(ascii: "a") < 26
    }
}
