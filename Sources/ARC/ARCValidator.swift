import DKIM
import DKIMCore
import Keys
import MailAuth
import MailMessage
import NIOCore

/// The outcome of validating a message's ARC chain (RFC 8617 §5.2).
public struct ARCValidationResult: Sendable, Hashable, CustomStringConvertible {
    /// `cv`: none (no chain), pass or fail.
    public var status: ARCChainStatus
    /// Why, in words; empty for a plain pass or none.
    public var reason: String
    /// The highest instance found (N); 0 for none.
    public var instance: Int
    /// RFC 8617 §5.2 step 5: the instance of the oldest ARC-Message-Signature from which every newer one still
    /// validates, or 0 when they all do; nil unless the chain passed.
    public var oldestPass: Int?

    public init(status: ARCChainStatus, reason: String = "", instance: Int = 0, oldestPass: Int? = nil) {
        self.status = status
        self.reason = reason
        self.instance = instance
        self.oldestPass = oldestPass
    }

    /// The result as an Authentication-Results entry: `arc=pass (i=2 oldest-pass=1)`, `arc=fail (reason)`.
    public var description: String { ARCValidationResult.resultLine(self) }

    /// Formats a result for Authentication-Results and `signet verify`.
    public static func resultLine(_ result: ARCValidationResult) -> String {
        switch result.status {
        case .none: return "arc=none"
        case .pass:
            var details = "i=\(result.instance)"
            if let oldest = result.oldestPass { details += " oldest-pass=\(oldest)" }
            return "arc=pass (\(details))"
        case .fail:
            let reason = result.reason.replacingParentheses()
            return result.instance > 0 ? "arc=fail (i=\(result.instance) \(reason))" : "arc=fail (\(reason))"
        }
    }
}

/// The answer for one key record name, as looked up before the pure check.
public enum ARCKeyAnswer: Sendable, Hashable {
    case record(String)
    case noRecord
    /// A temporary DNS failure, in words.
    case failure(String)
}

/// Validates ARC chains (RFC 8617 §5.2): structure, every ARC-Seal, the newest ARC-Message-Signature, and the
/// oldest instance whose AMS still validates. Key records come in as data, so the check itself does no I/O.
public struct ARCValidator: Sendable {
    /// RFC 8301 §3.2: keys shorter than this are refused.
    public var minimumRSABits: Int

    public init(minimumRSABits: Int = 1024) {
        self.minimumRSABits = minimumRSABits
    }

    /// The key record names a chain needs (deduplicated, in order of first use).
    public func keyNames(for chain: ARCChain) -> [String] {
        var seen = Set<String>()
        return (chain.sealTags + chain.signatureTags).map(\.keyName).filter { seen.insert($0).inserted }
    }

    /// The body hashes a chain needs, one per distinct AMS body canonicalization.
    public func bodyHasherKeys(for chain: ARCChain) -> [BodyHasher.Key] {
        Array(Set(chain.signatureTags.map(\.bodyHasherKey)))
    }

    /// Looks the chain's key records up through `resolver`, concurrently.
    public func lookUpKeys(for chain: ARCChain, resolver: some DNSResolver) async -> [String: ARCKeyAnswer] {
        await withTaskGroup(of: (String, ARCKeyAnswer).self) { group in
            for name in keyNames(for: chain) {
                group.addTask {
                    do {
                        let answer = try await resolver.txt(name)
                        // More than one record leaves the key ambiguous (RFC 6376 §3.6.2.2 lets a verifier
                        // pick); the first one is tried, like dkimpy does.
                        guard let first = answer.records.first else { return (name, .noRecord) }
                        return (name, .record(first))
                    } catch {
                        return (name, .failure("\(error)"))
                    }
                }
            }
            var answers: [String: ARCKeyAnswer] = [:]
            for await (name, answer) in group { answers[name] = answer }
            return answers
        }
    }

    /// Validates a whole message, looking keys up through `resolver`.
    public func validate(_ message: WholeMessage, resolver: some DNSResolver) async -> ARCValidationResult {
        let chain = ARCChain(header: message.header)
        let keys = await lookUpKeys(for: chain, resolver: resolver)
        var hashers = BodyHasherSet(keys: bodyHasherKeys(for: chain))
        hashers.update(message.body)
        return validate(chain: chain, header: message.header, bodyHashes: hashers.finalize(), keys: keys)
    }

