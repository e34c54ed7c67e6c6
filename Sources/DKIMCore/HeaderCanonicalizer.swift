import NIOCore

/// Header field canonicalization (RFC 6376 §3.4.1 and §3.4.2) over the raw bytes of a field.
public enum HeaderCanonicalizer {
    /// Canonicalizes one field as received (name, colon, folded value, CRLF); the output always ends in CRLF.
    public static func canonicalize<S: CanonicalizationSink>(
        field raw: ByteBuffer,
        _ algorithm: Canonicalization,
        into sink: inout S
    ) {
        write(raw, algorithm, terminated: true, into: &sink)
    }

    /// Canonicalizes the signature field itself, whose `b=` value the caller has emptied: the same, but
    /// without the trailing CRLF (RFC 6376 §3.7).
    public static func canonicalizeSignatureField<S: CanonicalizationSink>(
        field raw: ByteBuffer,
        _ algorithm: Canonicalization,
        into sink: inout S
    ) {
        write(raw, algorithm, terminated: false, into: &sink)
    }

    private static func write<S: CanonicalizationSink>(
        _ raw: ByteBuffer,
        _ algorithm: Canonicalization,
        terminated: Bool,
        into sink: inout S
    ) {
        raw.withUnsafeReadableBytes { bytes in
            var end = bytes.count
            let endsInCRLF = end >= 2 && bytes[end - 2] == 0x0D && bytes[end - 1] == 0x0A
            if endsInCRLF { end -= 2 }
            switch algorithm {
            case .simple:
                sink.write(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
            case .relaxed:
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: end + 1) { out in
                    let count = relaxed(UnsafeRawBufferPointer(rebasing: bytes[0..<end]), into: out)
                    sink.write(UnsafeRawBufferPointer(start: out.baseAddress, count: count))
                }
            }
            if terminated { sink.write(staticBytes: "\r\n") }
        }
    }

    /// Lowercased name without trailing white space, ':', then the value unfolded, white-space runs as one
    /// SP, and no white space at either end. Returns the number of bytes written to `out`.
    private static func relaxed(_ field: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        var written = 0
        var index = 0
        let count = field.count
        while index < count && field[index] != UInt8(ascii: ":") { index += 1 }
        var nameEnd = index
        while nameEnd > 0 && (field[nameEnd - 1] == 0x20 || field[nameEnd - 1] == 0x09) { nameEnd -= 1 }
        for position in 0..<nameEnd {
            let byte = field[position]
            out[written] = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            written += 1
        }
        out[written] = UInt8(ascii: ":")
        written += 1
        index += 1
        var pendingSpace = false
        var seenValue = false
        while index < count {
            let byte = field[index]
            if byte == 0x0D && index + 1 < count && field[index + 1] == 0x0A {
                index += 2
                continue
            }
            if byte == 0x20 || byte == 0x09 {
                pendingSpace = seenValue
            } else {
                if pendingSpace {
                    out[written] = 0x20
                    written += 1
                    pendingSpace = false
                }
                out[written] = byte
                written += 1
                seenValue = true
            }
            index += 1
        }
        return written
    }
}
