import DKIMCore
import Keys
import MailMessage
import NIOCore

/// Signs messages for one domain and selector with one key (RFC 6376 §5, RFC 8463).
///
/// A class, though immutable: a signer travels with every message (chosen at the header, prepared, handed to the
/// signer pool, counted), and a struct of a dozen references was copied, retained and released at each step.
public final class DKIMSigner: Sendable {
    public let domain: String
    public let selector: String
    /// The key that signs in this process (a `PrivateKey`, or a `PKCS11Key` whose token signs); nil when it lives
    /// in a signer agent (`keyReference`).
    public let signingKey: (any DigestSigningKey)?
    /// The private key, when this process holds it in memory.
    public var key: PrivateKey? { signingKey as? PrivateKey }
    /// The public half, to check signatures made elsewhere before they leave.
    public let publicKey: PublicKey
    /// The name a signer agent knows the private key by; nil for a key in this process.
    public let keyReference: String?
    public let algorithm: DKIMAlgorithm
    public let options: DKIMSignerOptions
    /// `options.signedHeaders` lowercased, each name once, worked out once rather than per message.
    private let signedNames: [String]

    /// - Throws: `DKIMError` when the domain, selector or identity is not usable, or `algorithm`
    ///   does not match the key's type.
    public convenience init(
        domain: String,
        selector: String,
        key: PrivateKey,
        algorithm: DKIMAlgorithm? = nil,
        options: DKIMSignerOptions = DKIMSignerOptions()
    ) throws {
        try self.init(signingKey: key, domain: domain, selector: selector, algorithm: algorithm, options: options)
    }

    /// A signer whose key signs in this process but may be held elsewhere, such as in a PKCS#11 token.
    public convenience init(
        signingKey: any DigestSigningKey,
        domain: String,
        selector: String,
        algorithm: DKIMAlgorithm? = nil,
        options: DKIMSignerOptions = DKIMSignerOptions()
    ) throws {
        try self.init(
            domain: domain, selector: selector, key: signingKey, publicKey: signingKey.publicKey, keyReference: nil,
            algorithm: algorithm, options: options)
    }

    /// A signer whose private key lives elsewhere (a signer agent): it prepares signatures, and whoever holds the
    /// key named `keyReference` completes them.
    public convenience init(
        domain: String,
        selector: String,
        publicKey: PublicKey,
        keyReference: String,
        algorithm: DKIMAlgorithm? = nil,
        options: DKIMSignerOptions = DKIMSignerOptions()
    ) throws {
        try self.init(
            domain: domain, selector: selector, key: nil, publicKey: publicKey, keyReference: keyReference,
            algorithm: algorithm, options: options)
    }

    private init(
        domain: String, selector: String, key: (any DigestSigningKey)?, publicKey: PublicKey, keyReference: String?,
        algorithm: DKIMAlgorithm?, options: DKIMSignerOptions
    ) throws {
        guard let asciiDomain = DomainName.asciiLowercased(domain),
            asciiDomain.contains(".") || asciiDomain == "localhost"
        else {
            throw DKIMError(.invalidDomain, "'\(domain)' is not a valid signing domain (d=)")
        }
        guard Self.isValidSelector(selector) else {
            throw DKIMError(
                .invalidSelector,
                "'\(selector)' is not a valid selector (s=): use letters, digits, '-' and '.'-separated labels"
            )
        }
        let resolved = algorithm ?? DKIMAlgorithm(keyAlgorithm: publicKey.algorithm)
        guard resolved.keyAlgorithm == publicKey.algorithm else {
            throw DKIMError(
                .algorithmKeyMismatch,
                "algorithm \(resolved.rawValue) needs a \(resolved.keyAlgorithm.rawValue) key, "
                    + "but the key is \(publicKey.algorithm.rawValue)"
            )
        }
        if let identity = options.identity {
            guard let at = identity.lastIndex(of: "@"),
                let identityDomain = DomainName.asciiLowercased(String(identity[identity.index(after: at)...])),
                identityDomain == asciiDomain || identityDomain.hasSuffix("." + asciiDomain)
            else {
                throw DKIMError(
                    .invalidIdentity,
                    "identity (i=) '\(identity)' must be an address in \(asciiDomain) or one of its subdomains"
                )
            }
        }
        self.domain = asciiDomain
        self.selector = selector.lowercased()
        self.signingKey = key
        self.publicKey = publicKey
        self.keyReference = keyReference
        self.algorithm = resolved
        self.options = options
        var seen = Set<String>()
        self.signedNames = options.signedHeaders.map { $0.lowercased() }.filter { seen.insert($0).inserted }
    }

    /// The body hash this signer needs; signers with equal keys share one pass over the body.
    public var bodyHasherKey: BodyHasher.Key {
        BodyHasher.Key(canonicalization: options.canonicalization.body, lengthLimit: nil)
    }

    /// The `h=` list for a message: every present instance of each name, plus one when oversigning.
    public func headerList(for header: MessageHeader) -> [String] {
        signedFieldSelection(for: header).names
    }

