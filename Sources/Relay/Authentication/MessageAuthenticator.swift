import ARC
import DKIM
import Foundation
import MailAuth
import MailMessage
import NIOConcurrencyHelpers
import NIOCore

/// Inbound verification for the relay: DKIM, SPF, DMARC and ARC over the resolver of `dns:`, started as early as
/// the message allows (SPF at MAIL FROM, key lookups when the header is complete) and collected at the end of data
/// within `authentication.time_budget`.
struct MessageAuthenticator: Sendable {
    let resolver: any DNSResolver
    let settings: RelayConfiguration.Authentication
    /// The `%{r}` of SPF and the default authserv-id.
    let hostname: String
    let sealing: SealingPolicy

    /// The authserv-id of this relay's Authentication-Results field.
    var authservID: String { settings.authservID ?? hostname }

    /// Whether anything is verified at all: results are written, or some message may be sealed.
    var isActive: Bool { settings.addResults || !sealing.isEmpty }

    /// RFC 8601 §2.2: the authserv-id is a `value`; written as a token (usually a host name) it may hold no
    /// space, control, `;`, parenthesis, quote or backslash.
    static func isValidAuthservID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 255
            && id.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && !Self.authservIDExcluded.contains($0) }
    }

    private static let authservIDExcluded = Set("();\"\\".utf8)

    /// SPF for MAIL FROM, run while the rest of the transaction arrives; nil without a client address.
    /// `executor`: the session's event loop, where the checks run (nil: Swift's global pool).
    func startSPF(
        clientAddress: String?, helo: String?, mailFrom: String, on executor: EventLoopTaskExecutor? = nil
    ) -> Task<SPFResult, Never>? {
        guard let clientAddress, let ip = IPAddress(clientAddress) else { return nil }
        let verifier = SPFVerifier(resolver: resolver, receiver: hostname)
        let heloName = helo ?? "unknown"
        return Task(executorPreference: executor) {
            await verifier.checkMailFrom(clientIP: ip, mailFrom: mailFrom, helo: heloName)
        }
    }

    /// Reads the header's signatures and ARC chain and starts their key lookups.
    func begin(
        header: MessageHeader, now: Int, spf: Task<SPFResult, Never>?, seal: SealingPolicy.Match?,
        on executor: EventLoopTaskExecutor? = nil
    )
        -> MessageAuthentication
    {
        let verifier = DKIMVerifier(maximumSignatures: settings.maxSignatures, keyLookup: { _ in .noRecord })
        let plan = verifier.prepare(header, now: now)
        let verification = DKIMVerification(resolver: resolver, verifier: verifier)
        let names = plan.keyNames
        let dkimKeys = Task(executorPreference: executor) { await verification.resolveKeys(names) }
        let chain = ARCChain(header: header)
        let validator = ARCValidator()
        let resolver = self.resolver
        let arcKeys = Task(executorPreference: executor) { await validator.lookUpKeys(for: chain, resolver: resolver) }
        var hasherKeys = plan.bodyHasherKeys + validator.bodyHasherKeys(for: chain)
        if seal != nil { hasherKeys.append(ARCSealer.bodyHasherKey) }
        return MessageAuthentication(
            authenticator: self, header: header, verifier: verifier, plan: plan, dkimKeys: dkimKeys, chain: chain,
            arcKeys: arcKeys, spf: spf, seal: seal, bodyHasherKeys: hasherKeys, executor: executor)
    }
}

/// What verification came to for one message.
struct AuthenticationOutcome: Sendable {
    /// This hop's results, in the order written (dkim..., spf, dmarc, arc).
    var results: AuthenticationResults
    /// The incoming chain's validation (cv of a new seal).
    var arc: ARCValidationResult
    /// The ARC keys could not all be looked up (DNS failure or the time budget): a seal would record a failure
    /// that is only temporary, so none is added.
    var arcTemporaryFailure: Bool
}

/// One message's checks in flight, from the end of its header to the end of data.
struct MessageAuthentication: Sendable {
    let authenticator: MessageAuthenticator
    let header: MessageHeader
    let verifier: DKIMVerifier
    let plan: DKIMVerificationPlan
    let dkimKeys: Task<[String: DKIMKeyLookupResult], Never>
    let chain: ARCChain
    let arcKeys: Task<[String: ARCKeyAnswer], Never>
    let spf: Task<SPFResult, Never>?
    /// The sealing rule that matched, if any.
    let seal: SealingPolicy.Match?
    /// Body hashes the checks (and a seal) need, added to the message's one `BodyHasherSet`.
    let bodyHasherKeys: [BodyHasher.Key]
    /// The session's event loop: the lookups, the waits for them and their deadline's timer run there.
    let executor: EventLoopTaskExecutor?

