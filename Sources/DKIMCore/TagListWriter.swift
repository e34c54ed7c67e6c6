/// Writes a header field made of a tag list, folded with CRLF TAB so no line passes `lineLimit` columns.
public struct TagListWriter: Sendable {
    /// UTF-8 bytes, not a String: a byte append is a copy, where String's appends cost about 1.5% of a signed
    /// message's relay CPU (`perf`, ed25519), for a field written for every signed message.
    private var output: [UInt8]
    private var column: Int
    private let lineLimit: Int
    private var isEmpty = true

    /// A field with no tags yet.
    public init(fieldName: String, lineLimit: Int = 78) {
        self.output = Array(fieldName.utf8)
        output.append(UInt8(ascii: ":"))
        self.column = output.count
        // A DKIM-Signature with an RSA-2048 b= is about 600 bytes: grow once, not at every doubling.
        output.reserveCapacity(8 * lineLimit)
        self.lineLimit = lineLimit
    }

    /// `Field-Name: t1=v1; t2=v2;\r\n\tt3=...`: tags separated by `; `, no final `;`, no final CRLF.
    public var text: String { String(decoding: output, as: UTF8.self) }

    /// The same as `text`, in UTF-8.
    public var bytes: [UInt8] { output }

    /// Appends a tag kept whole on one line, starting a new line when it does not fit.
    public mutating func append(_ name: String, _ value: String) {
        let width = name.utf8.count + 1 + value.utf8.count
        startTag(width: width)
        output += name.utf8
        output.append(UInt8(ascii: "="))
        output += value.utf8
        column += width
    }

    /// Appends a list such as `h=`, which may break after a separator.
    public mutating func appendList(_ name: String, _ items: [String], separator: Character = ":") {
        let firstWidth = name.utf8.count + 1 + (items.first?.utf8.count ?? 0) + (items.count > 1 ? 1 : 0)
        startTag(width: firstWidth)
        output += name.utf8
        output.append(UInt8(ascii: "="))
        column += name.utf8.count + 1
        for (index, item) in items.enumerated() {
            if index > 0 {
                output += separator.utf8
                column += separator.utf8.count
                let width = item.utf8.count + (index < items.count - 1 ? 1 : 0)
                if column + width > lineLimit - 1 {
                    output += Self.fold
                    column = 1
                }
            }
            output += item.utf8
            column += item.utf8.count
        }
    }

    /// Appends a base64 value, which may break anywhere. Where `name=` goes depends only on what came
    /// before, never on the value, so the text with an empty value is a prefix of the text with any value:
    /// a signer hashes the first and sends the second.
    public mutating func appendBase64(_ name: String, _ value: String) {
        // Room for `name=` and the value's first character, so the value never starts on a line of its own.
        startTag(width: name.utf8.count + 2)
        output += name.utf8
        output.append(UInt8(ascii: "="))
        column += name.utf8.count + 1
        // Whole line-sized slices of the value's bytes.
        var value = value
        value.withUTF8 { utf8 in
            var start = 0
            while start < utf8.count {
                if column >= lineLimit - 1 {
                    output += Self.fold
                    column = 1
                }
                let end = min(utf8.count, start + lineLimit - 1 - column)
                output += UnsafeBufferPointer(rebasing: utf8[start..<end])
                column += end - start
                start = end
            }
        }
    }

    /// The `;` after the previous tag, then a space, or a fold when `width` columns (plus a `;`) do not fit.
    private mutating func startTag(width: Int) {
        if !isEmpty {
            output.append(UInt8(ascii: ";"))
            column += 1
        }
        isEmpty = false
        if column + 1 + width + 1 <= lineLimit {
            output.append(UInt8(ascii: " "))
            column += 1
        } else {
            output += Self.fold
            column = 1
        }
    }

    private static let fold: [UInt8] = [0x0D, 0x0A, 0x09]
}
