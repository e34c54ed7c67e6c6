import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Server framing: DATA content")
struct FramerDataTests {
    static func content(_ wire: String) -> [SMTPServerFramer.Frame] {
        Array(FramerHarness.merged(FramerHarness.frames("DATA\r\n" + wire)).dropFirst())
    }

    @Test func emptyMessage() {
        #expect(Self.content(".\r\nQUIT\r\n") == [.messageEnd, .command(.quit)])
    }

    @Test(arguments: [
        ("..leading\r\n.\r\n", ".leading\r\n"),
        ("...\r\n.\r\n", "..\r\n"),
        ("a.b\r\n.c\r\n\r\n.\r\n", "a.b\r\nc\r\n\r\n"),
        ("x\r\n. \r\n.\r\n", "x\r\n \r\n"),
        ("bare\nLF\n.\nstill\r\n.\r\n", "bare\nLF\n.\nstill\r\n"),
        // Only CRLF starts a line: "\n.\r\n" is content, never the end mark (SMTP smuggling).
        ("a\r\n.\n.\r\n\r\n.\r\n", "a\r\n\n.\r\n\r\n"),
        ("a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n"),
        ("CR\r.\r\n.\r\n", "CR\r.\r\n"),
        ("nul\u{0}byte\r\n.\r\n", "nul\u{0}byte\r\n"),
    ])
    func unstuffing(wire: String, expected: String) {
        #expect(Self.content(wire) == [.messageData(ByteBuffer(string: expected)), .messageEnd])
    }

    @Test func dataFramesAreSlicesOfTheInput() {
        var buffer = ByteBuffer(string: "DATA\r\nline one\r\n..dot\r\nline three\r\n.\r\n")
        let storage = buffer.withUnsafeReadableBytes {
            UInt(bitPattern: $0.baseAddress)..<UInt(bitPattern: $0.baseAddress) + UInt($0.count)
        }
        var framer = SMTPServerFramer()
        #expect(framer.next(from: &buffer) == .command(.data))
        framer.startMessageData()
        var pieces = 0
        while let frame = framer.next(from: &buffer), case .messageData(let data) = frame {
            let address = data.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            #expect(storage.contains(address))
            pieces += 1
        }
        #expect(pieces == 2)  // cut once, around the removed dot
    }

    /// The end mark and stuffed dots split at every position, one cut and two cuts, against the one-shot result.
    @Test func endMarkSplitAtEveryPosition() throws {
        let content = "a\r\n.\r\n..\r\n.x\r\n\r\n.\r\r\nline.\r\n. \r\nlast\r\n"
        let wire = Array(
            ("DATA\r\n" + String(decoding: referenceStuff(Array(content.utf8)), as: UTF8.self) + "NOOP\r\n").utf8)
        let expected: [SMTPServerFramer.Frame] = [
            .command(.data), .messageData(ByteBuffer(string: content)), .messageEnd, .command(.noop),
        ]
        #expect(FramerHarness.merged(FramerHarness.frames(wire)) == expected)
        for first in 1..<wire.count {
            #expect(
                FramerHarness.merged(FramerHarness.frames(wire, reads: [first, wire.count])) == expected,
                "cut at \(first)")
            for second in stride(from: first + 1, to: wire.count, by: 3) {
                let frames = FramerHarness.frames(wire, reads: [first, second - first, wire.count])
                #expect(FramerHarness.merged(frames) == expected, "cuts at \(first), \(second)")
            }
        }
        #expect(FramerHarness.merged(FramerHarness.frames(wire, reads: [1])) == expected)
    }

    /// Random content (dots, CR, LF, NUL, 8-bit) after DATA, random reads, against the independent reference reader.
    @Test(arguments: [1 as UInt64, 2, 3, 4])
    func randomContentAndChunkings(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        let alphabet: [UInt8] = Array("..\r\n\r\n\r\n.aZ \n".utf8) + [0, 0xFF]
        for _ in 0..<250 {
            var body = (0..<Int.random(in: 0..<120, using: &random)).map { _ in
                alphabet.randomElement(using: &random) ?? 0
            }
            body += Array("\r\n.\r\nRSET\r\n".utf8)
            let wire = Array("DATA\r\n".utf8) + body
            let (content, rest) = try #require(referenceUnstuff(body).map { ($0.content, $0.rest) })
            let oneShot = FramerHarness.merged(FramerHarness.frames(wire))
            var expected: [SMTPServerFramer.Frame] = [.command(.data)]
            if !content.isEmpty { expected.append(.messageData(ByteBuffer(bytes: content))) }
            expected.append(.messageEnd)
            #expect(Array(oneShot.prefix(expected.count)) == expected, "\(body)")
            #expect(FramerHarness.merged(FramerHarness.frames(rest)) == Array(oneShot.dropFirst(expected.count)))
            for _ in 0..<4 {
                let reads = random.chunking(total: wire.count, maximum: 8)
                #expect(
                    FramerHarness.merged(FramerHarness.frames(wire, reads: reads)) == oneShot, "\(body) in \(reads)")
            }
        }
    }

    @Test func endlessDataIsHandedOutAsItArrives() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "DATA\r\n")
        #expect(framer.next(from: &buffer) == .command(.data))
        framer.startMessageData()
        var total = 0
        for _ in 0..<1000 {
            buffer.writeString(String(repeating: "z", count: 1000) + "\r\n")
            while let frame = framer.next(from: &buffer), case .messageData(let data) = frame {
                total += data.readableBytes
            }
            #expect(buffer.readableBytes == 0)
        }
        #expect(total == 1_002_000)
        #expect(framer.mode == .messageData)
    }

    /// A ".": line start, then only "." or ".\r" so far: the framer must wait, not guess.
    @Test func undecidedDotWaits() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "DATA\r\nx\r\n.")
        #expect(framer.next(from: &buffer) == .command(.data))
        framer.startMessageData()
        #expect(framer.next(from: &buffer) == .messageData(ByteBuffer(string: "x\r\n")))
        #expect(framer.next(from: &buffer) == nil)
        buffer.writeString("\r")
        #expect(framer.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 2)
        buffer.writeString("\n")
        #expect(framer.next(from: &buffer) == .messageEnd)
        #expect(framer.mode == .command)
    }
}
