import MailMessage
import NIOCore

/// A message read whole into memory (the command line's case): line endings normalized to CRLF,
/// header and body split. What is signed is exactly what `bytes(prepending:)` sends.
public struct WholeMessage: Sendable {
    public let header: MessageHeader
    public let body: ByteBuffer
    /// False for a message that ends inside its header (no empty line, no body).
    public let hasBodySeparator: Bool

    /// - Throws: `MailMessageError` for NUL bytes, a line that is not a header field, or a header over the limits.
    public init(_ bytes: ByteBuffer, limits: MailMessageLimits = .default) throws {
        var normalizer = LineEndingNormalizer()
        var normalized = try normalizer.normalize(bytes)
        if var tail = normalizer.finish() {
            normalized.writeBuffer(&tail)
        }
        // SMTP can only carry a message that ends in CRLF, and verifiers disagree about canonicalizing one
        // that does not (dkimpy keeps a trailing space that RFC 6376 drops), so the last line is completed.
        if normalized.readableBytes > 0 && !normalized.readableBytesView.suffix(2).elementsEqual([0x0D, 0x0A]) {
            normalized.writeStaticString("\r\n")
        }
        var splitter = MessageSplitter(limits: limits)
        switch try splitter.feed(normalized) {
        case .header(let header, let bodyStart):
            self.header = header
            self.body = bodyStart
            self.hasBodySeparator = true
        case .body(let body):
            // Unreachable with one chunk, but harmless: keep the bytes rather than lose them.
            self.header = try MessageHeader.parse(ByteBuffer())
            self.body = body
            self.hasBodySeparator = true
        case .needMoreData:
            self.header = try splitter.finish() ?? MessageHeader.parse(ByteBuffer())
            self.body = ByteBuffer()
            self.hasBodySeparator = false
        }
    }

    /// The message as it goes out: the given fields (each ending in CRLF) first, then the header
    /// and body exactly as normalized.
    public func bytes(prepending fields: [String] = []) -> ByteBuffer {
        var out = ByteBuffer()
        out.reserveCapacity(fields.reduce(0) { $0 + $1.utf8.count } + header.bytes.readableBytes + body.readableBytes + 2)
        for field in fields {
            out.writeString(field)
        }
        var headerBytes = header.bytes
        out.writeBuffer(&headerBytes)
        if hasBodySeparator {
            out.writeStaticString("\r\n")
            var bodyBytes = body
            out.writeBuffer(&bodyBytes)
        }
        return out
    }

    /// Signs with every signer (one body pass per distinct body canonicalization) and returns the
    /// DKIM-Signature fields in the order of `signers`, each ending in CRLF.
    public func sign(with signers: [DKIMSigner], now: Int) throws -> [String] {
        var hashers = BodyHasherSet(keys: signers.map(\.bodyHasherKey))
        hashers.update(body)
        let hashes = hashers.finalize()
        return try signers.map { signer in
            // Safe to force unwrap: the set holds a hasher for every signer's key.
            try signer.sign(header: header, bodyHash: hashes[signer.bodyHasherKey]!, now: now)
        }
    }
}
