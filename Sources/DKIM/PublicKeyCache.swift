import Keys
import Synchronization

/// Parsed public keys by key record data, least recently used dropped first.
///
/// Importing a key (DER decoding, building an `EVP_PKEY`) costs about as much as an Ed25519 verification, and a
/// verifier sees the same few keys over and over; measured in docs/performance.md. Bounded, so a stream of
/// distinct keys cannot grow it.
public final class PublicKeyCache: Sendable {
    /// The process-wide cache the verifier uses.
    public static let shared = PublicKeyCache(capacity: 512)

    private struct Key: Hashable {
        var data: [UInt8]
        var algorithm: KeyAlgorithm
    }

    private struct State {
        var keys: [Key: (key: PublicKey, lastUse: UInt64)] = [:]
        var clock: UInt64 = 0
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        self.capacity = max(capacity, 0)
    }

    /// The key for `data`, imported on first use. Import errors are not cached (they are cheap to repeat).
    public func publicKey(_ data: [UInt8], _ algorithm: KeyAlgorithm) throws -> PublicKey {
        let key = Key(data: data, algorithm: algorithm)
        if let hit = state.withLock({ state -> PublicKey? in
            guard let entry = state.keys[key] else { return nil }
            state.clock &+= 1
            state.keys[key]?.lastUse = state.clock
            return entry.key
        }) {
            return hit
        }
        let imported = try PublicKey(dkimKeyData: data, algorithm: algorithm)
        guard capacity > 0 else { return imported }
        state.withLock { state in
            if state.keys.count >= capacity, state.keys[key] == nil,
                let oldest = state.keys.min(by: { $0.value.lastUse < $1.value.lastUse })?.key
            {
                state.keys.removeValue(forKey: oldest)
            }
            state.clock &+= 1
            state.keys[key] = (imported, state.clock)
        }
        return imported
    }

    /// How many keys are held (for tests).
    public var count: Int { state.withLock { $0.keys.count } }
}
