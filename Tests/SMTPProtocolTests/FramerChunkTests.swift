import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Server framing: BDAT chunks")
struct FramerChunkTests {
    @Test(arguments: [1, 2, 7, 4096, 65_536, 1 << 20])
    func chunkOfAnySizeInAnyReads(size: Int) {
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
        let wire = Array("BDAT \(size)\r\n".utf8) + payload + Array("BDAT 0 LAST\r\nQUIT\r\n".utf8)
        let expected: [SMTPServerFramer.Frame] = [
            .command(.bdat(size: size, last: false)), .chunkData(ByteBuffer(bytes: payload)), .chunkEnd(last: false),
            .command(.bdat(size: 0, last: true)), .chunkEnd(last: true), .command(.quit),
        ]
        for read in [1, 3, 1000, wire.count] where read >= size / 4096 {
            #expect(FramerHarness.merged(FramerHarness.frames(wire, reads: [read])) == expected, "reads of \(read)")
        }
    }

    @Test func payloadIsNotCommandsNorUnstuffed() {
        let payload = "MAIL FROM:<x@y>\r\n.\r\n..\r\n"
        let frames = FramerHarness.frames("BDAT \(payload.utf8.count) LAST\r\n\(payload)RSET\r\n", reads: [5])
        #expect(
            FramerHarness.merged(frames) == [
                .command(.bdat(size: payload.utf8.count, last: true)), .chunkData(ByteBuffer(string: payload)),
                .chunkEnd(last: true), .command(.rset),
            ])
    }

    @Test func chunkEndComesEvenWithoutFurtherBytes() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "BDAT 3\r\nabc")
        #expect(framer.next(from: &buffer) == .command(.bdat(size: 3, last: false)))
        #expect(framer.mode == .chunk(remaining: 3))
        #expect(framer.next(from: &buffer) == .chunkData(ByteBuffer(string: "abc")))
        #expect(framer.mode == .chunk(remaining: 0))
        #expect(framer.next(from: &buffer) == .chunkEnd(last: false))
        #expect(framer.mode == .command)
        #expect(framer.next(from: &buffer) == nil)
    }

    @Test func sizeZeroLastEndsAtOnce() {
        #expect(
            FramerHarness.frames("BDAT 0 LAST\r\n") == [.command(.bdat(size: 0, last: true)), .chunkEnd(last: true)])
    }

    @Test func hugeSizeWaitsForBytesWithoutOverflow() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "BDAT 999999999999999999\r\nxy")
        #expect(framer.next(from: &buffer) == .command(.bdat(size: 999_999_999_999_999_999, last: false)))
        #expect(framer.next(from: &buffer) == .chunkData(ByteBuffer(string: "xy")))
        #expect(framer.mode == .chunk(remaining: 999_999_999_999_999_997))
        #expect(framer.next(from: &buffer) == nil)
    }

    @Test func malformedBDATStaysInCommandMode() {
        let frames = FramerHarness.frames("BDAT x\r\nNOOP\r\n")
        guard case .invalidCommand(let error) = frames.first else {
            Issue.record("\(frames)")
            return
        }
        #expect(error.closesConnection)
        #expect(frames.last == .command(.noop))
    }
}
