import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The fuzzer's bytes, and a reproducible way to cut them into chunks: the first byte seeds the chunk sizes, so
/// libFuzzer explores split points as it explores content.
public struct FuzzInput {
    public let seed: UInt8
    public let bytes: [UInt8]

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        let all = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        seed = all.first ?? 0
        bytes = Array(all.dropFirst())
    }

    /// `bytes` cut into chunks of 1 to 64 bytes chosen by a small generator seeded with `seed`.
    public func chunks() -> [ByteBuffer] {
        var state = UInt32(seed) &* 2_654_435_761 &+ 1
        var result: [ByteBuffer] = []
        var index = 0
        while index < bytes.count {
            state = state &* 1_103_515_245 &+ 12345
            let length = min(Int(state >> 16) % 64 + 1, bytes.count - index)
            result.append(ByteBuffer(bytes: bytes[index..<(index + length)]))
            index += length
        }
        return result
    }

    /// `bytes` as one buffer.
    public var whole: ByteBuffer { ByteBuffer(bytes: bytes) }

    /// `bytes` as text, with invalid UTF-8 repaired (the parsers under test take strings).
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// Stops the fuzzer with a message when a differential property fails (libFuzzer records the input).
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("property failed: \(message())") }
}

/// libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): runs `callback` over the corpus and mutations,
/// taking libFuzzer's command-line flags.
@_extern(c, "LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The fuzzer's main: SwiftPM gives every executable its own entry point, so libFuzzer's `main` is not used
/// and its driver is called from here.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
}
