import DKIMCore
import Keys
import NIOCore

/// Feeds canonical bytes into SHA-256, gathering short writes in a small block-aligned buffer, so the body is never
/// gathered.
///
/// Simple canonicalization writes a run per empty line or so, and a byte or two at a time at the end. Passed to
/// OpenSSL one by one, each write would pay `EVP_DigestUpdate`'s dispatch and SHA-256's partial-block copy, and
/// each 64-byte block would be compressed by its own call; gathered here, OpenSSL sees whole multiples of 64
/// bytes. Long writes (relaxed canonicalization gathers its output itself) go to OpenSSL as they are. (A copy, not
/// a class reference, shares the buffer, as `SHA256` itself is shared.)
struct SHA256Sink: CanonicalizationSink, @unchecked Sendable {
    /// Bytes gathered before they are hashed; a multiple of the SHA-256 block size.
    static let bufferCapacity = 4096

    private struct State {
        let hasher: SHA256
        var used: Int
    }

    private let buffer: ManagedBuffer<State, UInt8>

    init(hasher: SHA256 = SHA256()) {
        buffer = ManagedBuffer<State, UInt8>.create(minimumCapacity: Self.bufferCapacity) { _ in
            State(hasher: hasher, used: 0)
        }
    }

    /// Writes at least this long skip the buffer: copying them would cost more than OpenSSL's own handling of the
    /// partial blocks at their ends. Relaxed canonicalization writes whole staging buffers of about 4 KiB.
    static let directThreshold = 512

    @inline(__always)
    mutating func write(_ bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        if count >= Self.directThreshold {
            writeDirect(bytes)
            return
        }
        let fits = buffer.withUnsafeMutablePointers { state, storage -> Bool in
            let used = state.pointee.used
            guard count <= Self.bufferCapacity &- used else { return false }
            if count > 0 {
                (storage + used).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: count)
            }
            state.pointee.used = used &+ count
            return true
        }
        if !fits { writeOverflowing(bytes) }
    }

    /// Hashes what is buffered, then `bytes` straight from the caller's memory.
    private func writeDirect(_ bytes: UnsafeRawBufferPointer) {
        buffer.withUnsafeMutablePointers { state, storage in
            let hasher = state.pointee.hasher
            if state.pointee.used > 0 {
                hasher.update(UnsafeRawBufferPointer(start: storage, count: state.pointee.used))
                state.pointee.used = 0
            }
            hasher.update(bytes)
        }
    }

    /// Fills and hashes the buffer and keeps the rest of `bytes`.
    private func writeOverflowing(_ bytes: UnsafeRawBufferPointer) {
        buffer.withUnsafeMutablePointers { state, storage in
            let hasher = state.pointee.hasher
            let fill = Self.bufferCapacity - state.pointee.used
            UnsafeMutableRawPointer(storage + state.pointee.used).copyMemory(from: bytes.baseAddress!, byteCount: fill)
            hasher.update(UnsafeRawBufferPointer(start: storage, count: Self.bufferCapacity))
            // Shorter than `directThreshold`, so the rest fits.
            let rest = UnsafeRawBufferPointer(rebasing: bytes[fill...])
            if let base = rest.baseAddress, rest.count > 0 {
                UnsafeMutableRawPointer(storage).copyMemory(from: base, byteCount: rest.count)
            }
            state.pointee.used = rest.count
        }
    }

    /// Hashes what is buffered and returns the digest of everything written; the sink then starts over.
    func finalize() -> [UInt8] {
        buffer.withUnsafeMutablePointers { state, storage in
            state.pointee.hasher.update(UnsafeRawBufferPointer(start: storage, count: state.pointee.used))
            state.pointee.used = 0
            return state.pointee.hasher.finalize()
        }
    }
}

/// Canonicalizes and hashes a message body chunk by chunk (RFC 6376 §3.7, `bh=`).
public struct BodyHasher: Sendable {
    /// What the hash covers: the body canonicalization, an optional `l=` limit, and the digest (SHA-1 only to
    /// verify rsa-sha1).
    public struct Key: Hashable, Sendable {
        public var canonicalization: Canonicalization
        public var lengthLimit: Int?
        public var digest: DigestAlgorithm

        public init(canonicalization: Canonicalization, lengthLimit: Int? = nil, digest: DigestAlgorithm = .sha256) {
            self.canonicalization = canonicalization
            self.lengthLimit = lengthLimit
            self.digest = digest
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
        self.sink = SHA256Sink(hasher: SHA256(key.digest))
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
        return Result(hash: sink.finalize(), length: canonicalizer.canonicalLength)
    }
}

/// One body hasher per distinct (canonicalization, l=) pair, so dual signing and
/// verifying several signatures still read the body once per pair.
public struct BodyHasherSet: Sendable {
    private var hashers: [BodyHasher]

    public init(keys: some Sequence<BodyHasher.Key>) {
        // A message needs one to a few keys: a linear look costs less than building a set per message.
        self.hashers = []
        for key in keys where !hashers.contains(where: { $0.key == key }) {
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
