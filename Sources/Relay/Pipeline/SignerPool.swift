import ARC
import DKIM
import Dispatch
import Keys
import MailMessage
import NIOConcurrencyHelpers
import NIOPosix

/// Runs private-key operations on their own threads, never on an event loop: an RSA-2048 signature takes about
/// a millisecond, long enough to stall every connection of a loop.
///
/// Signers whose key lives in a signer agent (`keyReference`) are signed by the agent instead; the relay checks
/// each such signature against the public key before it is used, so a confused or replaced agent can cost a
/// retry (451) but never send a wrong signature.
public final class SignerPool: Sendable {
    private let threads: NIOThreadPool
    private let metrics: RelayMetrics
    private let agent: SignerAgentSupervisor?

    /// A pool of `threadCount` threads, started at once; `agent` signs for agent-held keys.
    public init(threadCount: Int, metrics: RelayMetrics = RelayMetrics(), agent: SignerAgentSupervisor? = nil) {
        threads = NIOThreadPool(numberOfThreads: max(1, threadCount))
        self.metrics = metrics
        self.agent = agent
        threads.start()
    }

    /// Runs a no-op on the pool: it answers when a thread is free (readiness). With an agent, also fails while
    /// the agent is down or restarting, so /readyz turns traffic away from a relay that could only answer 451.
    func ping() async throws {
        try await threads.runIfActive {}
        if let agent, !agent.isConnected { throw SignerAgentError(description: "the signer agent is not connected") }
    }

    /// Stops the threads after the operations in flight.
    public func shutdown() async throws {
        try await threads.shutdownGracefully()
    }

    /// The finished DKIM-Signature fields (CRLF included), in order.
    func signatureFields(for signatures: [(signer: DKIMSigner, prepared: PreparedSignature)]) async throws -> [String] {
        guard !signatures.isEmpty else { return [] }
        let work = signatures.map { SignatureJob(signer: $0.signer, prepared: $0.prepared) }
        metrics.signerJobQueued()
        defer { metrics.signerJobDone() }
        // Keys are chosen per key, so one message may need the agent for one signature and this process (memory or
        // a PKCS#11 token) for another.
        let local = work.indices.filter { work[$0].signer.signingKey != nil }
        guard local.count < work.count else { return try await localFields(work) }
        guard !local.isEmpty else { return try await agentFields(work) }
        async let agentSigned = agentFields(work.indices.filter { !local.contains($0) }.map { work[$0] })
        let localSigned = try await localFields(local.map { work[$0] })
        let fromAgent = try await agentSigned
        var fields = [String](repeating: "", count: work.count)
        var nextLocal = 0
        var nextAgent = 0
        for index in work.indices {
            if local.contains(index) {
                fields[index] = localSigned[nextLocal]
                nextLocal += 1
            } else {
                fields[index] = fromAgent[nextAgent]
                nextAgent += 1
            }
        }
        return fields
    }

    /// Signatures by keys this process can use, on the pool's threads. A token's signature is checked against the
    /// public key like the agent's: a confused token costs a retry, never a wrong signature.
    private func localFields(_ work: [SignatureJob]) async throws -> [String] {
        try await threads.runIfActive {
            try work.map { job in
                let signer = job.signer
                let signature: [UInt8]
                do {
                    guard let key = signer.signingKey else { throw DKIMError(.signingFailed, "no private key") }
                    signature = try key.signature(forSHA256Digest: job.prepared.digest)
                } catch {
                    throw DKIMError(.signingFailed, "signing for d=\(signer.domain) s=\(signer.selector) failed: \(error)")
                }
                if signer.key == nil, !signer.publicKey.isValidSignature(signature, forSHA256Digest: job.prepared.digest) {
                    throw DKIMError(
                        .signingFailed, "the token's signature for d=\(signer.domain) s=\(signer.selector) does not verify")
                }
                return job.prepared.field(signature: signature)
            }
        }
    }
}

extension SignerPool {
    /// Seals a message on the pool's threads. An agent-held key is signed by the agent (each signature checked
    /// against the public key by the sealer); the thread waits for it, an event loop never does.
    func seal(
        _ sealer: ARCSealer, header: MessageHeader, bodyHash: BodyHasher.Result, chainStatus: ARCChainStatus,
        authservID: String, results: String, now: Int
    ) async throws -> ARCSealOutcome {
        metrics.signerJobQueued()
        defer { metrics.signerJobDone() }
        let sign: ARCSealer.SignDigest?
        if sealer.signer.key == nil {
            guard let agent, let reference = sealer.signer.keyReference else {
                throw DKIMError(
                    .signingFailed,
                    "the key for d=\(sealer.signer.domain) is held by a signer agent, and none is configured")
            }
            let algorithm = sealer.signer.algorithm.keyAlgorithm
            sign = { digest in
                let result = NIOLockedValueBox<Result<[UInt8], any Error>?>(nil)
                let done = DispatchSemaphore(value: 0)
                Task {
                    do {
                        let signature = try await agent.sign(keyID: reference, algorithm: algorithm, digest: digest)
                        result.withLockedValue { $0 = .success(signature) }
                    } catch {
                        result.withLockedValue { $0 = .failure(error) }
                    }
                    done.signal()
                }
                done.wait()
                guard let outcome = result.withLockedValue({ $0 }) else {
                    throw DKIMError(.signingFailed, "no signature from the signer agent")
                }
                return try outcome.get()
            }
        } else {
            sign = nil
        }
        return try await threads.runIfActive {
            try sealer.seal(
                header: header, bodyHash: bodyHash, chainStatus: chainStatus, authservID: authservID,
                results: results, now: now, sign: sign)
        }
    }

    /// All signatures of a message requested from the agent at once; any failure fails the message (temporarily).
    private func agentFields(_ work: [SignatureJob]) async throws -> [String] {
        guard let agent else { throw DKIMError(.signingFailed, "keys are held by a signer agent, and none is configured") }
        return try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (index, job) in work.enumerated() {
                group.addTask {
                    let signer = job.signer
                    guard let reference = signer.keyReference else {
                        throw DKIMError(.signingFailed, "d=\(signer.domain) s=\(signer.selector) has no key")
                    }
                    let signature: [UInt8]
                    do {
                        signature = try await agent.sign(
                            keyID: reference, algorithm: signer.algorithm.keyAlgorithm, digest: job.prepared.digest)
                    } catch {
                        throw DKIMError(.signingFailed, "signing for d=\(signer.domain) s=\(signer.selector) failed: \(error)")
                    }
                    guard signer.publicKey.isValidSignature(signature, forSHA256Digest: job.prepared.digest) else {
                        throw DKIMError(
                            .signingFailed,
                            "the signer agent's signature for d=\(signer.domain) s=\(signer.selector) does not verify")
                    }
                    return (index, job.prepared.field(signature: signature))
                }
            }
            var fields = [String](repeating: "", count: work.count)
            for try await (index, field) in group { fields[index] = field }
            return fields
        }
    }
}

private struct SignatureJob: Sendable {
    var signer: DKIMSigner
    var prepared: PreparedSignature
}
