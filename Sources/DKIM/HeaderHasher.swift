import DKIMCore
import Keys
import MailMessage
import NIOCore

/// Selects and hashes the signed header fields (RFC 6376 §5.4.2 and §3.7).
public enum HeaderHasher {
    /// For each name of `h=` in order, the next unused field of that name counting from the bottom;
    /// nil where none is left (an oversigned name, which contributes nothing to the hash).
    public static func select(_ names: [String], from header: MessageHeader) -> [HeaderField?] {
        var used: [String: Int] = [:]
        var byName: [String: [HeaderField]] = [:]
        var selected: [HeaderField?] = []
        selected.reserveCapacity(names.count)
        for name in names {
            let lower = name.lowercased()
            let candidates: [HeaderField]
            if let cached = byName[lower] {
                candidates = cached
            } else {
                candidates = header.fields(named: lower)
                byName[lower] = candidates
            }
            let taken = used[lower, default: 0]
            if taken < candidates.count {
                selected.append(candidates[candidates.count - 1 - taken])
                used[lower] = taken + 1
            } else {
                selected.append(nil)
            }
        }
        return selected
    }

    /// SHA-256 (or SHA-1, to verify rsa-sha1) over the canonicalized signed fields followed by the signature
    /// field itself, whose `b=` value is already empty and whose trailing CRLF is left out.
    public static func digest(
        signedFields: [HeaderField?],
        signatureField: ByteBuffer,
        canonicalization: Canonicalization,
        algorithm: DigestAlgorithm = .sha256
    ) -> [UInt8] {
        var sink = SHA256Sink(hasher: SHA256(algorithm))
        for case let field? in signedFields {
            HeaderCanonicalizer.canonicalize(field: field.raw, canonicalization, into: &sink)
        }
        HeaderCanonicalizer.canonicalizeSignatureField(field: signatureField, canonicalization, into: &sink)
        return sink.finalize()
    }

    /// Checks a signature field's `b=` (already decoded as `signature`) over the fields `signedHeaders` selects
    /// and the field itself with `b=` emptied: the header half of DKIM verification, shared with ARC's
    /// ARC-Message-Signature.
    public static func isValidSignature(
        _ signature: [UInt8],
        field: ByteBuffer,
        signedHeaders: [String],
        header: MessageHeader,
        canonicalization: Canonicalization,
        publicKey: PublicKey,
        algorithm: DigestAlgorithm = .sha256
    ) -> Bool {
        let digest = digest(
            signedFields: select(signedHeaders, from: header),
            signatureField: TagList.removingValue(ofTag: "b", from: field),
            canonicalization: canonicalization,
            algorithm: algorithm
        )
        return publicKey.isValidSignature(signature, forDigest: digest, algorithm: algorithm)
    }
}
