import NIOCore

/// Parses one command line (RFC 5321 §4.1.1 and the extensions' grammars) into an `SMTPCommand`.
public enum SMTPCommandParser {
    /// Parses `line`, one command line WITHOUT its line ending.
    ///
    /// Verbs are case-insensitive. `allowUTF8` is the session's SMTPUTF8 state (RFC 6531): without it, addresses
    /// must be ASCII, except in a MAIL command that itself carries the SMTPUTF8 parameter.
    public static func parse(_ line: ByteBuffer, allowUTF8: Bool) throws(SMTPCommandError) -> SMTPCommand {
        let bytes = Array(line.readableBytesView)[...]
        guard !bytes.isEmpty else { throw .unrecognized("empty command") }
        // NUL, CR, bare LF and other controls have no place in a command, and passing them on invites smuggling.
        guard !bytes.contains(where: \.isASCIIControl) else { throw .unrecognized("control character in command") }
        if bytes.contains(where: { $0 >= 0x80 }) && !isValidUTF8(bytes) {
            throw .unrecognized("malformed UTF-8 in command")
        }
        let verbEnd = bytes.firstIndex(of: .space) ?? bytes.endIndex
        let verb = bytes[..<verbEnd]
        guard !verb.isEmpty, verb.count <= 16, verb.allSatisfy(\.isASCIILetter) else { throw .unrecognized() }
        // RFC 5321 asks for exactly one space; clients that send more or trailing ones are common and harmless.
        var argument = bytes[verbEnd...].drop { $0 == .space }
        while argument.last == .space { argument = argument.dropLast() }
        let name = verb.asciiUppercasedString

        switch name {
        case "EHLO", "HELO":
            // Postfix accepts several words here and so do we: the name is only logged and never forwarded.
            guard !argument.isEmpty else { throw .arguments("Syntax: \(name) hostname") }
            let domain = String(decoding: argument, as: UTF8.self)
            return name == "EHLO" ? .ehlo(domain) : .helo(domain)
        case "MAIL":
            let (path, parameters) = try pathAndParameters(
                argument, prefix: "FROM:", allowUTF8: allowUTF8, isSender: true)
            return .mail(from: path, parameters: parameters)
        case "RCPT":
            let (path, parameters) = try pathAndParameters(
                argument, prefix: "TO:", allowUTF8: allowUTF8, isSender: false)
            return .rcpt(to: path, parameters: parameters)
        case "DATA": return try withoutArgument(.data, name, argument)
        case "RSET": return try withoutArgument(.rset, name, argument)
        case "QUIT": return try withoutArgument(.quit, name, argument)
        case "STARTTLS": return try withoutArgument(.starttls, name, argument)
        case "NOOP": return .noop  // RFC 5321 §4.1.1.9: any argument is ignored
        case "BDAT": return try bdat(argument)
        case "VRFY", "EXPN":
            guard !argument.isEmpty else { throw .arguments("Syntax: \(name) address") }
            let text = String(decoding: argument, as: UTF8.self)
            return name == "VRFY" ? .vrfy(text) : .expn(text)
        case "HELP": return .help(argument.isEmpty ? nil : String(decoding: argument, as: UTF8.self))
        case "AUTH": return try auth(argument)
        case "XCLIENT", "XFORWARD":
            let parameters = try SMTPParameterParser.parse(argument, allowUTF8: false, requireValues: true)
            guard !parameters.isEmpty else { throw .arguments("Syntax: \(name) attribute=value ...") }
            return name == "XCLIENT" ? .xclient(parameters) : .xforward(parameters)
        case "TURN", "ATRN", "ETRN", "SEND", "SOML", "SAML", "VERB":
            throw SMTPCommandError(.notImplemented("\(name) not implemented"))
        default:
            throw .unrecognized()
        }
    }

    private static func withoutArgument(
        _ command: SMTPCommand, _ name: String, _ argument: ArraySlice<UInt8>
    ) throws(SMTPCommandError) -> SMTPCommand {
        guard argument.isEmpty else { throw .arguments("Syntax: \(name)") }
        return command
    }

    /// `BDAT size [LAST]`; the size has at most 18 digits so that it, and sums of a few, fit an Int.
    private static func bdat(_ argument: ArraySlice<UInt8>) throws(SMTPCommandError) -> SMTPCommand {
        let words = argument.split(separator: .space)
        guard (1...2).contains(words.count), (1...18).contains(words[0].count), words[0].allSatisfy(\.isASCIIDigit),
            words.count == 1 || words[1].equalsIgnoringASCIICase("LAST")
        else {
            throw SMTPCommandError(
                SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), "Syntax: BDAT count [LAST]"), closesConnection: true)
        }
        let size = words[0].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return .bdat(size: size, last: words.count == 2)
    }

    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    private static func auth(_ argument: ArraySlice<UInt8>) throws(SMTPCommandError) -> SMTPCommand {
        let words = argument.split(separator: .space)
        guard (1...2).contains(words.count), words[0].count <= 20,
            words[0].allSatisfy({
                $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            })
        else { throw .arguments("Syntax: AUTH mechanism [initial-response]") }
        var initialResponse: String?
        if words.count == 2 {
            let isBase64 = words[1].allSatisfy {
                $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "/")
                    || $0 == UInt8(ascii: "=")
            }
            guard isBase64 else {
                throw SMTPCommandError(
                    SMTPReply(code: 501, EnhancedStatusCode(5, 5, 2), "cannot decode initial response"))
            }
            initialResponse = String(decoding: words[1], as: UTF8.self)
        }
        return .auth(mechanism: words[0].asciiUppercasedString, initialResponse: initialResponse)
    }

    /// `FROM:<path> [parameters]` or `TO:<path> [parameters]`.
    private static func pathAndParameters(
        _ argument: ArraySlice<UInt8>, prefix: String, allowUTF8: Bool, isSender: Bool
    ) throws(SMTPCommandError) -> (String, [SMTPParameter]) {
        let syntax = isSender ? "Syntax: MAIL FROM:<address>" : "Syntax: RCPT TO:<address>"
        guard argument.hasPrefixIgnoringASCIICase(prefix) else { throw .arguments(syntax) }
        // Many clients write a space after the colon; Postfix accepts that, and so do we.
        let rest = argument.dropFirst(prefix.utf8.count).drop { $0 == .space }
        guard rest.first == UInt8(ascii: "<"), let close = MailboxPath.closingBracket(in: rest) else {
            throw .arguments(syntax)
        }
        let afterPath = rest[(close + 1)...]
        guard afterPath.isEmpty || afterPath.first == .space else { throw .arguments(syntax) }
        let parameters = try SMTPParameterParser.parse(afterPath, allowUTF8: allowUTF8, requireValues: false)
        // RFC 6531 §3.4: the SMTPUTF8 parameter of this very MAIL command permits a UTF-8 reverse-path.
        let utf8 = allowUTF8 || (isSender && parameters[keyword: "SMTPUTF8"] != nil)
        let path = try MailboxPath.parse(rest[(rest.startIndex + 1)..<close], allowUTF8: utf8, isSender: isSender)
        return (path, parameters)
    }

    static func isValidUTF8(_ bytes: ArraySlice<UInt8>) -> Bool {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