    /// The pure check: `bodyHashes` must hold every key of `bodyHasherKeys(for:)`, `keys` every name of
    /// `keyNames(for:)` (a missing one counts as no record).
    public func validate(
        chain: ARCChain,
        header: MessageHeader,
        bodyHashes: [BodyHasher.Key: BodyHasher.Result],
        keys: [String: ARCKeyAnswer]
    ) -> ARCValidationResult {
        let n = chain.highestInstance
        if chain.isEmpty { return ARCValidationResult(status: .none) }
        func fail(_ reason: String) -> ARCValidationResult {
            ARCValidationResult(status: .fail, reason: reason, instance: n)
        }
        // Steps 1 and 3: structure (exactly one of each field per instance, 1...N, N <= 50, tags well formed).
        if let error = chain.structureError { return fail(error) }
        let sets = chain.sets
        // Step 2: a chain that an earlier hop saw failing stays failed.
        if chain.sealTags[n - 1].chainStatus == .fail { return fail("ARC-Seal i=\(n) has cv=fail") }
        // Step 3.3: cv=none only on instance 1, cv=pass on every later one.
        for tags in chain.sealTags {
            let expected: ARCChainStatus = tags.instance == 1 ? .none : .pass
            guard tags.chainStatus == expected else {
                return fail(
                    "ARC-Seal i=\(tags.instance) has cv=\(tags.chainStatus.rawValue), expected \(expected.rawValue)")
            }
        }
        // Step 4: the newest AMS.
        if let problem = checkMessageSignature(
            chain.signatureTags[n - 1], set: sets[n - 1], header: header, bodyHashes: bodyHashes, keys: keys)
        {
            return fail("ARC-Message-Signature i=\(n): \(problem)")
        }
        // Step 6: every seal, newest first.
        for index in stride(from: n - 1, through: 0, by: -1) {
            if let problem = checkSeal(chain.sealTags[index], sets: sets, keys: keys) {
                return fail("ARC-Seal i=\(index + 1): \(problem)")
            }
        }
        // Step 5 (after the seals, so it is only worked out for a chain that passes): the oldest AMS from which
        // every newer one still validates, or 0 when all do.
        var oldestPass = 0
        for index in stride(from: n - 2, through: 0, by: -1) {
            let problem = checkMessageSignature(
                chain.signatureTags[index], set: sets[index], header: header, bodyHashes: bodyHashes, keys: keys)
            if problem != nil {
                oldestPass = index + 2
                break
            }
        }
        return ARCValidationResult(status: .pass, instance: n, oldestPass: oldestPass)
    }

    /// Nil when the AMS validates, else why not.
    private func checkMessageSignature(
        _ tags: ARCSignatureTags,
        set: ARCSet,
        header: MessageHeader,
        bodyHashes: [BodyHasher.Key: BodyHasher.Result],
        keys: [String: ARCKeyAnswer]
    ) -> String? {
        let publicKey: PublicKey
        switch key(for: tags, keys: keys) {
        case .success(let key): publicKey = key
        case .failure(let error): return error.description
        }
        guard let bodyHash = bodyHashes[tags.bodyHasherKey] else { return "body hash was not computed" }
        guard bodyHash.hash == tags.bodyHash else { return "body hash did not verify" }
        guard
            HeaderHasher.isValidSignature(
                tags.signature, field: set.messageSignature.raw, signedHeaders: tags.signedHeaders, header: header,
                canonicalization: tags.canonicalization.header, publicKey: publicKey)
        else { return "signature did not verify" }
        return nil
    }

    /// Nil when the AS validates, else why not. It covers sets 1...i in order, AAR, AMS, AS each, relaxed,
    /// with its own `b=` emptied (RFC 8617 §5.1.1).
    private func checkSeal(_ tags: ARCSignatureTags, sets: [ARCSet], keys: [String: ARCKeyAnswer]) -> String? {
        let publicKey: PublicKey
        switch key(for: tags, keys: keys) {
        case .success(let key): publicKey = key
        case .failure(let error): return error.description
        }
        let digest = ARCSealDigest.digest(sets: sets[..<tags.instance])
        guard publicKey.isValidSignature(tags.signature, forSHA256Digest: digest) else {
            return "signature did not verify"
        }
        return nil
    }

    private func key(for tags: ARCSignatureTags, keys: [String: ARCKeyAnswer]) -> Result<PublicKey, ARCError> {
        let name = tags.keyName
        switch keys[name] ?? .noRecord {
        case .noRecord: return .failure(ARCError("no key record at \(name)"))
        case .failure(let why): return .failure(ARCError("key lookup for \(name) failed: \(why)"))
        case .record(let text):
            switch DKIMKeyCheck.publicKey(
                record: text, name: name, algorithm: tags.algorithm, minimumRSABits: minimumRSABits)
            {
            case .success(let found): return .success(found.key)
            case .failure(let failure): return .failure(ARCError(failure.reason))
            }
        }
    }
}

/// The ARC-Seal header hash, shared by the validator and the sealer.
enum ARCSealDigest {
    /// SHA-256 over the sets in order (AAR, AMS, AS each, relaxed), the last set's AS with `b=` emptied and
    /// no trailing CRLF.
    static func digest(sets: ArraySlice<ARCSet>) -> [UInt8] {
        guard let last = sets.last else { return [] }
        var fields: [HeaderField?] = []
        for set in sets {
            fields.append(set.authenticationResults)
            fields.append(set.messageSignature)
            if set.instance != last.instance { fields.append(set.seal) }
        }
        return HeaderHasher.digest(
            signedFields: fields,
            signatureField: TagList.removingValue(ofTag: "b", from: last.seal.raw),
            canonicalization: .relaxed
        )
    }
}

extension String {
    /// Parentheses would end an Authentication-Results comment early.
    func replacingParentheses() -> String {
        String(map { $0 == "(" ? "[" : $0 == ")" ? "]" : $0 })
    }
}
