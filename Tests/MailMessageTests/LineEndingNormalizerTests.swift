import MailMessage
import NIOCore
import Testing

@Suite("LineEndingNormalizer")
struct LineEndingNormalizerTests {
    /// Normalizes the chunks as one stream, finish() included, and returns the concatenated output.
    static func normalize(_ chunks: [ByteBuffer]) throws -> [UInt8] {
        var normalizer = LineEndingNormalizer()
        var output: [UInt8] = []
        for chunk in chunks {
            output += try normalizer.normalize(chunk).bytes
        }
        if let tail = normalizer.finish() { output += tail.bytes }
        return output
    }

    static func normalize(_ text: String) throws -> String {
        String(decoding: try normalize([buffer(text)]), as: UTF8.self)
    }

    @Test(
        "bare LF and bare CR become CRLF, CRLF stays",
        arguments: [
            ("a\r\nb\r\n", "a\r\nb\r\n"),
            ("a\nb\n", "a\r\nb\r\n"),
            ("a\rb\r", "a\r\nb\r\n"),
            ("\n", "\r\n"),
            ("\r", "\r\n"),
            ("\n\n", "\r\n\r\n"),
            ("\r\r", "\r\n\r\n"),
            ("\n\r", "\r\n\r\n"),
            ("\r\r\n", "\r\n\r\n"),
            ("a\r\n\nb", "a\r\n\r\nb"),
            ("no line end", "no line end"),
            ("", ""),
            ("x\r\n\r\n\r\n", "x\r\n\r\n\r\n"),
            ("tab\there\n", "tab\there\r\n"),
            ("ü\rü\nü", "ü\r\nü\r\nü"),
        ]
    )
    func oneChunk(input: String, expected: String) throws {
        #expect(try Self.normalize(input) == expected)
    }

    @Test("a chunk that needs no change comes back as the same slice")
    func unchangedIsSameSlice() throws {
        var normalizer = LineEndingNormalizer()
        var input = buffer("xxHeader: v\r\n\r\nbody line\r\n")
        input.moveReaderIndex(forwardBy: 2)
        let output = try normalizer.normalize(input)
        #expect(output == input)
        #expect(output.firstByteAddress == input.firstByteAddress)
        #expect(output.readableBytes == input.readableBytes)
        #expect(normalizer.finish() == nil)
    }

    @Test("a chunk ending in CR is passed on unchanged; a following LF completes it without doubling")
    func crlfSplitAcrossChunks() throws {
        var normalizer = LineEndingNormalizer()
        let first = buffer("line one\r")
        let second = buffer("\nline two\r\n")
        let out1 = try normalizer.normalize(first)
        let out2 = try normalizer.normalize(second)
        #expect(out1.firstByteAddress == first.firstByteAddress)
        #expect(out2.firstByteAddress == second.firstByteAddress)
        #expect((out1.bytes + out2.bytes) == Array("line one\r\nline two\r\n".utf8))
        #expect(normalizer.finish() == nil)
    }

    @Test("a CR at a chunk end followed by other text gets its LF at the start of the next output")
    func bareCRAtChunkEnd() throws {
        #expect(try Self.normalize([buffer("a\r"), buffer("b")]) == Array("a\r\nb".utf8))
        #expect(try Self.normalize([buffer("a\r"), buffer("\r"), buffer("\n")]) == Array("a\r\n\r\n".utf8))
        #expect(try Self.normalize([buffer("a\r"), ByteBuffer(), buffer("\n")]) == Array("a\r\n".utf8))
    }

    @Test("finish() returns the LF of a final bare CR, once")
    func finish() throws {
        var normalizer = LineEndingNormalizer()
        _ = try normalizer.normalize(buffer("end\r"))
        #expect(normalizer.finish()?.text == "\n")
        #expect(normalizer.finish() == nil)
    }

    @Test("an empty chunk changes nothing")
    func emptyChunk() throws {
        var normalizer = LineEndingNormalizer()
        #expect(try normalizer.normalize(ByteBuffer()).readableBytes == 0)
        #expect(normalizer.finish() == nil)
    }

    @Test("NUL is refused with its offset in the stream")
    func nul() throws {
        var normalizer = LineEndingNormalizer()
        _ = try normalizer.normalize(buffer("0123456789"))
        do {
            _ = try normalizer.normalize(buffer("ab\u{0}"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .nulByte)
            #expect(error.reason.contains("offset 12"))
        }
    }

    @Test("NUL after a fix is still found")
    func nulAfterFix() {
        #expect(throws: MailMessageError.nulByte) { try Self.normalize("a\nb\rc\u{0}") }
    }

    @Test("a long chunk with a single bare LF near the end is fixed exactly there")
    func longChunk() throws {
        let text = String(repeating: "0123456789abcdef", count: 1000) + "\n" + String(repeating: "z\r\n", count: 10)
        let expected =
            String(repeating: "0123456789abcdef", count: 1000) + "\r\n" + String(repeating: "z\r\n", count: 10)
        #expect(try Self.normalize(text) == expected)
    }
}
