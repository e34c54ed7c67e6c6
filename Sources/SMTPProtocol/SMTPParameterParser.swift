/// Parses `keyword[=value]` lists after a path or a verb (RFC 5321 §4.1.2 esmtp-param).
enum SMTPParameterParser {
    /// `text` starts with the separating space, or is empty. Duplicates are refused: which one would count is unclear.
    static func parse(
        _ text: ArraySlice<UInt8>, allowUTF8: Bool, requireValues: Bool
    ) throws(SMTPCommandError) -> [SMTPParameter] {
        var result: [SMTPParameter] = []
        for word in text.split(separator: .space) {
            let equals = word.firstIndex(of: UInt8(ascii: "="))
            let keyword = word[..<(equals ?? word.endIndex)]
            guard let first = keyword.first, first.isASCIILetter || first.isASCIIDigit,
                keyword.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == UInt8(ascii: "-") })
            else { throw .arguments("malformed parameter") }
            var value: String?
            if let equals {
                // esmtp-value: printable ASCII except "=" (RFC 5321), plus UTF-8 with SMTPUTF8 (RFC 6531 §3.3).
                let bytes = word[(equals + 1)...]
                guard !bytes.isEmpty,
                    bytes.allSatisfy({
                        ($0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "=")) || ($0 >= 0x80 && allowUTF8)
                    })
                else { throw .arguments("malformed value of parameter \(keyword.asciiUppercasedString)") }
                value = String(decoding: bytes, as: UTF8.self)
            } else if requireValues {
                throw .arguments("parameter \(keyword.asciiUppercasedString) needs a value")
            }
            let parameter = SMTPParameter(keyword.asciiUppercasedString, value)
            guard result[keyword: parameter.keyword] == nil else {
                throw .arguments("duplicate parameter \(parameter.keyword)")
            }
            result.append(parameter)
        }
        return result
    }
}