    /// The `h=` names and, for each, the field it selects (`HeaderHasher.select`'s answer), in one pass over the
    /// header: a name's fields are taken from the bottom up, and an oversigned name selects nothing.
    public func signedFieldSelection(for header: MessageHeader) -> (names: [String], fields: [HeaderField?]) {
        if let explicit = options.explicitHeaderList { return (explicit, HeaderHasher.select(explicit, from: header)) }
        let present = header.fields
        let extra = options.oversign ? 1 : 0
        var names: [String] = []
        var fields: [HeaderField?] = []
        // Scratch space on the stack: for each header field the index of its name in `signedNames` (or -1), then
        // how many fields each signed name has. A bucket array per name cost an allocation per name present.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: present.count + signedNames.count) { scratch in
            let nameOf = UnsafeMutableBufferPointer(rebasing: scratch[0..<present.count])
            let counts = UnsafeMutableBufferPointer(rebasing: scratch[present.count...])
            counts.initialize(repeating: 0)
            var selected = 0
            for (position, field) in present.enumerated() {
                let index = signedNames.firstIndex(where: { field.hasName($0) }) ?? -1
                nameOf.initializeElement(at: position, to: index)
                if index >= 0 {
                    counts[index] += 1
                    selected += 1
                }
            }
            names.reserveCapacity(selected + signedNames.count * extra)
            fields.reserveCapacity(selected + signedNames.count * extra)
            for (index, name) in signedNames.enumerated() where counts[index] + extra > 0 {
                names.append(contentsOf: repeatElement(name, count: counts[index] + extra))
                // From the bottom up, as `HeaderHasher.select` takes them (RFC 6376 §5.4.2).
                var position = present.count - 1
                while position >= 0 {
                    if nameOf[position] == index { fields.append(present[position]) }
                    position -= 1
                }
                if extra > 0 { fields.append(nil) }
            }
        }
        return (names, fields)
    }

    /// Everything but the private-key operation: the field with an empty `b=` and the digest to sign.
    /// Split out so the key operation can run elsewhere (a signer pool, an agent, a token).
    public func prepare(header: MessageHeader, bodyHash: BodyHasher.Result, now: Int) -> PreparedSignature {
        var writer = TagListWriter(fieldName: "DKIM-Signature")
        writer.append("v", "1")
        writer.append("a", algorithm.rawValue)
        writer.append("c", options.canonicalization.tagValue)
        writer.append("d", domain)
        if let identity = options.identity { writer.append("i", identity) }
        if options.includeQueryMethod { writer.append("q", "dns/txt") }
        writer.append("s", selector)
        if options.includeTimestamp { writer.append("t", String(now)) }
        if let expiration = options.expiration { writer.append("x", String(now + expiration)) }
        if options.includeBodyLength { writer.append("l", String(bodyHash.length)) }
        let (names, signedFields) = signedFieldSelection(for: header)
        if options.headerListSeparator == ":" {
            writer.appendList("h", names)
        } else {
            writer.append("h", names.joined(separator: options.headerListSeparator))
        }
        writer.append("bh", Base64.encode(bodyHash.hash))

        var unsigned = writer
        unsigned.appendBase64("b", "")
        let unsignedField = ByteBuffer(bytes: unsigned.bytes)
        let digest = HeaderHasher.digest(
            signedFields: signedFields,
            signatureField: unsignedField,
            canonicalization: options.canonicalization.header
        )
        return PreparedSignature(writer: writer, digest: digest)
    }

    /// Prepares and signs in one step, on the calling thread.
    public func sign(header: MessageHeader, bodyHash: BodyHasher.Result, now: Int) throws -> String {
        let prepared = prepare(header: header, bodyHash: bodyHash, now: now)
        guard let key = signingKey else {
            throw DKIMError(.signingFailed, "the key for d=\(domain) s=\(selector) is held by a signer agent")
        }
        let signature: [UInt8]
        do {
            signature = try key.signature(forSHA256Digest: prepared.digest)
        } catch {
            throw DKIMError(.signingFailed, "signing for d=\(domain) s=\(selector) failed: \(error)")
        }
        return prepared.field(signature: signature)
    }

    /// Selectors are dot-separated labels (RFC 6376 §3.1).
    static func isValidSelector(_ selector: String) -> Bool {
        guard !selector.isEmpty, selector.utf8.count <= 253 else { return false }
        return selector.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && label.utf8.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                        || byte == 0x2D || byte == 0x5F
                }
        }
    }
}

/// A signature waiting for its private-key operation.
public struct PreparedSignature: Sendable {
    fileprivate let writer: TagListWriter
    /// SHA-256 of the canonical signed header fields and the unsigned signature field.
    public let digest: [UInt8]

    fileprivate init(writer: TagListWriter, digest: [UInt8]) {
        self.writer = writer
        self.digest = digest
    }

    /// The finished DKIM-Signature field, CRLF included, ready to prepend.
    public func field(signature: [UInt8]) -> String {
        var signed = writer
        signed.appendBase64("b", Base64.encode(signature))
        return signed.text + "\r\n"
    }
}
