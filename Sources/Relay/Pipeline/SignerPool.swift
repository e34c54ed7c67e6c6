import DKIM
import Keys
import NIOPosix

/// Runs private-key operations on their own threads, never on an event loop: an RSA-2048 signature takes about
/// a millisecond, long enough to stall every connection of a loop.
public final class SignerPool: Sendable {
    private let threads: NIOThreadPool
    private let metrics: RelayMetrics

    /// A pool of `threadCount` threads, started at once.
    public init(threadCount: Int, metrics: RelayMetrics = RelayMetrics()) {
        threads = NIOThreadPool(numberOfThreads: max(1, threadCount))
        self.metrics = metrics
        threads.start()
    }

    /// Runs a no-op on the pool: it answers when a thread is free (readiness).
    func ping() async throws {
        try await threads.runIfActive {}
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
        return try await threads.runIfActive {
            try work.map { job in
                let signature: [UInt8]
                do {
                    signature = try job.signer.key.signature(forSHA256Digest: job.prepared.digest)
                } catch {
                    throw DKIMError(.signingFailed, "signing for d=\(job.signer.domain) s=\(job.signer.selector) failed: \(error)")
                }
                return job.prepared.field(signature: signature)
            }
        }
    }
}

private struct SignatureJob: Sendable {
    var signer: DKIMSigner
    var prepared: PreparedSignature
}
