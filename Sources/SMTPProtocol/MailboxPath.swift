/// The syntax of the path inside `<>` in MAIL and RCPT (RFC 5321 §4.1.2, RFC 6531 §3.3).
///
/// Checks what would confuse the next hop or smuggle something past it, and no more: like Postfix, local parts with
/// odd dots are accepted, since real senders have them.
enum MailboxPath {
    /// The index of the `>` closing a path that starts at `text.startIndex` with `<`; a `>` inside a quoted local
    /// part does not count.
    static func closingBracket(in text: ArraySlice<UInt8>) -> Int? {
        var quoted = false
        var escaped = false
        for index in text.indices.dropFirst() {
            let byte = text[index]
            if escaped {
                escaped = false
            } else if quoted && byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if byte == UInt8(ascii: ">") && !quoted {
                return index
            }
        }
        return nil
    }

    /// The mailbox, without any source route; "" for the null reverse-path.
    static func parse(_ path: ArraySlice<UInt8>, allowUTF8: Bool, isSender: Bool) throws(SMTPCommandError) -> String {
        // X.1.7 is a bad sender address, X.1.3 a bad recipient address (RFC 3463 §3.2).
        let badSyntax = isSender ? EnhancedStatusCode(5, 1, 7) : EnhancedStatusCode(5, 1, 3)
        if path.isEmpty {
            guard isSender else { throw .address(badSyntax, "empty recipient address") }
            return ""
        }
        if !allowUTF8 && path.contains(where: { $0 >= 0x80 }) {
            throw .address(EnhancedStatusCode(5, 6, 7), "non-ASCII address needs SMTPUTF8")
        }
        var mailbox = path
        if path.first == UInt8(ascii: "@") {
            // An obsolete source route, <@a,@b:user@c>: RFC 5321 §4.1.2 and Appendix C say to accept and ignore it.
            guard let colon = path.firstIndex(of: UInt8(ascii: ":")),
                path[..<colon].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).allSatisfy({
                    $0.first == UInt8(ascii: "@") && isDomain($0.dropFirst())
                })
            else { throw .address(badSyntax, "malformed source route") }
            mailbox = path[(colon + 1)...]
        }
        guard let at = atSign(in: mailbox) else {
            // RFC 5321 §4.1.1.3: "Postmaster" without a domain must be accepted as a recipient.
            if !isSender && mailbox.equalsIgnoringASCIICase("POSTMASTER") {
                return String(decoding: mailbox, as: UTF8.self)
            }
            throw .address(badSyntax, "address needs a domain")
        }
        guard isLocalPart(mailbox[..<at]) else { throw .address(badSyntax, "malformed local part") }
        guard isDomain(mailbox[(at + 1)...]) else { throw .address(badSyntax, "malformed domain") }
        return String(decoding: mailbox, as: UTF8.self)
    }

    /// The `@` between local part and domain: the last one outside quotes.
    private static func atSign(in mailbox: ArraySlice<UInt8>) -> Int? {
        var quoted = false
        var escaped = false
        var result: Int?
        for index in mailbox.indices {
            let byte = mailbox[index]
            if escaped {
                escaped = false
            } else if quoted && byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                quoted.toggle()
            } else if byte == UInt8(ascii: "@") && !quoted {
                result = index
            }
        }
        return result
    }

    private static func isLocalPart(_ text: ArraySlice<UInt8>) -> Bool {
        guard let first = text.first else { return false }
        if first == UInt8(ascii: "\"") {
            return isQuotedString(text)
        }
        return text.allSatisfy { isAtext($0) || $0 == .dot }
    }

    /// atext (RFC 5322 §3.2.3), plus any non-ASCII byte (already validated as UTF-8) for RFC 6531.
    private static func isAtext(_ byte: UInt8) -> Bool {
        byte.isASCIILetter || byte.isASCIIDigit || byte >= 0x80 || "!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
    }

    /// `"` *(qtextSMTP / quoted-pairSMTP) `"`, and nothing after the closing quote.
    private static func isQuotedString(_ text: ArraySlice<UInt8>) -> Bool {
        var index = text.startIndex + 1
        while index < text.endIndex {
            let byte = text[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < text.endIndex, text[index + 1] >= 0x20, text[index + 1] < 0x7F else { return false }
                index += 2
            } else if byte == UInt8(ascii: "\"") {
                return index == text.endIndex - 1
            } else {
                guard byte >= 0x20 && byte != 0x7F else { return false }
                index += 1
            }
        }
        return false
    }

    /// A dot-separated host name (letters, digits, hyphen, underscore, UTF-8 U-labels) or an address literal.
    static func isDomain(_ text: ArraySlice<UInt8>) -> Bool {
        guard !text.isEmpty, text.count <= 255 else { return false }
        if text.first == UInt8(ascii: "[") {
            let inner = text.dropFirst()
            guard inner.last == UInt8(ascii: "]") else { return false }
            let literal = inner.dropLast()
            return !literal.isEmpty
                && literal.allSatisfy {
                    $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]")
                        && $0 != UInt8(ascii: "\\")
                }
        }
        // Labels of 1 to 63 bytes between dots, walked in place (split allocated an array per address).
        var labelLength = 0
        for byte in text {
            if byte == .dot {
                guard labelLength > 0 else { return false }
                labelLength = 0
                continue
            }
            guard
                byte.isASCIILetter || byte.isASCIIDigit || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                    || byte >= 0x80
            else { return false }
            labelLength += 1
            guard labelLength <= 63 else { return false }
        }
        return labelLength > 0
    }
}
