import NIOCore

/// Turns bare LF and bare CR into CRLF, chunk by chunk; rejects NUL. Returns the input slice itself (no copy) when
/// the chunk needs no change, which is the case for nearly all mail.
///
/// A chunk that ends in CR is passed on as it is: if the next chunk starts with LF the pair is complete, and if not,
/// the missing LF is put in front of the next chunk (or returned by `finish()`). So a CRLF split across chunks is
/// never doubled and the output never depends on where the chunks were cut.
public struct LineEndingNormalizer: Sendable {
    /// The last byte passed on was a CR whose LF has not been seen yet.
    private var endedOnCR = false
    /// Input bytes seen so far, so that a NUL is reported at its offset in the message.
    private var consumed = 0

    public init() {}

    /// The chunk with CRLF line ends: the same buffer when nothing had to change, else a new one.
    public mutating func normalize(_ chunk: ByteBuffer) throws(MailMessageError) -> ByteBuffer {
        let count = chunk.readableBytes
        guard count > 0 else { return chunk }
        let endedOnCR = self.endedOnCR
        let consumed = self.consumed
        let fixed = try chunk.withUnsafeReadableBytes { bytes throws(MailMessageError) -> ByteBuffer? in
            try Self.fix(bytes, afterCR: endedOnCR, streamOffset: consumed)
        }
        self.endedOnCR = chunk.getInteger(at: chunk.readerIndex + count - 1, as: UInt8.self) == ASCII.cr
        self.consumed = consumed + count
        return fixed ?? chunk
    }

    /// At the end of the stream: the LF that completes a final bare CR, else nil.
    public mutating func finish() -> ByteBuffer? {
        guard endedOnCR else { return nil }
        endedOnCR = false
        return ByteBuffer(integer: ASCII.lf)
    }

    /// Nil when `bytes` needs no change; else the corrected bytes. One pass; the output is only built from the first
    /// bare line end on.
    private static func fix(
        _ bytes: UnsafeRawBufferPointer,
        afterCR: Bool,
        streamOffset: Int
    ) throws(MailMessageError) -> ByteBuffer? {
        guard let base = bytes.baseAddress else { return nil }
        let count = bytes.count
        var output = ByteBuffer()  // capacity 0 shares a static empty storage: no allocation unless used
        var changed = false
        var copied = 0

        // Copies the untouched bytes before `position`, then the inserted byte.
        func insert(_ byte: UInt8, before position: Int) {
            if !changed {
                changed = true
                output.reserveCapacity(count + count / 16 + 16)
            }
            output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied..<position]))
            output.writeInteger(byte)
            copied = position
        }

        if afterCR && bytes[0] != ASCII.lf {
            insert(ASCII.lf, before: 0)  // the previous chunk's last CR was bare
        }
        var index = 0
        while true {
            index = ByteScan.firstControl(base, from: index, to: count)
            guard index < count else { break }
            switch bytes[index] {
            case ASCII.nul:
                throw MailMessageError(.nulByte, "NUL byte at offset \(streamOffset + index) of the message")
            case ASCII.lf:
                let precededByCR = index == 0 ? afterCR : bytes[index - 1] == ASCII.cr
                if !precededByCR { insert(ASCII.cr, before: index) }
            case ASCII.cr:
                // A CR at the very end waits for the next chunk (see the type's comment).
                if index + 1 < count && bytes[index + 1] != ASCII.lf { insert(ASCII.lf, before: index + 1) }
            default:
                break
            }
            index += 1
        }
        guard changed else { return nil }
        output.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[copied..<count]))
        return output
    }
}
