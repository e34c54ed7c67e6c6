/// Receives canonical bytes: a hasher in production, an array in tests.
public protocol CanonicalizationSink {
    /// Appends `bytes`; the pointer is only valid for the duration of the call.
    mutating func write(_ bytes: UnsafeRawBufferPointer)
}

/// Collects canonical bytes in memory, for tests and for small fields.
public struct ByteArraySink: CanonicalizationSink, Sendable {
    /// Everything written so far.
    public var bytes: [UInt8] = []

    /// An empty sink.
    public init() {}

    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        self.bytes.append(contentsOf: bytes)
    }
}

extension CanonicalizationSink {
    /// Writes a short constant such as CRLF or a single space.
    @inlinable
    mutating func write(staticBytes: StaticString) {
        staticBytes.withUTF8Buffer { write(UnsafeRawBufferPointer($0)) }
    }
}