    /// Collects every check; what is not answered by `deadline` is a temperror (a DNS problem never holds the
    /// transaction past the budget).
    func finish(
        bodyHashes: [BodyHasher.Key: BodyHasher.Result], fromDomain: String?, deadline: ContinuousClock.Instant
    ) async -> AuthenticationOutcome {
        let budget = "DNS answers did not arrive within the time budget"
        var results: [AuthenticationResult] = []

        // DKIM: names without an answer by the deadline are temporary failures.
        let dkimAnswers = await Deadline.value(of: dkimKeys, by: deadline, on: executor) ?? [:]
        var resolved = verifier
        resolved.keyLookup = { name in dkimAnswers[name.lowercased()] ?? .temporaryFailure(budget) }
        let dkim = resolved.finish(plan, bodyHashes: bodyHashes)
        if dkim.isEmpty {
            results.append(AuthenticationResult(method: "dkim", result: "none"))
        }
        for result in dkim {
            var properties: [AuthenticationProperty] = []
            if let domain = result.domain { properties.append(AuthenticationProperty("header", "d", domain)) }
            if let selector = result.selector { properties.append(AuthenticationProperty("header", "s", selector)) }
            if let algorithm = result.algorithm { properties.append(AuthenticationProperty("header", "a", algorithm)) }
            results.append(
                AuthenticationResult(
                    method: "dkim", result: result.status.rawValue, reason: result.reason.isEmpty ? nil : result.reason,
                    properties: properties))
        }

        // SPF (started at MAIL FROM).
        var spfOutcome: DMARCInput.SPF?
        if let spf {
            if let result = await Deadline.value(of: spf, by: deadline, on: executor) {
                let property =
                    result.identity == .mailfrom
                    ? AuthenticationProperty("smtp", "mailfrom", result.sender)
                    : AuthenticationProperty("smtp", "helo", result.domain)
                results.append(
                    AuthenticationResult(
                        method: "spf", result: result.status.rawValue, comments: [result.reason],
                        properties: [property]))
                spfOutcome = DMARCInput.SPF(domain: result.domain, result: result.status.rawValue)
            } else {
                results.append(AuthenticationResult(method: "spf", result: "temperror", reason: budget))
                spfOutcome = DMARCInput.SPF(domain: "", result: "temperror")
            }
        }

        // DMARC over the results above.
        if let fromDomain {
            let input = DMARCInput(
                fromDomain: fromDomain,
                dkim: dkim.compactMap { result in
                    result.domain.map { DMARCInput.DKIM(domain: $0, result: result.status.rawValue) }
                },
                spf: spfOutcome)
            let evaluator = DMARCEvaluator(resolver: authenticator.resolver)
            let task = Task(executorPreference: executor) { await evaluator.evaluate(input) }
            if let dmarc = await Deadline.value(of: task, by: deadline, on: executor) {
                results.append(dmarc.authenticationResult)
            } else {
                results.append(
                    AuthenticationResult(
                        method: "dmarc", result: "temperror", reason: budget,
                        properties: [AuthenticationProperty("header", "from", fromDomain)]))
            }
        }

        // ARC: the chain as received.
        let arcAnswers = await Deadline.value(of: arcKeys, by: deadline, on: executor)
        let validator = ARCValidator()
        var keys = arcAnswers ?? [:]
        if arcAnswers == nil {
            for name in validator.keyNames(for: chain) { keys[name] = .failure(budget) }
        }
        let temporary = keys.values.contains { if case .failure = $0 { true } else { false } }
        let arc = validator.validate(chain: chain, header: header, bodyHashes: bodyHashes, keys: keys)
        var arcEntry = AuthenticationResult(method: "arc", result: arc.status.rawValue)
        switch arc.status {
        case .none: break
        case .pass:
            arcEntry.comments = ["i=\(arc.instance)" + (arc.oldestPass.map { " oldest-pass=\($0)" } ?? "")]
        case .fail:
            arcEntry.comments = [(arc.instance > 0 ? "i=\(arc.instance) " : "") + arc.reason]
        }
        results.append(arcEntry)

        return AuthenticationOutcome(
            results: AuthenticationResults(authservID: authenticator.authservID, results: results), arc: arc,
            arcTemporaryFailure: temporary && arc.status == .fail)
    }
}

/// Waiting for a task's value, but no longer than a deadline.
enum Deadline {
    /// The task's value, or nil when `deadline` comes first; the task itself runs on (its own DNS timeouts end it).
    /// With `executor`, the deadline is a timer of its event loop and the wait for the value runs there: no task
    /// and no wake-up on Swift's global pool, and no Dispatch timer, per call.
    static func value<T: Sendable>(
        of task: Task<T, Never>, by deadline: ContinuousClock.Instant, on executor: EventLoopTaskExecutor? = nil
    ) async -> T? {
        let once = NIOLockedValueBox<CheckedContinuation<T?, Never>?>(nil)
        return await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            once.withLockedValue { $0 = continuation }
            @Sendable func resume(_ value: T?) {
                let waiting = once.withLockedValue { current -> CheckedContinuation<T?, Never>? in
                    defer { current = nil }
                    return current
                }
                waiting?.resume(returning: value)
            }
            if let executor {
                let left = TimeAmount(ContinuousClock.now.duration(to: deadline))
                let expiry = executor.eventLoop.scheduleTask(in: left) { resume(nil) }
                Task(executorPreference: executor) {
                    let value = await task.value
                    resume(value)
                    expiry.cancel()
                }
                return
            }
            let timer = NIOLockedValueBox<Task<Void, Never>?>(nil)
            timer.withLockedValue {
                $0 = Task {
                    try? await Task.sleep(until: deadline, clock: .continuous)
                    resume(nil)
                }
            }
            Task {
                let value = await task.value
                resume(value)
                timer.withLockedValue { $0?.cancel() }
            }
        }
    }
}
