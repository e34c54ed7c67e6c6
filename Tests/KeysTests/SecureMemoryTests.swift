import Testing

@testable import Keys

@Suite("Zeroing helpers")
struct SecureMemoryTests {
    @Test("SecureMemory.zero clears every byte")
    func zero() {
        var bytes = [UInt8](repeating: 0xA5, count: 1000)
        bytes.withUnsafeMutableBytes { SecureMemory.zero($0) }
        #expect(bytes.allSatisfy { $0 == 0 })
        SecureMemory.zero(UnsafeMutableRawBufferPointer(start: nil, count: 0))
    }

    @Test("SecureBuffer keeps its contents across growth")
    func growth() {
        let buffer = SecureBuffer(capacity: 4)
        buffer.spare.copyBytes(from: [1, 2, 3] as [UInt8])
        buffer.didAppend(3)
        buffer.grow(to: 100)
        #expect(buffer.storage.count == 100)
        buffer.spare.copyBytes(from: [4, 5] as [UInt8])
        buffer.didAppend(2)
        #expect(Array(buffer.bytes) == [1, 2, 3, 4, 5])
        buffer.didAppend(1000)  // clamped to the capacity
        #expect(buffer.count == 100)
    }

    @Test("KeyFile reads files larger than its first buffer")
    func largeFile() throws {
        let directory = try TemporaryDirectory()
        let content = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let file = try directory.write("big.bin", content)
        let buffer = try KeyFile.contents(of: file)
        #expect(Array(buffer.bytes) == content)
    }
}
