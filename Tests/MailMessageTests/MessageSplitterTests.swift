import MailMessage
import NIOCore
import Testing

/// The result of splitting a whole message: header bytes, body bytes, field names.
struct SplitResult: Equatable {
    var header: [UInt8]
    var fieldNames: [String]
    var body: [UInt8]
    var sawBlankLine: Bool
}

/// Feeds the chunks through a splitter and collects what comes out.
func split(_ chunks: [ByteBuffer], limits: MailMessageLimits = .default) throws(MailMessageError) -> SplitResult {
    var splitter = MessageSplitter(limits: limits)
    var result = SplitResult(header: [], fieldNames: [], body: [], sawBlankLine: false)
    for chunk in chunks {
        switch try splitter.feed(chunk) {
        case .needMoreData:
            break
        case .header(let header, let bodyStart):
            #expect(!result.sawBlankLine, "the header is reported once")
            result.sawBlankLine = true
            result.header = header.bytes.bytes
            result.fieldNames = header.fields.map(\.name)
            result.body += bodyStart.bytes
        case .body(let body):
            #expect(result.sawBlankLine, "no body before the header")
            result.body += body.bytes
        }
    }
    if let header = try splitter.finish() {
        #expect(!result.sawBlankLine)
        result.header = header.bytes.bytes
        result.fieldNames = header.fields.map(\.name)
    }
    return result
}

@Suite("MessageSplitter")
struct MessageSplitterTests {
    @Test("one chunk: header is a slice, body start is a slice, the blank line is in neither")
    func oneChunk() throws {
        let message = buffer("From: a@b.test\r\nSubject: x\r\n\r\nBody\r\n")
        var splitter = MessageSplitter()
        guard case .header(let header, let bodyStart) = try splitter.feed(message) else {
            Issue.record("expected the header")
            return
        }
        #expect(header.bytes.text == "From: a@b.test\r\nSubject: x\r\n")
        #expect(header.fields.count == 2)
        #expect(bodyStart.text == "Body\r\n")
        #expect(header.bytes.firstByteAddress == message.firstByteAddress)
        #expect(bodyStart.firstByteAddress == message.firstByteAddress.map { $0 + 30 })
        #expect(try splitter.finish() == nil)
    }

    @Test("after the header, body chunks come back as the same buffers")
    func bodyPassThrough() throws {
        var splitter = MessageSplitter()
        _ = try splitter.feed(buffer("A: 1\r\n\r\n"))
        let chunk = buffer("body bytes\r\n")
        guard case .body(let body) = try splitter.feed(chunk) else {
            Issue.record("expected body")
            return
        }
        #expect(body.firstByteAddress == chunk.firstByteAddress)
        #expect(body == chunk)
    }

    @Test("a header that ends exactly at a chunk end gives an empty body start")
    func emptyBodyStart() throws {
        var splitter = MessageSplitter()
        guard case .header(let header, let bodyStart) = try splitter.feed(buffer("A: 1\r\n\r\n")) else {
            Issue.record("expected the header")
            return
        }
        #expect(header.fields.count == 1)
        #expect(bodyStart.readableBytes == 0)
    }

