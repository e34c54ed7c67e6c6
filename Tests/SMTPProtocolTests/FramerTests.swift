import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Server framing: commands, DATA unstuffing, BDAT")
struct FramerTests {
    /// Feeds `input` in the given chunk sizes, answering DATA with 354 as a server would, and collects frames.
    static func frames(_ input: [UInt8], chunks: [Int], acceptData: Bool = true) -> [SMTPServerFramer.Frame] {
        var framer = SMTPServerFramer()
        var pending = ByteBuffer()
        var frames: [SMTPServerFramer.Frame] = []
        var offset = 0
        var sizes = chunks.makeIterator()
        func drain() {
            while let frame = framer.next(from: &pending) {
                frames.append(frame)
                if case .command(.data) = frame {
                    if acceptData { framer.startMessageData() } else { framer.rejectMessageData() }
                }
            }
        }
        while offset < input.count {
            let size = min(max(1, sizes.next() ?? input.count), input.count - offset)
            pending.writeBytes(input[offset..<offset + size])
            offset += size
            drain()
        }
        drain()
        return frames
    }

    /// Joins consecutive data frames so results compare independently of where the cuts fell.
    static func merged(_ frames: [SMTPServerFramer.Frame]) -> [SMTPServerFramer.Frame] {
        var result: [SMTPServerFramer.Frame] = []
        for frame in frames {
            if case .messageData(let data) = frame, case .messageData(var previous)? = result.last {
                previous.writeImmutableBuffer(data)
                result[result.count - 1] = .messageData(previous)
            } else if case .chunkData(let data) = frame, case .chunkData(var previous)? = result.last {
                previous.writeImmutableBuffer(data)
                result[result.count - 1] = .chunkData(previous)
            } else {
                result.append(frame)
            }
        }
        return result
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func pipelinedTransaction() {
        let input = Self.bytes(
            "EHLO client.example\r\nMAIL FROM:<a@example.com> SIZE=100\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"
                + "Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n")
        let expected: [SMTPServerFramer.Frame] = [
            .command(.ehlo("client.example")),
            .command(.mail(from: "a@example.com", parameters: [SMTPParameter("SIZE", "100")])),
            .command(.rcpt(to: "b@example.org", parameters: [])),
            .command(.data),
            .messageData(ByteBuffer(string: "Subject: x\r\n\r\n.dot\r\nbody\r\n")),
            .messageEnd,
            .command(.quit),
        ]
        #expect(Self.merged(Self.frames(input, chunks: [])) == expected)
    }

    /// The end-of-data mark and stuffed dots split at every position, against a one-shot reference.
    @Test func dataSplitAnywhere() {
        let content = "a\r\n.\r\n..\r\n.x\r\n\r\n.\r\r\nline.\r\n. \r\nlast"
        let stuffed = "a\r\n..\r\n...\r\n..x\r\n\r\n..\r\r\nline.\r\n.. \r\nlast"
        let input = Self.bytes("DATA\r\n" + stuffed + "\r\n.\r\nNOOP\r\n")
        let reference = Self.merged(Self.frames(input, chunks: []))
        guard case .messageData(let data)? = reference.dropFirst().first else {
            Issue.record("no data frame: \(reference)")
            return
        }
        #expect(String(buffer: data) == content + "\r\n")
        #expect(reference.last == .command(.noop))
        var random = SplitMix64(seed: 99)
        for cut in 1..<input.count {
            #expect(Self.merged(Self.frames(input, chunks: [cut, input.count])) == reference, "cut at \(cut)")
        }
        for _ in 0..<500 {
            let chunks = (0..<40).map { _ in 1 + Int(random.next() % 7) }
            #expect(Self.merged(Self.frames(input, chunks: chunks)) == reference, "chunks \(chunks)")
        }
    }

    @Test func emptyMessageAndRefusedData() {
        #expect(Self.frames(Self.bytes("DATA\r\n.\r\n"), chunks: []) == [.command(.data), .messageEnd])
        // A refused DATA leaves the framer reading commands.
        #expect(
            Self.frames(Self.bytes("DATA\r\nNOOP\r\n"), chunks: [], acceptData: false) == [.command(.data), .command(.noop)])
    }

    @Test(arguments: [1, 2, 7, 4096, 1 << 20])
    func bdatChunks(chunkSize: Int) {
        let payload = (0..<(3 * chunkSize + 5)).map { UInt8(truncatingIfNeeded: $0 * 31) }
        var input = Self.bytes("BDAT \(payload.count)\r\n")
        input += payload
        input += Self.bytes("BDAT 0 LAST\r\nQUIT\r\n")
        let frames = Self.merged(Self.frames(input, chunks: [chunkSize]))
        #expect(
            frames == [
                .command(.bdat(size: payload.count, last: false)), .chunkData(ByteBuffer(bytes: payload)), .chunkEnd(last: false),
                .command(.bdat(size: 0, last: true)), .chunkEnd(last: true), .command(.quit),
            ])
    }

    @Test func badLines() {
        let long = String(repeating: "x", count: 600)
        let frames = Self.frames(Self.bytes("NOOP \(long)\r\nFOO\r\n\r\nMAIL FROM:a@b\r\nNOOP\n"), chunks: [100])
        #expect(frames.count == 5)
        #expect(frames[0] == .lineTooLong)
        #expect(frames[1] == .invalidCommand(SMTPCommandError(SMTPReply(code: 500, EnhancedStatusCode(5, 5, 2), "command not recognized"))))
        if case .invalidCommand(let error) = frames[2] { #expect(error.reply.code == 500) } else { Issue.record("\(frames[2])") }
        if case .invalidCommand(let error) = frames[3] { #expect(error.reply.code == 501) } else { Issue.record("\(frames[3])") }
        #expect(frames[4] == .command(.noop))
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
