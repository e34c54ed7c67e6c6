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

/// What a key lookup found for one `selector._domainkey.domain` name.
public enum DKIMKeyLookupResult: Sendable, Hashable {
    /// The TXT records at the name, each one's character-strings joined (RFC 6376 §3.6.2.2).
    case records([String])
    /// NXDOMAIN or NODATA: the signature is a `permerror` ("no key record").
    case noRecord
    /// The lookup got no usable answer (timeout, SERVFAIL): the signature is a `temperror`.
    case temporaryFailure(String)
    /// The name cannot be asked at all (a label over 63 bytes): the signature is a `permerror`.
    case permanentFailure(String)
}

/// Verifies the DKIM signatures of a message against key records from a lookup (RFC 6376 §6, RFC 8301,
/// RFC 8463). Pure: the lookup is a synchronous function, so callers that resolve keys over the network ask
/// `prepare` for the names first, resolve them, and hand the answers back (MailAuth's `DKIMVerification`).
public struct DKIMVerifier: Sendable {
    /// Looks up the TXT record of a name; nil when there is none. A thrown error is a temporary failure.
    public typealias KeyLookup = @Sendable (_ name: String) throws -> String?
    /// Looks up the TXT records of a name with every outcome spelled out.
    public typealias KeyRecordLookup = @Sendable (_ name: String) -> DKIMKeyLookupResult

    public var keyLookup: KeyRecordLookup
    /// Signatures beyond this many are reported as `policy` without being checked, which bounds the work a
    /// message with a thousand signatures can cause.
    public var maximumSignatures: Int
    /// RFC 8301 §3.2: verifiers must not accept RSA keys shorter than 1024 bits.
    public var minimumRSABits: Int
    /// RFC 8301 §3.2 asks verifiers to handle up to 4096 bits; larger keys only cost CPU, so they are refused.
    public var maximumRSABits: Int
    /// rsa-sha1 (RFC 8301 §3.1: must not be used); off by default, then such signatures are a `permerror`.
    public var acceptSHA1: Bool
    /// How far `t=` may lie in the future before the signature is refused (clocks differ; dkimpy allows 10 hours).
    public var futureTimestampTolerance: Int
    /// Parsed public keys reused across messages; nil imports every key afresh.
    public var keyCache: PublicKeyCache? = .shared

    public init(
        maximumSignatures: Int = 10,
        minimumRSABits: Int = 1024,
        maximumRSABits: Int = 4096,
        acceptSHA1: Bool = false,
        futureTimestampTolerance: Int = 36_000,
        keyLookup: @escaping KeyRecordLookup
    ) {
        self.keyLookup = keyLookup
        self.maximumSignatures = maximumSignatures
        self.minimumRSABits = minimumRSABits
        self.maximumRSABits = maximumRSABits
        self.acceptSHA1 = acceptSHA1
        self.futureTimestampTolerance = futureTimestampTolerance
    }

    /// A verifier over a lookup that returns one record or nil, and throws for a temporary failure.
    public init(maximumSignatures: Int = 10, minimumRSABits: Int = 1024, lookup: @escaping KeyLookup) {
        self.init(maximumSignatures: maximumSignatures, minimumRSABits: minimumRSABits) { name in
            do {
                return try lookup(name).map { .records([$0]) } ?? .noRecord
            } catch {
                return .temporaryFailure("\(error)")
            }
        }
    }

    public init(keyTable: DKIMKeyTable, maximumSignatures: Int = 10) {
        self.init(maximumSignatures: maximumSignatures) { name in keyTable.txt(for: name) }
    }

    /// One result per DKIM-Signature field, top to bottom; empty when the message has none.
    public func verify(_ message: WholeMessage, now: Int) -> [DKIMVerificationResult] {
        let plan = prepare(message.header, now: now)
        var hashers = BodyHasherSet(keys: plan.bodyHasherKeys)
        hashers.update(message.body)
        return finish(plan, bodyHashes: hashers.finalize())
    }

    /// Reads the signatures of a header: what the body must be hashed with and which key records are needed.
    /// A streaming caller prepares at the end of the header, hashes the body as it arrives (and resolves the
    /// keys meanwhile), then calls `finish`.
    public func prepare(_ header: MessageHeader, now: Int) -> DKIMVerificationPlan {
        let fields = header.fields(named: "dkim-signature")
        var entries: [DKIMVerificationPlan.Entry] = []
        entries.reserveCapacity(fields.count)
        for (index, field) in fields.enumerated() {
            guard index < maximumSignatures else {
                entries.append(
                    .done(
                        DKIMVerificationResult(
                            status: .policy,
                            reason: "not checked: more than \(maximumSignatures) signatures on the message"
                        )
                    )
                )
                continue
            }
            let tags: DKIMSignatureTags
            do {
                tags = try DKIMSignatureTags(parsing: field.unfoldedValue)
            } catch {
                entries.append(.done(Self.malformed(field, error)))
                continue
            }
            switch precheck(tags, now: now) {
            case .failure(let result): entries.append(.done(result))
            case .success(let digest): entries.append(.pending(field: field, tags: tags, digest: digest))
            }
        }
        return DKIMVerificationPlan(header: header, now: now, entries: entries)
    }

    /// The results, in the order of the plan's signatures, once the body hashes for `plan.bodyHasherKeys` are known.
    public func finish(
        _ plan: DKIMVerificationPlan, bodyHashes: [BodyHasher.Key: BodyHasher.Result]
    ) -> [DKIMVerificationResult] {
        var lookups: [String: DKIMKeyLookupResult] = [:]
        return plan.entries.map { entry in
            switch entry {
            case .done(let result):
                return result
            case .pending(let field, let tags, let digest):
                let name = DKIMVerificationPlan.keyName(tags)
                let answer: DKIMKeyLookupResult
                if let known = lookups[name] {
                    answer = known
                } else {
                    answer = keyLookup(name)
                    lookups[name] = answer
                }
                let key = DKIMVerificationPlan.bodyHasherKey(tags, digest)
                return check(
                    field: field, tags: tags, digest: digest, header: plan.header, bodyHash: bodyHashes[key],
                    keyName: name, answer: answer)
            }
        }
    }