    @Test("a message that begins with CRLF has an empty header")
    func emptyHeader() throws {
        #expect(
            try split([buffer("\r\nBody: not a header\r\n")])
                == SplitResult(
                    header: [], fieldNames: [], body: Array("Body: not a header\r\n".utf8), sawBlankLine: true)
        )
        #expect(
            try split([buffer("\r"), buffer("\n"), buffer("x")])
                == SplitResult(header: [], fieldNames: [], body: [0x78], sawBlankLine: true)
        )
    }

    @Test("a message without a blank line is all header, given by finish()")
    func noBody() throws {
        let result = try split([buffer("A: 1\r\n"), buffer("B: 2\r\n")])
        #expect(
            result
                == SplitResult(
                    header: Array("A: 1\r\nB: 2\r\n".utf8), fieldNames: ["A", "B"], body: [], sawBlankLine: false))
        let noFinalCRLF = try split([buffer("A: 1\r\nB: 2")])
        #expect(noFinalCRLF.fieldNames == ["A", "B"])
        #expect(noFinalCRLF.header == Array("A: 1\r\nB: 2".utf8))
    }

    @Test("no input at all is an empty header from finish()")
    func nothing() throws {
        var splitter = MessageSplitter()
        let header = try splitter.finish()
        #expect(header?.fields.isEmpty == true)
        #expect(try splitter.finish() == nil)
    }

    @Test(
        "the blank line split across chunks in every way",
        arguments: [
            ["A: 1\r", "\n\r\nB"],
            ["A: 1\r\n", "\r\nB"],
            ["A: 1\r\n\r", "\nB"],
            ["A: 1", "\r\n\r\n", "B"],
            ["A", ": 1\r", "\n", "\r", "\n", "B"],
            ["A: 1\r\n\r\n", "B"],
        ]
    )
    func splitTerminator(parts: [String]) throws {
        let result = try split(parts.map(buffer))
        #expect(
            result == SplitResult(header: Array("A: 1\r\n".utf8), fieldNames: ["A"], body: [0x42], sawBlankLine: true))
    }

    @Test("CRLF CRLF inside the body is body")
    func laterBlankLines() throws {
        let result = try split([buffer("A: 1\r\n\r\nx\r\n\r\ny\r\n\r\n")])
        #expect(result.header == Array("A: 1\r\n".utf8))
        #expect(result.body == Array("x\r\n\r\ny\r\n\r\n".utf8))
    }

    @Test("a CR LF CR that is not followed by LF does not end the header")
    func nearMisses() throws {
        // Input that skipped normalization: the stray CR stays in the header, which then has a bad line 2.
        do {
            _ = try split([buffer("A: 1\r\n\r"), buffer("x\r\n\r\nbody")])
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .headerWithoutColon)
            #expect(error.reason.contains("line 2"))
        }
        let result = try split([buffer("A: 1\r\n"), buffer("\r"), buffer("\n")])
        #expect(result.sawBlankLine)
        #expect(result.header == Array("A: 1\r\n".utf8))
        #expect(result.body.isEmpty)
    }

    @Test("the header size limit stops gathering before copying")
    func sizeLimit() throws {
        let limits = MailMessageLimits(maxHeaderBytes: 20, maxHeaderFields: 100)
        var splitter = MessageSplitter(limits: limits)
        #expect(try splitter.feed(buffer("A: 0123456789\r\n")).isNeedMoreData)
        #expect(throws: MailMessageError.headerTooLarge) { try splitter.feed(buffer("B: 0123456789\r\n")) }
        // A header of exactly the limit is accepted, with the blank line in the same or a later chunk.
        let exact = "A: 012345678901234\r\n"  // 20 bytes
        #expect(try split([buffer(exact + "\r\nbody")], limits: limits).header == Array(exact.utf8))
        #expect(try split([buffer(exact), buffer("\r\n"), buffer("body")], limits: limits).header == Array(exact.utf8))
        #expect(throws: MailMessageError.headerTooLarge) {
            try split([buffer("A: 0123456789012345\r\n\r\n")], limits: limits)
        }
    }

    @Test("an endless header without a blank line ends in headerTooLarge, not memory growth")
    func endlessHeader() throws {
        var splitter = MessageSplitter(limits: MailMessageLimits(maxHeaderBytes: 4096, maxHeaderFields: 1000))
        let chunk = buffer(String(repeating: "X-Filler: 0123456789\r\n", count: 10))
        var thrown: MailMessageError? = nil
        for _ in 0..<1000 {
            do {
                _ = try splitter.feed(chunk)
            } catch {
                thrown = error
                break
            }
        }
        #expect(thrown?.code == .headerTooLarge)
    }

    @Test("a header error is thrown when the header completes")
    func headerError() {
        #expect(throws: MailMessageError.headerWithoutColon) { try split([buffer("A: 1\r\nbad\r\n\r\nbody")]) }
        #expect(throws: MailMessageError.continuationWithoutField) { try split([buffer(" A: 1\r\n\r\n")]) }
    }

    @Test("gathering a header over several chunks never changes the caller's buffers")
    func valueSemantics() throws {
        var splitter = MessageSplitter()
        let first = buffer("A: 1\r\n")
        let second = buffer("B: 2\r\n")
        #expect(try splitter.feed(first).isNeedMoreData)
        #expect(try splitter.feed(second).isNeedMoreData)
        guard case .header(let header, let bodyStart) = try splitter.feed(buffer("\r\nbody")) else {
            Issue.record("expected the header")
            return
        }
        #expect(header.bytes.text == "A: 1\r\nB: 2\r\n")
        #expect(header.fields.map(\.name) == ["A", "B"])
        #expect(bodyStart.text == "body")
        #expect(first.text == "A: 1\r\n")
        #expect(second.text == "B: 2\r\n")
    }

    @Test("after an error the rest passes through as body")
    func afterError() throws {
        var splitter = MessageSplitter()
        #expect(throws: MailMessageError.headerWithoutColon) { try splitter.feed(buffer("bad\r\n\r\n")) }
        guard case .body(let body) = try splitter.feed(buffer("rest")) else {
            Issue.record("expected body")
            return
        }
        #expect(body.text == "rest")
    }
}

extension MessageSplitter.Output {
    var isNeedMoreData: Bool {
        if case .needMoreData = self { return true }
        return false
    }
}
