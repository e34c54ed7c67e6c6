extension AuthenticationResults {
    /// The field value as one line: `authserv-id [version]; method=result ...; ...` (or `authserv-id; none`).
    public var value: String {
        pieces().map { $0.joined(separator: " ") }.joined(separator: "; ")
    }

    /// The whole header field, folded so that no line exceeds `width` columns where pieces allow (a single piece
    /// longer than that is never split), with CRLF + tab between lines and no final CRLF.
    ///
    /// `name` and `prefix` let ARC write `ARC-Authentication-Results: i=1; ...` with the same folding.
    public func field(name: String = AuthenticationResults.fieldName, prefix: String = "", width: Int = 78) -> String {
        var output = name + ":"
        var column = output.utf8.count
        var lineHasPiece = false
        func append(_ piece: String, separator: String) {
            let length = piece.utf8.count
            // A piece too long for any line goes on a line of its own rather than leaving an empty one.
            if column + separator.utf8.count + length > width && lineHasPiece {
                output += "\r\n\t" + piece
                column = 8 + length  // a tab counts as 8 columns
            } else {
                output += separator + piece
                column += separator.utf8.count + length
            }
            lineHasPiece = true
        }
        let groups = pieces()
        for (groupIndex, group) in groups.enumerated() {
            let isLast = groupIndex == groups.count - 1
            var group = group
            if !isLast { group[group.count - 1] += ";" }
            if groupIndex == 0 && !prefix.isEmpty { group[0] = prefix + group[0] }
            // A result starts on a new line when the whole of it does not fit on the current one.
            let whole = group.joined(separator: " ")
            if groupIndex > 0 && column + 1 + whole.utf8.count > width {
                output += "\r\n\t"
                column = 8
                lineHasPiece = false
                for (index, piece) in group.enumerated() {
                    append(piece, separator: index == 0 ? "" : " ")
                }
            } else {
                for piece in group { append(piece, separator: " ") }
            }
        }
        return output
    }

    /// The value cut into groups (authserv-id, then one per result) of pieces that folding never splits.
    private func pieces() -> [[String]] {
        var first = [AuthenticationResultsWriter.value(authservID)]
        if let version { first.append(String(version)) }
        var groups = [first]
        if results.isEmpty { groups.append(["none"]) }
        for result in results { groups.append(result.pieces()) }
        return groups
    }
}

extension AuthenticationResult {
    /// The entry as written: `method[/version]=result (comment) reason="..." ptype.property=value`.
    public var text: String { pieces().joined(separator: " ") }

    fileprivate func pieces() -> [String] {
        var head = method
        if let methodVersion { head += "/\(methodVersion)" }
        var pieces = [head + "=" + result]
        for comment in comments { pieces.append(AuthenticationResultsWriter.comment(comment)) }
        if let reason { pieces.append("reason=" + AuthenticationResultsWriter.quoted(reason)) }
        for property in properties {
            pieces.append(
                "\(property.type).\(property.name)=" + AuthenticationResultsWriter.propertyValue(property.value))
        }
        return pieces
    }
}

/// Quoting and escaping for the writer: nothing it writes can end the field early or break the grammar.
enum AuthenticationResultsWriter {
    /// A token as it is; anything else quoted.
    static func value(_ text: String) -> String {
        if !text.isEmpty && text.utf8.allSatisfy(AuthenticationResultsParser.isTokenByte) { return text }
        return quoted(text)
    }

    /// A property value bare when it is a token or `[local-part]@domain`, quoted otherwise.
    static func propertyValue(_ text: String) -> String {
        if !text.isEmpty && text.utf8.allSatisfy(AuthenticationResultsParser.isTokenByte) { return text }
        if let at = text.utf8.lastIndex(of: UInt8(ascii: "@")) {
            let local = text.utf8[..<at]
            let domain = text.utf8[text.utf8.index(after: at)...]
            if !domain.isEmpty && domain.allSatisfy(isDomainByte) && local.allSatisfy(isDotAtomByte)
                && local.first != UInt8(ascii: ".") && local.last != UInt8(ascii: ".")
            {
                return text
            }
        }
        return quoted(text)
    }

    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"", "\\": out += "\\" + String(scalar)
            // Never a line break inside a field; the parser drops CR and LF there as folding, so dropping them
            // keeps a parsed value and its rewrite the same (AuthResultsFuzzer). A tab is white space and stays.
            case "\r", "\n": continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func comment(_ text: String) -> String {
        var out = "("
        for scalar in text.unicodeScalars {
            switch scalar {
            case "(", ")", "\\": out += "\\" + String(scalar)
            case "\r", "\n": continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + ")"
    }

    private static func isDomainByte(_ byte: UInt8) -> Bool {
        byte >= 0x80 || ASCII.isLetterOrDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            || byte == UInt8(ascii: "_")
    }

    /// RFC 5322 atext and '.'.
    private static func isDotAtomByte(_ byte: UInt8) -> Bool {
        if byte >= 0x80 || ASCII.isLetterOrDigit(byte) { return true }
        return "!#$%&'*+-/=?^_`{|}~.".utf8.contains(byte)
    }
}