    /// A signature that could not be parsed, with what could still be read from it for the report.
    private static func malformed(_ field: HeaderField, _ error: DKIMCoreError) -> DKIMVerificationResult {
        let tags = try? TagList(parsing: field.unfoldedValue)
        return DKIMVerificationResult(
            status: .permerror, reason: "malformed signature: \(error)", domain: tags?["d"], selector: tags?["s"],
            algorithm: tags?["a"])
    }

    /// The checks that need neither the key nor the body: algorithm, time.
    private enum Precheck {
        case success(DigestAlgorithm)
        case failure(DKIMVerificationResult)
    }

    private func precheck(_ tags: DKIMSignatureTags, now: Int) -> Precheck {
        func fail(_ reason: String) -> Precheck {
            .failure(
                DKIMVerificationResult(
                    status: .permerror, reason: reason, domain: tags.domain, selector: tags.selector,
                    algorithm: tags.algorithm))
        }
        let digest: DigestAlgorithm
        switch tags.algorithm {
        case "rsa-sha256", "ed25519-sha256": digest = .sha256
        case "rsa-sha1":
            guard acceptSHA1 else { return fail("rsa-sha1 is not accepted (RFC 8301)") }
            digest = .sha1
        default: return fail("unknown algorithm \(tags.algorithm)")
        }
        if let expiration = tags.expiration, expiration < now {
            return fail("signature expired at \(expiration)")
        }
        if let timestamp = tags.timestamp, timestamp > now + futureTimestampTolerance {
            return fail("signature timestamp t=\(timestamp) is in the future")
        }
        return .success(digest)
    }

    private func check(
        field: HeaderField,
        tags: DKIMSignatureTags,
        digest digestAlgorithm: DigestAlgorithm,
        header: MessageHeader,
        bodyHash: BodyHasher.Result?,
        keyName name: String,
        answer: DKIMKeyLookupResult
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
        let keyAlgorithm: KeyAlgorithm = tags.algorithm.hasPrefix("ed25519-") ? .ed25519 : .rsa
        if let bodyLength = tags.bodyLength, let bodyHash, bodyLength > bodyHash.length {
            return finish(.permerror, "l=\(bodyLength) is longer than the body (\(bodyHash.length) bytes)")
        }

        let texts: [String]
        switch answer {
        case .records(let records) where !records.isEmpty: texts = records
        case .records, .noRecord: return finish(.permerror, "no key record at \(name)")
        case .temporaryFailure(let why): return finish(.temperror, "key lookup for \(name) failed: \(why)")
        case .permanentFailure(let why): return finish(.permerror, "key lookup for \(name) failed: \(why)")
        }
        let checked = DKIMKeyCheck.publicKey(
            records: texts, name: name, keyAlgorithm: keyAlgorithm, digest: digestAlgorithm,
            algorithmName: tags.algorithm, minimumRSABits: minimumRSABits, maximumRSABits: maximumRSABits,
            keyCache: keyCache
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
        result.bodyLength = tags.bodyLength
        guard bodyHash.hash == tags.bodyHash else { return finish(.fail, "body hash did not verify") }

        guard
            HeaderHasher.isValidSignature(
                tags.signature, field: field.raw, signedHeaders: tags.signedHeaders, header: header,
                canonicalization: tags.canonicalization.header, publicKey: publicKey, algorithm: digestAlgorithm)
        else {
            return finish(.fail, "signature did not verify")
        }
        if let limit = tags.bodyLength, bodyHash.length > limit {
            // RFC 6376 §8.2: what follows l= could have been added by anyone; say so next to the pass.
            return finish(.pass, "\(bodyHash.length - limit) body bytes after l= are not signed")
        }
        return finish(.pass, "")
    }
}

/// The signatures of one message, read and pre-checked, waiting for their key records and body hashes.
public struct DKIMVerificationPlan: Sendable {
    enum Entry: Sendable {
        /// Already decided (malformed, unsupported, expired, over the limit).
        case done(DKIMVerificationResult)
        case pending(field: HeaderField, tags: DKIMSignatureTags, digest: DigestAlgorithm)
    }

    let header: MessageHeader
    let now: Int
    let entries: [Entry]

    /// The distinct key record names (`selector._domainkey.domain`) the pending signatures need, in order.
    public var keyNames: [String] {
        var seen = Set<String>()
        return entries.compactMap { entry in
            guard case .pending(_, let tags, _) = entry else { return nil }
            let name = Self.keyName(tags)
            return seen.insert(name.lowercased()).inserted ? name : nil
        }
    }

    /// The body hashes the pending signatures need (one per distinct canonicalization, `l=` and digest).
    public var bodyHasherKeys: [BodyHasher.Key] {
        entries.compactMap { entry in
            guard case .pending(_, let tags, let digest) = entry else { return nil }
            return Self.bodyHasherKey(tags, digest)
        }
    }

    /// How many signatures the message has (checked or not).
    public var count: Int { entries.count }

    static func keyName(_ tags: DKIMSignatureTags) -> String {
        "\(tags.selector)._domainkey.\(tags.domain)"
    }

    static func bodyHasherKey(_ tags: DKIMSignatureTags, _ digest: DigestAlgorithm) -> BodyHasher.Key {
        BodyHasher.Key(canonicalization: tags.canonicalization.body, lengthLimit: tags.bodyLength, digest: digest)
    }
}
