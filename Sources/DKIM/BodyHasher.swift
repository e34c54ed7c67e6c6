import DKIMCore
import Keys
import NIOCore

/// Feeds canonical bytes straight into SHA-256, so the body is never gathered.
struct SHA256Sink: CanonicalizationSink {
    let hasher: SHA256

    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bytes)
    }
}

/// Canonicalizes and hashes a message body chunk by chunk (RFC 6376 §3.7, `bh=`).
public struct BodyHasher: Sendable {
    /// What the hash covers: the body canonicalization and an optional `l=` limit.
    public struct Key: Hashable, Sendable {
        public var canonicalization: Canonicalization
        public var lengthLimit: Int?

        public init(canonicalization: Canonicalization, lengthLimit: Int? = nil) {
            self.canonicalization = canonicalization
            self.lengthLimit = lengthLimit
        }
    }

    /// The finished body hash.
    public struct Result: Sendable, Hashable {
        public var hash: [UInt8]
        /// Canonical body bytes covered by the hash (the value an `l=` tag would carry).
        public var length: Int
    }

    public let key: Key
    private var canonicalizer: BodyCanonicalizer
    private var sink: SHA256Sink

    public init(_ key: Key) {
        self.key = key
        self.canonicalizer = BodyCanonicalizer(key.canonicalization, lengthLimit: key.lengthLimit)
        self.sink = SHA256Sink(hasher: SHA256())
    }

    public init(_ canonicalization: Canonicalization, lengthLimit: Int? = nil) {
        self.init(Key(canonicalization: canonicalization, lengthLimit: lengthLimit))
    }

    /// Hashes the next piece of the body; chunk boundaries may fall anywhere.
    public mutating func update(_ chunk: ByteBuffer) {
        canonicalizer.update(chunk, into: &sink)
    }

    /// Ends the body and returns its hash; the hasher must not be used afterwards.
    public mutating func finalize() -> Result {
        canonicalizer.finish(into: &sink)
        return Result(hash: sink.hasher.finalize(), length: canonicalizer.canonicalLength)
    }
}

/// One body hasher per distinct (canonicalization, l=) pair, so dual signing and
/// verifying several signatures still read the body once per pair.
public struct BodyHasherSet: Sendable {
    private var hashers: [BodyHasher]

    public init(keys: some Sequence<BodyHasher.Key>) {
        var seen = Set<BodyHasher.Key>()
        self.hashers = []
        for key in keys where seen.insert(key).inserted {
            hashers.append(BodyHasher(key))
        }
    }

    public mutating func update(_ chunk: ByteBuffer) {
        for index in hashers.indices {
            hashers[index].update(chunk)
        }
    }

    public mutating func finalize() -> [BodyHasher.Key: BodyHasher.Result] {
        var results: [BodyHasher.Key: BodyHasher.Result] = [:]
        for index in hashers.indices {
            results[hashers[index].key] = hashers[index].finalize()
        }
        return results
    }
}
