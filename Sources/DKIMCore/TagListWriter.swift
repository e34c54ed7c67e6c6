/// Writes a header field made of a tag list, folded with CRLF TAB so no line passes `lineLimit` columns.
public struct TagListWriter: Sendable {
    private var output: String
    private var column: Int
    private let lineLimit: Int
    private var isEmpty = true

    /// A field with no tags yet.
    public init(fieldName: String, lineLimit: Int = 78) {
        self.output = fieldName + ":"
        self.column = output.utf8.count
        // A DKIM-Signature with an RSA-2048 b= is about 600 bytes: grow once, not at every doubling.
        output.reserveCapacity(8 * lineLimit)
        self.lineLimit = lineLimit
    }

    /// `Field-Name: t1=v1; t2=v2;\r\n\tt3=...`: tags separated by `; `, no final `;`, no final CRLF.
    public var text: String { output }

    /// Appends a tag kept whole on one line, starting a new line when it does not fit.
    public mutating func append(_ name: String, _ value: String) {
        let width = name.utf8.count + 1 + value.utf8.count
        startTag(width: width)
        output += name
        output += "="
        output += value
        column += width
    }

    /// Appends a list such as `h=`, which may break after a separator.
    public mutating func appendList(_ name: String, _ items: [String], separator: Character = ":") {
        let firstWidth = name.utf8.count + 1 + (items.first?.utf8.count ?? 0) + (items.count > 1 ? 1 : 0)
        startTag(width: firstWidth)
        output += name + "="
        column += name.utf8.count + 1
        for (index, item) in items.enumerated() {
            if index > 0 {
                output.append(separator)
                column += separator.utf8.count
                let width = item.utf8.count + (index < items.count - 1 ? 1 : 0)
                if column + width > lineLimit - 1 {
                    output += "\r\n\t"
                    column = 1
                }
            }
            output += item
            column += item.utf8.count
        }
    }

    /// Appends a base64 value, which may break anywhere. Where `name=` goes depends only on what came
    /// before, never on the value, so the text with an empty value is a prefix of the text with any value:
    /// a signer hashes the first and sends the second.
    public mutating func appendBase64(_ name: String, _ value: String) {
        // Room for `name=` and the value's first character, so the value never starts on a line of its own.
        startTag(width: name.utf8.count + 2)
        output += name + "="
        column += name.utf8.count + 1
        // Base64 is ASCII, so a UTF-8 index is a character index: append whole line-sized slices.
        let utf8 = value.utf8
        var start = utf8.startIndex
        while start != utf8.endIndex {
            if column >= lineLimit - 1 {
                output += "\r\n\t"
                column = 1
            }
            let end = utf8.index(start, offsetBy: lineLimit - 1 - column, limitedBy: utf8.endIndex) ?? utf8.endIndex
            output += value[start..<end]
            column += utf8.distance(from: start, to: end)
            start = end
        }
    }

    /// The `;` after the previous tag, then a space, or a fold when `width` columns (plus a `;`) do not fit.
    private mutating func startTag(width: Int) {
        if !isEmpty {
            output += ";"
            column += 1
        }
        isEmpty = false
        if column + 1 + width + 1 <= lineLimit {
            output += " "
            column += 1
        } else {
            output += "\r\n\t"
            column = 1
        }
    }
}
