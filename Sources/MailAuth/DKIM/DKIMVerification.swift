import DKIM
import MailMessage

/// DKIM verification with key records from DNS: resolves the keys a message's signatures name (concurrently,
/// a bounded number at a time), then runs the pure `DKIMVerifier` on the answers.
public struct DKIMVerification: Sendable {
    /// The checks and limits (`maximumSignatures`, `acceptSHA1`, RSA sizes ...); its own key lookup is replaced
    /// by the resolver's answers.
    public var verifier: DKIMVerifier
    public var resolver: any DNSResolver
    /// How many key lookups run at once for one message.
    public var concurrentLookups: Int

    public init(resolver: any DNSResolver, verifier: DKIMVerifier? = nil, concurrentLookups: Int = 4) {
        self.resolver = resolver
        self.verifier = verifier ?? DKIMVerifier(keyLookup: { _ in .noRecord })
        self.concurrentLookups = max(1, concurrentLookups)
    }

    /// One result per DKIM-Signature field, top to bottom; empty when the message has none.
    public func verify(_ message: WholeMessage, now: Int) async -> [DKIMVerificationResult] {
        let plan = verifier.prepare(message.header, now: now)
        // The body is hashed while the keys are looked up.
        async let answers = resolveKeys(plan.keyNames)
        var hashers = BodyHasherSet(keys: plan.bodyHasherKeys)
        hashers.update(message.body)
        let bodyHashes = hashers.finalize()
        return finish(plan, bodyHashes: bodyHashes, answers: await answers)
    }

    /// The streaming form: the caller prepared the plan at the end of the header and hashed the body itself.
    public func finish(
        _ plan: DKIMVerificationPlan, bodyHashes: [BodyHasher.Key: BodyHasher.Result]
    ) async -> [DKIMVerificationResult] {
        finish(plan, bodyHashes: bodyHashes, answers: await resolveKeys(plan.keyNames))
    }

    private func finish(
        _ plan: DKIMVerificationPlan, bodyHashes: [BodyHasher.Key: BodyHasher.Result],
        answers: [String: DKIMKeyLookupResult]
    ) -> [DKIMVerificationResult] {
        var resolved = verifier
        // DNS names compare without case: `s=Sel` and `s=sel` share one answer.
        resolved.keyLookup = { name in answers[name.lowercased()] ?? .temporaryFailure("not looked up") }
        return resolved.finish(plan, bodyHashes: bodyHashes)
    }

    /// Looks up every name, at most `concurrentLookups` at a time; the answers are keyed by the lower-cased name.
    public func resolveKeys(_ names: [String]) async -> [String: DKIMKeyLookupResult] {
        let resolver = self.resolver
        return await withTaskGroup(of: (String, DKIMKeyLookupResult).self) { group in
            var results: [String: DKIMKeyLookupResult] = [:]
            var pending = names[...]
            var running = 0
            while running < concurrentLookups, let name = pending.popFirst() {
                group.addTask { (name, await Self.lookup(name, resolver)) }
                running += 1
            }
            while let (name, answer) = await group.next() {
                results[name.lowercased()] = answer
                if let next = pending.popFirst() {
                    group.addTask { (next, await Self.lookup(next, resolver)) }
                }
            }
            return results
        }
    }

    /// Maps DNS outcomes to the verifier's: no record is permanent, no answer is temporary.
    static func lookup(_ name: String, _ resolver: any DNSResolver) async -> DKIMKeyLookupResult {
        do {
            switch try await resolver.txt(name) {
            case .records(let records): return .records(records)
            case .noData, .nameError: return .noRecord
            }
        } catch {
            switch error.kind {
            case .invalidName: return .permanentFailure("\(error)")
            case .timeout, .serverFailure: return .temporaryFailure("\(error)")
            }
        }
    }
}
