import NIOCore

/// An ESMTP parameter, `KEYWORD[=value]`; the keyword is stored upper-cased.
public struct SMTPParameter: Hashable, Sendable, CustomStringConvertible {
    public var keyword: String
    public var value: String?

    public init(_ keyword: String, _ value: String? = nil) {
        self.keyword = keyword.uppercased()
        self.value = value
    }

    public var description: String { value.map { "\(keyword)=\($0)" } ?? keyword }
}

/// A client command (RFC 5321 §4.1 and the extensions Signet speaks).
public enum SMTPCommand: Hashable, Sendable {
    case ehlo(String)
    case helo(String)
    /// `from` is the address inside `<>`, empty for the null reverse-path.
    case mail(from: String, parameters: [SMTPParameter])
    case rcpt(to: String, parameters: [SMTPParameter])
    case data
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case starttls
    case vrfy(String)
    case expn(String)
    case help(String?)
    case auth(mechanism: String, initialResponse: String?)
    case xclient([SMTPParameter])
    case xforward([SMTPParameter])

    /// Appends the command line, CRLF included, as a client sends it.
    public func write(into buffer: inout ByteBuffer) {
        func parameters(_ list: [SMTPParameter]) -> String {
            list.map { " " + $0.description }.joined()
        }
        let line: String
        switch self {
        case .ehlo(let domain): line = "EHLO \(domain)"
        case .helo(let domain): line = "HELO \(domain)"
        case .mail(let from, let list): line = "MAIL FROM:<\(from)>" + parameters(list)
        case .rcpt(let to, let list): line = "RCPT TO:<\(to)>" + parameters(list)
        case .data: line = "DATA"
        case .bdat(let size, let last): line = "BDAT \(size)" + (last ? " LAST" : "")
        case .rset: line = "RSET"
        case .noop: line = "NOOP"
        case .quit: line = "QUIT"
        case .starttls: line = "STARTTLS"
        case .vrfy(let text): line = "VRFY \(text)"
        case .expn(let text): line = "EXPN \(text)"
        case .help(let topic): line = "HELP" + (topic.map { " \($0)" } ?? "")
        case .auth(let mechanism, let initial): line = "AUTH \(mechanism)" + (initial.map { " \($0)" } ?? "")
        case .xclient(let list): line = "XCLIENT" + parameters(list)
        case .xforward(let list): line = "XFORWARD" + parameters(list)
        }
        buffer.writeString(line)
        buffer.writeStaticString("\r\n")
    }
}

/// A command the server cannot accept, with the reply it should give.
public struct SMTPCommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reply: SMTPReply
    public init(_ reply: SMTPReply) { self.reply = reply }
    public var description: String { reply.description }

    static func syntax(_ text: String) -> SMTPCommandError {
        SMTPCommandError(SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), text))
    }
}

