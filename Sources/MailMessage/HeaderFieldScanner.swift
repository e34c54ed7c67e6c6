/// Where one header field lies in a header section: the single-pass scan shared by `MessageHeader.parse` and
/// `HeaderField.init(raw:)`.
struct HeaderFieldScan {
    /// Index just past the field (past its final CRLF, or the end of the bytes when it has none).
    var end: Int
    var nameLength: Int
    /// Index of the first byte after ':' relative to the field's start.
    var valueOffset: Int
}

enum HeaderFieldScanner {
    /// Scans the field that starts at `start`, following its continuation lines.
    ///
    /// `line` is the 1-based line number of `start` on entry and of the line after the field on return; `offset`
    /// is the position of `bytes` in the caller's input, so that errors name a byte the operator can find.
    static func scanField(
        _ bytes: UnsafeRawBufferPointer,
        at start: Int,
        line: inout Int,
        offset: Int
    ) throws(MailMessageError) -> HeaderFieldScan {
        guard let base = bytes.baseAddress, start < bytes.count else {
            throw MailMessageError(.headerWithoutColon, "line \(line) is empty")
        }
        let count = bytes.count
        let first = bytes[start]
        if first == ASCII.space || first == ASCII.htab {
            throw MailMessageError(
                .continuationWithoutField,
                "line \(line) starts with white space, but no header field comes before it to continue"
            )
        }

        // field-name = 1*ftext (printable ASCII but ':'), then obs WSP before the colon.
        var index = start
        while index < count {
            let byte = bytes[index]
            guard byte >= 33 && byte <= 126 && byte != ASCII.colon else { break }
            index += 1
        }
        let nameLength = index - start
        while index < count && (bytes[index] == ASCII.space || bytes[index] == ASCII.htab) {
            index += 1
        }
        guard nameLength > 0, index < count, bytes[index] == ASCII.colon else {
            throw lineError(bytes, lineStart: start, nameLength: nameLength, line: line, offset: offset)
        }
        index += 1
        let valueOffset = index - start

        // The value runs to a CRLF not followed by WSP; CRLF + WSP is folding and continues the field.
        while true {
            index = ByteScan.firstControl(base, from: index, to: count)
            if index == count { return HeaderFieldScan(end: count, nameLength: nameLength, valueOffset: valueOffset) }
            let byte = bytes[index]
            if byte == ASCII.nul {
                throw MailMessageError(.nulByte, "NUL byte at offset \(offset + index) (header line \(line))")
            }
            guard byte == ASCII.cr, index + 1 < count, bytes[index + 1] == ASCII.lf else {
                index += 1  // HTAB, or a lone CR/LF the caller left in: part of the value
                continue
            }
            index += 2
            line += 1
            guard index < count, bytes[index] == ASCII.space || bytes[index] == ASCII.htab else {
                return HeaderFieldScan(end: index, nameLength: nameLength, valueOffset: valueOffset)
            }
        }
    }

    /// Names what is wrong with a line that should start a field but does not; only runs on the error path.
    private static func lineError(
        _ bytes: UnsafeRawBufferPointer,
        lineStart: Int,
        nameLength: Int,
        line: Int,
        offset: Int
    ) -> MailMessageError {
        var lineEnd = lineStart
        var colon: Int? = nil
        while lineEnd < bytes.count {
            let byte = bytes[lineEnd]
            if byte == ASCII.nul {
                return MailMessageError(.nulByte, "NUL byte at offset \(offset + lineEnd) (header line \(line))")
            }
            if byte == ASCII.cr && lineEnd + 1 < bytes.count && bytes[lineEnd + 1] == ASCII.lf { break }
            if byte == ASCII.colon && colon == nil { colon = lineEnd }
            lineEnd += 1
        }
        if lineEnd == lineStart {
            return MailMessageError(
                .headerWithoutColon,
                "header line \(line) is empty (the blank line that ends a header section cannot be inside it)"
            )
        }
        let shown = quoted(bytes, from: lineStart, to: lineEnd)
        guard let colon else {
            return MailMessageError(.headerWithoutColon, "header line \(line) has no ':' after a field name: \(shown)")
        }
        if colon == lineStart || nameLength == 0 {
            return MailMessageError(.invalidHeaderName, "header line \(line) has an empty field name: \(shown)")
        }
        let bad = bytes[lineStart + nameLength]
        let what = bad == ASCII.space || bad == ASCII.htab ? "white space inside it" : "byte 0x\(hex(bad))"
        return MailMessageError(
            .invalidHeaderName,
            "header line \(line): the field name has \(what) (names are printable ASCII without spaces): \(shown)"
        )
    }

    /// The line, at most 80 bytes of it, for error reasons.
    private static func quoted(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> String {
        let shownEnd = min(end, start + 80)
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<shownEnd]), as: UTF8.self)
        return "\"\(text)\(shownEnd < end ? "…" : "")\""
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }
}
