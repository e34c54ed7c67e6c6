import Foundation
import Synchronization
import Testing

@testable import Keys

/// The contexts a key keeps between signatures: reused contexts must sign exactly as fresh ones, from any thread.
@Suite("Signing context reuse")
struct SigningContextPoolTests {
    @Test("reused contexts give the same signatures as a fresh key", arguments: ["rsa2048", "ed25519"])
    func reuseMatchesFresh(name: String) throws {
        let key = TestKeys.named(name)
        let pem = try key.pemRepresentation()
        for round in 0..<20 {
            let digest = SHA256.hash(Array("round \(round)".utf8))
            // A key parsed again has an empty pool, so its signature comes from a context used for nothing else.
            let fresh = try PrivateKey(pemRepresentation: pem).signature(forSHA256Digest: digest)
            #expect(try key.signature(forSHA256Digest: digest) == fresh)
        }
        #expect(key.signingContexts.idleCount >= 1)
    }

    @Test(
        "more signers at once than idle contexts are kept; every signature is valid",
        arguments: ["rsa2048", "ed25519"]
    )
    func manyThreads(name: String) throws {
        let key = try PrivateKey(pemRepresentation: try TestKeys.named(name).pemRepresentation())
        let digests = (0..<8).map { SHA256.hash(Array("message \($0)".utf8)) }
        let expected = try digests.map { try key.signature(forSHA256Digest: $0) }
        let publicKey = key.publicKey
        let threads = SigningContextPool.maximumIdle + 8
        let rounds = key.algorithm == .rsa ? 4 : 40
        let failures = Mutex(0)
        let group = DispatchGroup()
        // Threads, not tasks: the cooperative pool has only as many threads as cores, too few to exhaust the pool.
        for thread in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for round in 0..<rounds {
                    let index = (thread + round) % digests.count
                    let signature = try? key.signature(forSHA256Digest: digests[index])
                    if signature != expected[index]
                        || !publicKey.isValidSignature(signature ?? [], forSHA256Digest: digests[index])
                    {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
        }
        group.wait()
        #expect(failures.withLock { $0 } == 0)
        #expect((1...SigningContextPool.maximumIdle).contains(key.signingContexts.idleCount))
    }

    @Test("contexts beyond the idle limit are freed when they come back")
    func idleLimit() throws {
        let key = try PrivateKey.generateEd25519()
        let pool = key.signingContexts
        let depth = SigningContextPool.maximumIdle + 4
        // Nested uses hold `depth` contexts at once, as that many concurrent signers would.
        func hold(_ level: Int) throws {
            guard level < depth else { return }
            try pool.withContext { _ throws(OpenSSLError) in
                #expect(pool.idleCount == 0)
                do { try hold(level + 1) } catch { Issue.record(error) }
            }
        }
        try hold(0)
        #expect(pool.idleCount == SigningContextPool.maximumIdle)
        let digest = SHA256.hash(Array("after".utf8))
        let signature = try key.signature(forSHA256Digest: digest)
        #expect(key.publicKey.isValidSignature(signature, forSHA256Digest: digest))
        #expect(pool.idleCount == SigningContextPool.maximumIdle)
    }
}