/// Parses command lines (RFC 5321 §4.1.1).
public enum SMTPCommandParser {
    /// Parses one line without its line ending. `allowUTF8` is the SMTPUTF8 state (RFC 6531): without it,
    /// addresses must be ASCII.
    public static func parse(_ line: ByteBuffer, allowUTF8: Bool) throws(SMTPCommandError) -> SMTPCommand {
        let bytes = Array(line.readableBytesView)
        guard !bytes.contains(0) else { throw .syntax("NUL in command line") }
        let text = String(decoding: bytes, as: UTF8.self)
        let verbEnd = text.firstIndex(of: " ") ?? text.endIndex
        let verb = text[..<verbEnd].uppercased()
        let argument = text[verbEnd...].drop { $0 == " " }
        func noArgument(_ command: SMTPCommand) throws(SMTPCommandError) -> SMTPCommand {
            guard argument.allSatisfy({ $0 == " " }) else { throw .syntax("\(verb) takes no argument") }
            return command
        }
        switch verb {
        case "EHLO", "HELO":
            let domain = argument.trimmingTrailingSpaces()
            guard !domain.isEmpty, !domain.contains(" ") else { throw .syntax("\(verb) needs a domain or address literal") }
            return verb == "EHLO" ? .ehlo(domain) : .helo(domain)
        case "MAIL":
            let (path, parameters) = try pathAndParameters(argument, keyword: "FROM:", allowUTF8: allowUTF8)
            return .mail(from: path, parameters: parameters)
        case "RCPT":
            let (path, parameters) = try pathAndParameters(argument, keyword: "TO:", allowUTF8: allowUTF8)
            guard !path.isEmpty else { throw .syntax("RCPT needs a recipient address") }
            return .rcpt(to: path, parameters: parameters)
        case "DATA": return try noArgument(.data)
        case "RSET": return try noArgument(.rset)
        case "QUIT": return try noArgument(.quit)
        case "STARTTLS": return try noArgument(.starttls)
        case "NOOP": return .noop
        case "BDAT":
            let parts = argument.split(separator: " ")
            guard (1...2).contains(parts.count), parts[0].count <= 18, parts[0].allSatisfy(\.isASCIIDigit),
                let size = Int(parts[0])
            else { throw .syntax("BDAT needs a chunk size") }
            if parts.count == 2 {
                guard parts[1].uppercased() == "LAST" else { throw .syntax("BDAT size may only be followed by LAST") }
                return .bdat(size: size, last: true)
            }
            return .bdat(size: size, last: false)
        case "VRFY": return .vrfy(String(argument))
        case "EXPN": return .expn(String(argument))
        case "HELP": return .help(argument.isEmpty ? nil : String(argument))
        case "AUTH":
            let parts = argument.split(separator: " ")
            guard (1...2).contains(parts.count) else { throw .syntax("AUTH needs a mechanism") }
            return .auth(mechanism: parts[0].uppercased(), initialResponse: parts.count == 2 ? String(parts[1]) : nil)
        case "XCLIENT", "XFORWARD":
            let parameters = try parseParameters(argument)
            return verb == "XCLIENT" ? .xclient(parameters) : .xforward(parameters)
        default:
            throw SMTPCommandError(SMTPReply(code: 500, EnhancedStatusCode(5, 5, 2), "command not recognized"))
        }
    }

    private static func pathAndParameters(_ argument: Substring, keyword: String, allowUTF8: Bool)
        throws(SMTPCommandError) -> (String, [SMTPParameter])
    {
        guard argument.uppercased().hasPrefix(keyword) else { throw .syntax("expected \(keyword)<address>") }
        // Many clients write a space after the colon; Postfix accepts it, so do we.
        let rest = argument.dropFirst(keyword.count).drop { $0 == " " }
        guard rest.first == "<", let close = closingBracket(rest) else { throw .syntax("the address must be in <>") }
        var path = rest[rest.index(after: rest.startIndex)..<close]
        if path.hasPrefix("@") {
            // A source route (<@a,@b:user@c>), obsolete: keep the mailbox only (RFC 5321 §4.1.2).
            guard let colon = path.firstIndex(of: ":") else { throw .syntax("malformed source route") }
            path = path[path.index(after: colon)...]
        }
        if !allowUTF8 && path.utf8.contains(where: { $0 >= 0x80 }) {
            throw SMTPCommandError(SMTPReply(code: 553, EnhancedStatusCode(5, 6, 7), "non-ASCII address needs SMTPUTF8"))
        }
        guard !path.contains(where: { $0 == " " || $0 == "<" || $0 == ">" }) || path.hasPrefix("\"") else {
            throw .syntax("malformed address")
        }
        let parameters = try parseParameters(rest[rest.index(after: close)...])
        return (String(path), parameters)
    }

    /// The `>` that closes the path, skipping a quoted local part.
    private static func closingBracket(_ text: Substring) -> Substring.Index? {
        var quoted = false
        var escaped = false
        for index in text.indices.dropFirst() {
            let character = text[index]
            if escaped { escaped = false; continue }
            if character == "\\" && quoted { escaped = true; continue }
            if character == "\"" { quoted.toggle(); continue }
            if character == ">" && !quoted { return index }
        }
        return nil
    }

    private static func parseParameters(_ text: Substring) throws(SMTPCommandError) -> [SMTPParameter] {
        var result: [SMTPParameter] = []
        for word in text.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let keyword = parts[0]
            guard let first = keyword.first, first.isLetter || first.isNumber,
                keyword.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") })
            else { throw .syntax("malformed parameter \(word)") }
            result.append(SMTPParameter(String(keyword), parts.count == 2 ? String(parts[1]) : nil))
        }
        return result
    }
}

extension Substring {
    fileprivate func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " || text.last == "\t" { text = text.dropLast() }
        return String(text)
    }
}
