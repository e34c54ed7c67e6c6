import DKIMCore
import Keys
import MailMessage
import NIOCore

/// The outcome of checking one DKIM-Signature (RFC 8601 §2.7.1 result names).
public struct DKIMVerificationResult: Sendable, Hashable, CustomStringConvertible {
    /// A DKIM result as Authentication-Results writes it.
    public enum Status: String, Sendable, Hashable {
        case pass, fail, neutral, policy, permerror, temperror
    }

    public var status: Status
    /// Why, in words; empty for a plain pass.
    public var reason: String
    public var domain: String?
    public var selector: String?
    public var algorithm: String?
    /// `l=`: how much of the body the signature covers, when it does not cover all of it.
    public var bodyLength: Int?
    /// The key record carries `t=y` (the domain is testing DKIM).
    public var testing: Bool

    public init(
        status: Status,
        reason: String,
        domain: String? = nil,
        selector: String? = nil,
        algorithm: String? = nil,
        bodyLength: Int? = nil,
        testing: Bool = false
    ) {
        self.status = status
        self.reason = reason
        self.domain = domain
        self.selector = selector
        self.algorithm = algorithm
        self.bodyLength = bodyLength
        self.testing = testing
    }

    public var description: String {
        var text = "dkim=\(status.rawValue)"
        if let domain { text += " header.d=\(domain)" }
        if let selector { text += " header.s=\(selector)" }
        if let algorithm { text += " header.a=\(algorithm)" }
        if let bodyLength { text += " l=\(bodyLength)" }
        if testing { text += " (testing)" }
        if !reason.isEmpty { text += " (\(reason))" }
        return text
    }
}

/// Verifies the DKIM signatures of a message against key records from a lookup (RFC 6376 §6).
public struct DKIMVerifier: Sendable {
    /// Looks up the TXT record of a name; nil when there is none. A thrown error is a temporary failure.
    public typealias KeyLookup = @Sendable (_ name: String) throws -> String?

    public var lookup: KeyLookup
    /// Signatures beyond this many are reported as `policy` without being checked, which bounds the work a
    /// message with a thousand signatures can cause.
    public var maximumSignatures: Int
    /// RFC 8301 §3.2: verifiers must not accept RSA keys shorter than 1024 bits.
    public var minimumRSABits: Int

    public init(maximumSignatures: Int = 10, minimumRSABits: Int = 1024, lookup: @escaping KeyLookup) {
        self.lookup = lookup
        self.maximumSignatures = maximumSignatures
        self.minimumRSABits = minimumRSABits
    }

    public init(keyTable: DKIMKeyTable, maximumSignatures: Int = 10) {
        self.init(maximumSignatures: maximumSignatures) { name in keyTable.txt(for: name) }
    }

    /// One result per DKIM-Signature field, top to bottom; empty when the message has none.
    public func verify(_ message: WholeMessage, now: Int) -> [DKIMVerificationResult] {
        let fields = message.header.fields(named: "dkim-signature")
        var parsed: [(field: HeaderField, tags: DKIMSignatureTags)?] = []
        var results: [DKIMVerificationResult?] = []
        for (index, field) in fields.enumerated() {
            guard index < maximumSignatures else {
                parsed.append(nil)
                results.append(
                    DKIMVerificationResult(
                        status: .policy,
                        reason: "not checked: more than \(maximumSignatures) signatures on the message"
                    )
                )
                continue
            }
            do {
                let tags = try DKIMSignatureTags(parsing: field.unfoldedValue)
                parsed.append((field, tags))
                results.append(nil)
            } catch {
                parsed.append(nil)
                results.append(DKIMVerificationResult(status: .permerror, reason: "malformed signature: \(error)"))
            }
        }

        // One pass over the body for every distinct (body canonicalization, l=) among the signatures.
        var hashers = BodyHasherSet(
            keys: parsed.compactMap { entry in
                entry.map {
                    BodyHasher.Key(canonicalization: $0.tags.canonicalization.body, lengthLimit: $0.tags.bodyLength)
                }
            }
        )
        hashers.update(message.body)
        let bodyHashes = hashers.finalize()

        return zip(parsed, results).map { entry, early in
            if let early { return early }
            // Safe to force unwrap: every entry without an early result was parsed.
            let (field, tags) = entry!
            let key = BodyHasher.Key(canonicalization: tags.canonicalization.body, lengthLimit: tags.bodyLength)
            return check(field: field, tags: tags, header: message.header, bodyHash: bodyHashes[key], now: now)
        }
    }

    private func check(
        field: HeaderField,
        tags: DKIMSignatureTags,
        header: MessageHeader,
        bodyHash: BodyHasher.Result?,
        now: Int
    ) -> DKIMVerificationResult {
        var result = DKIMVerificationResult(
            status: .permerror,
            reason: "",
            domain: tags.domain,
            selector: tags.selector,
            algorithm: tags.algorithm
        )
        func finish(_ status: DKIMVerificationResult.Status, _ reason: String) -> DKIMVerificationResult {
            result.status = status
            result.reason = reason
            return result
        }

        let algorithm: DKIMAlgorithm
        switch tags.algorithm.lowercased() {
        case "rsa-sha256": algorithm = .rsaSHA256
        case "ed25519-sha256": algorithm = .ed25519SHA256
        case "rsa-sha1": return finish(.permerror, "rsa-sha1 is not accepted (RFC 8301)")
        default: return finish(.permerror, "unknown algorithm \(tags.algorithm)")
        }
        if let expiration = tags.expiration, expiration < now {
            return finish(.permerror, "signature expired at \(expiration)")
        }
        if let bodyLength = tags.bodyLength, let bodyHash, bodyLength > bodyHash.length {
            return finish(.permerror, "l=\(bodyLength) is longer than the body (\(bodyHash.length) bytes)")
        }

        let name = "\(tags.selector)._domainkey.\(tags.domain)"
        let text: String?
        do {
            text = try lookup(name)
        } catch {
            return finish(.temperror, "key lookup for \(name) failed: \(error)")
        }
        guard let text else { return finish(.permerror, "no key record at \(name)") }
        let checked = DKIMKeyCheck.publicKey(
            record: text, name: name, algorithm: algorithm, minimumRSABits: minimumRSABits
        ) { record in
            if record.flags.contains("s"), let identity = tags.identity,
                let at = identity.lastIndex(of: "@"),
                identity[identity.index(after: at)...].lowercased() != tags.domain.lowercased()
            {
                return "key record has t=s but i= is a subdomain of d="
            }
            return nil
        }
        let publicKey: PublicKey
        switch checked {
        case .success(let found):
            result.testing = found.record.flags.contains("y")
            publicKey = found.key
        case .failure(let failure):
            result.testing = failure.record?.flags.contains("y") ?? false
            return finish(.permerror, failure.reason)
        }

        guard let bodyHash else { return finish(.permerror, "body hash was not computed") }
        if tags.bodyLength != nil { result.bodyLength = bodyHash.length }
        guard bodyHash.hash == tags.bodyHash else { return finish(.fail, "body hash did not verify") }

        guard
            HeaderHasher.isValidSignature(
                tags.signature, field: field.raw, signedHeaders: tags.signedHeaders, header: header,
                canonicalization: tags.canonicalization.header, publicKey: publicKey)
        else {
            return finish(.fail, "signature did not verify")
        }
        return finish(.pass, "")
    }
}
