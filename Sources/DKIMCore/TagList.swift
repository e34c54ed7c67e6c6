import NIOCore

/// A tag=value list (RFC 6376 §3.2), shared by DKIM signatures, key records and ARC.
public struct TagList: Sendable, Hashable {
    /// One `name=value` pair.
    public struct Tag: Sendable, Hashable {
        /// The tag name, case preserved (tag names are case-sensitive).
        public let name: String
        /// The value with white space at both ends removed; folding white space inside is kept.
        public let value: String

        /// A tag from its parts.
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The tags in the order they appear.
    public let tags: [Tag]

    /// Parses `text`; a final `;` is allowed, an empty tag, a name that is not ALPHA *ALNUMPUNC, a missing
    /// `=` or a repeated name is not.
    public init(parsing text: String) throws(DKIMCoreError) {
        var tags: [Tag] = []
        var names = Set<String>()
        let segments = text.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            let trimmed = Self.trimmed(segment)
            if trimmed.isEmpty {
                if index == segments.count - 1 { break }
                throw DKIMCoreError(.malformedTagList, "empty tag in tag list")
            }
            guard let equals = trimmed.firstIndex(of: UInt8(ascii: "=")) else {
                throw DKIMCoreError(
                    .malformedTagList,
                    "tag \"\(String(decoding: trimmed, as: UTF8.self))\" has no '='"
                )
            }
            let name = String(decoding: Self.trimmed(trimmed[trimmed.startIndex..<equals]), as: UTF8.self)
            guard Self.isValidName(name) else {
                throw DKIMCoreError(.malformedTagList, tag: name, "invalid tag name \"\(name)\"")
            }
            guard names.insert(name).inserted else {
                throw DKIMCoreError(.duplicateTag, tag: name, "tag \(name)= appears more than once")
            }
            let value = String(decoding: Self.trimmed(trimmed[trimmed.index(after: equals)...]), as: UTF8.self)
            tags.append(Tag(name: name, value: value))
        }
        self.tags = tags
    }

    /// A list from tags already split.
    public init(tags: [Tag]) {
        self.tags = tags
    }

    /// The value of the tag `name`, if present.
    public subscript(_ name: String) -> String? {
        tags.first { $0.name == name }?.value
    }

    /// Returns `raw` with the value of tag `name` removed, together with the folding white space inside
    /// it, and every other byte left as it was: what RFC 6376 §3.5 asks for `b=` before hashing the
    /// signature field, and what dkimpy does. `raw` is a whole field (`Name: tags`) or just a tag list.
    public static func removingValue(ofTag name: String, from raw: ByteBuffer) -> ByteBuffer {
        let target = Array(name.utf8)
        let range: Range<Int>? = raw.withUnsafeReadableBytes { bytes in
            var index = 0
            if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) { index = colon + 1 }
            while index < bytes.count {
                while index < bytes.count && isWhitespace(bytes[index]) { index += 1 }
                let nameStart = index
                while index < bytes.count && bytes[index] != UInt8(ascii: "=") && bytes[index] != UInt8(ascii: ";")
                    && !isWhitespace(bytes[index])
                {
                    index += 1
                }
                let nameEnd = index
                while index < bytes.count && isWhitespace(bytes[index]) { index += 1 }
                var valueEnd = index
                while valueEnd < bytes.count && bytes[valueEnd] != UInt8(ascii: ";") { valueEnd += 1 }
                if index < bytes.count && bytes[index] == UInt8(ascii: "=")
                    && bytes[nameStart..<nameEnd].elementsEqual(target)
                {
                    let valueStart = index + 1
                    var lastContent = valueEnd
                    while lastContent > valueStart && isWhitespace(bytes[lastContent - 1]) { lastContent -= 1 }
                    return valueStart..<lastContent
                }
                index = valueEnd + 1
            }
            return nil
        }
        guard let range, !range.isEmpty else { return raw }
        var result = ByteBufferAllocator().buffer(capacity: raw.readableBytes - range.count)
        var head = raw.getSlice(at: raw.readerIndex, length: range.lowerBound)!
        var tail = raw.getSlice(at: raw.readerIndex + range.upperBound, length: raw.readableBytes - range.upperBound)!
        result.writeBuffer(&head)
        result.writeBuffer(&tail)
        return result
    }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A
    }

    static func trimmed<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> C.SubSequence {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end && isWhitespace(bytes[start]) { start = bytes.index(after: start) }
        while end > start && isWhitespace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return bytes[start..<end]
    }

    /// ALPHA *ALNUMPUNC (RFC 6376 §3.2).
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, isAlpha(first) else { return false }
        return name.utf8.allSatisfy { isAlpha($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "_") }
    }

    static func isAlpha(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}
