import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Dot-stuffing")
struct DotStufferTests {
    static func stuffed(_ chunks: [[UInt8]]) -> (wire: [UInt8], pieces: [ByteBuffer]) {
        var stuffer = DotStuffer()
        var out: [ByteBuffer] = []
        for chunk in chunks { stuffer.stuff(ByteBuffer(bytes: chunk), into: &out) }
        stuffer.finish(into: &out)
        return (out.flatMap(\.bytes), out)
    }

    @Test(arguments: [
        ("", ".\r\n"), ("a\r\n", "a\r\n.\r\n"), ("a", "a\r\n.\r\n"), ("a\r", "a\r\n.\r\n"),
        (".", "..\r\n.\r\n"), (".\r\n", "..\r\n.\r\n"), ("a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n"),
        ("x.y\r\n", "x.y\r\n.\r\n"), ("bare\n.dot\r\n", "bare\n.dot\r\n.\r\n"), ("\r\n.", "\r\n..\r\n.\r\n"),
    ])
    func stuffsAndTerminates(content: String, wire: String) {
        #expect(String(decoding: Self.stuffed([Array(content.utf8)]).wire, as: UTF8.self) == wire)
    }

    @Test func cutsOnlyBeforeLineStartDots() {
        let (_, pieces) = Self.stuffed([Array("one\r\ntwo\r\n.three\r\nfour\r\n".utf8)])
        #expect(pieces.map { String(buffer: $0) } == ["one\r\ntwo\r\n", ".", ".three\r\nfour\r\n", ".\r\n"])
    }

    @Test func reusableAfterFinish() {
        var stuffer = DotStuffer()
        var out: [ByteBuffer] = []
        stuffer.stuff(ByteBuffer(string: "a"), into: &out)
        stuffer.finish(into: &out)
        stuffer.stuff(ByteBuffer(string: ".b\r\n"), into: &out)
        stuffer.finish(into: &out)
        #expect(String(decoding: out.flatMap(\.bytes), as: UTF8.self) == "a\r\n.\r\n..b\r\n.\r\n")
    }

    /// Any content in any chunking stuffs like the reference, and the framer gives the content back.
    @Test(arguments: [21 as UInt64, 22, 23])
    func roundTripsThroughTheFramer(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let alphabet: [UInt8] = Array("..\r\n\r\na\n".utf8) + [0]
        for _ in 0..<300 {
            let content = (0..<Int.random(in: 0..<80, using: &random)).map { _ in
                alphabet.randomElement(using: &random) ?? 0
            }
            var chunks: [[UInt8]] = []
            var offset = 0
            for size in random.chunking(total: content.count, maximum: 6) where offset < content.count {
                chunks.append(Array(content[offset..<min(content.count, offset + size)]))
                offset += size
            }
            let wire = Self.stuffed(chunks).wire
            #expect(wire == referenceStuff(content), "\(content)")
            let frames = FramerHarness.merged(
                FramerHarness.frames(
                    Array("DATA\r\n".utf8) + wire, reads: random.chunking(total: wire.count + 6, maximum: 5)))
            var expected = content
            if expected.last == 0x0D {
                expected.append(0x0A)
            } else if !expected.isEmpty && !(expected.count >= 2 && expected.suffix(2) == [0x0D, 0x0A]) {
                expected += [0x0D, 0x0A]
            }
            let data: [SMTPServerFramer.Frame] = expected.isEmpty ? [] : [.messageData(ByteBuffer(bytes: expected))]
            #expect(frames == [.command(.data)] + data + [.messageEnd], "\(content)")
        }
    }
}
