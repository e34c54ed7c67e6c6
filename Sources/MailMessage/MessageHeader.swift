import NIOCore

/// The header section of a message: its fields, top to bottom, as slices of the received bytes.
public struct MessageHeader: Sendable {
    /// The fields, top to bottom.
    public let fields: [HeaderField]
    /// The whole section: all fields, without the blank line that separates it from the body.
    public let bytes: ByteBuffer

    init(fields: [HeaderField], bytes: ByteBuffer) {
        self.fields = fields
        self.bytes = bytes
    }

    /// Splits a header section (CRLF line ends, no blank separator line) into fields, in one pass and without
    /// copying: every field's `raw` is a slice of `block`.
    public static func parse(
        _ block: ByteBuffer,
        limits: MailMessageLimits = .default
    ) throws(MailMessageError) -> MessageHeader {
        guard block.readableBytes <= limits.maxHeaderBytes else {
            throw MailMessageError(
                .headerTooLarge,
                "the header section is \(block.readableBytes) bytes, above the limit of \(limits.maxHeaderBytes)"
            )
        }
        let fields = try block.withUnsafeReadableBytes { bytes throws(MailMessageError) -> [HeaderField] in
            var fields: [HeaderField] = []
            fields.reserveCapacity(min(max(limits.maxHeaderFields, 0), 32))
            var line = 1
            var start = 0
            while start < bytes.count {
                guard fields.count < limits.maxHeaderFields else {
                    throw MailMessageError(
                        .tooManyHeaderFields,
                        "the header section has more than \(limits.maxHeaderFields) fields (the limit)"
                    )
                }
                let scan = try HeaderFieldScanner.scanField(bytes, at: start, line: &line, offset: 0)
                // In range: the scan stays inside the readable bytes.
                let raw = block.getSlice(at: block.readerIndex + start, length: scan.end - start)!
                fields.append(HeaderField(raw: raw, nameLength: scan.nameLength, valueOffset: scan.valueOffset))
                start = scan.end
            }
            return fields
        }
        return MessageHeader(fields: fields, bytes: block)
    }

    /// The fields whose name is `lowercasedName` (ASCII case-insensitive), top to bottom.
    public func fields(named lowercasedName: String) -> [HeaderField] {
        fields.filter { $0.hasName(lowercasedName) }
    }

    /// How many fields are named `lowercasedName` (ASCII case-insensitive).
    public func count(named lowercasedName: String) -> Int {
        var count = 0
        for field in fields where field.hasName(lowercasedName) {
            count += 1
        }
        return count
    }

    /// The message's author: exactly one From field holding exactly one mailbox.
    ///
    /// RFC 5322 allows several authors when a Sender field names one of them, but a DKIM signer that picked one
    /// would be guessing, so several mailboxes count as `multipleFromHeaders`, like several From fields.
    public func authorMailbox() throws(MailMessageError) -> Mailbox {
        var from: HeaderField? = nil
        for field in fields where field.hasName("from") {
            guard from == nil else {
                throw MailMessageError(.multipleFromHeaders, "the message has more than one From field")
            }
            from = field
        }
        guard let from else {
            throw MailMessageError(.noFromHeader, "the message has no From field")
        }
        let mailboxes = try AddressParser.parseAddressList(from.unfoldedValue)
        guard let author = mailboxes.first else {
            throw MailMessageError(.noAddressInFrom, "the From field holds no mailbox")
        }
        guard mailboxes.count == 1 else {
            throw MailMessageError(
                .multipleFromHeaders,
                "the From field holds \(mailboxes.count) mailboxes; a signer will not pick one of them as the author"
            )
        }
        return author
    }
}
