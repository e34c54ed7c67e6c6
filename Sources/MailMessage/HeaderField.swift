import NIOCore

/// One header field exactly as received.
///
/// `raw` is a slice of the buffer the message arrived in, so scanning a header copies no bytes; DKIM's simple
/// header canonicalization needs those bytes untouched anyway.
public struct HeaderField: Sendable, Hashable {
    /// Name, ':', value with its folding, and the terminating CRLF. The last field of a message without a final CRLF
    /// may lack it.
    public let raw: ByteBuffer
    /// Bytes of the name (without white space before the colon).
    public let nameLength: Int
    /// Index in `raw`, relative to `raw.readerIndex`, of the first byte after ':'.
    public let valueOffset: Int

    init(raw: ByteBuffer, nameLength: Int, valueOffset: Int) {
        self.raw = raw
        self.nameLength = nameLength
        self.valueOffset = valueOffset
    }

    /// Parses one field, such as a DKIM-Signature built by the signer; `raw` must hold exactly one field.
    public init(raw: ByteBuffer) throws(MailMessageError) {
        let scan: HeaderFieldScan = try raw.withUnsafeReadableBytes { bytes throws(MailMessageError) in
            var line = 1
            let scan = try HeaderFieldScanner.scanField(bytes, at: 0, line: &line, offset: 0)
            guard scan.end == bytes.count else {
                if bytes[scan.end] == ASCII.cr && scan.end + 1 < bytes.count && bytes[scan.end + 1] == ASCII.lf {
                    throw MailMessageError(.headerWithoutColon, "line \(line) after the field is empty")
                }
                throw MailMessageError(
                    .tooManyHeaderFields,
                    "the bytes hold more than one header field: line \(line) does not start with a space or tab"
                )
            }
            return scan
        }
        self.init(raw: raw, nameLength: scan.nameLength, valueOffset: scan.valueOffset)
    }

    /// The field name as written.
    public var name: String {
        raw.withUnsafeReadableBytes { bytes in
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<nameLength]), as: UTF8.self)
        }
    }

    /// Whether the name equals `lowercasedName`, ignoring ASCII case; compares bytes and allocates nothing.
    public func hasName(_ lowercasedName: String) -> Bool {
        let utf8 = lowercasedName.utf8
        guard utf8.count == nameLength else { return false }
        return raw.withUnsafeReadableBytes { bytes in
            var index = 0
            for byte in utf8 {
                // Lowercasing both sides costs nothing and forgives a caller that passed "From".
                guard ASCII.lowercased(bytes[index]) == ASCII.lowercased(byte) else { return false }
                index += 1
            }
            return true
        }
    }

    /// Index (relative to `raw.readerIndex`) just past the value: before a final CRLF, if there is one.
    private var valueEnd: Int {
        let count = raw.readableBytes
        guard count - valueOffset >= 2,
            raw.getInteger(at: raw.readerIndex + count - 2, as: UInt16.self) == 0x0D0A  // CR LF, big endian
        else { return count }
        return count - 2
    }

    /// The value from after ':' up to (excluding) the final CRLF, folding kept.
    public var rawValue: ByteBuffer {
        // In range: valueOffset <= valueEnd <= readableBytes by construction.
        raw.getSlice(at: raw.readerIndex + valueOffset, length: valueEnd - valueOffset)!
    }

    /// `rawValue` unfolded (every CRLF removed, RFC 5322 §2.2.3), decoded as UTF-8 with invalid bytes replaced.
    public var unfoldedValue: String {
        let end = valueEnd
        return raw.withUnsafeReadableBytes { bytes in
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueOffset..<end])
            guard value.contains(ASCII.cr) else { return String(decoding: value, as: UTF8.self) }
            var unfolded: [UInt8] = []
            unfolded.reserveCapacity(value.count)
            var index = 0
            while index < value.count {
                if value[index] == ASCII.cr && index + 1 < value.count && value[index + 1] == ASCII.lf {
                    index += 2
                    continue
                }
                unfolded.append(value[index])
                index += 1
            }
            return String(decoding: unfolded, as: UTF8.self)
        }
    }
}
