import NIOCore
import Testing

@testable import SMTPProtocol

@Suite("Server framing: command lines")
struct FramerCommandTests {
    @Test func pipelinedTransactionWaitsAtDATA() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(
            string:
                "MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\nSubject: x\r\n"
        )
        var frames: [SMTPServerFramer.Frame] = []
        while let frame = framer.next(from: &buffer) { frames.append(frame) }
        #expect(
            frames == [
                .command(.mail(from: "a@example.com", parameters: [])),
                .command(.rcpt(to: "b@example.org", parameters: [])),
                .command(.rcpt(to: "c@example.org", parameters: [])), .command(.data),
            ])
        #expect(framer.mode == .awaitingDataDecision)
        #expect(String(buffer: buffer) == "Subject: x\r\n")  // nothing consumed while waiting
        #expect(framer.next(from: &buffer) == nil)
        framer.startMessageData()
        #expect(framer.next(from: &buffer) == .messageData(ByteBuffer(string: "Subject: x\r\n")))
    }

    @Test func refusedDataGoesBackToCommands() {
        #expect(FramerHarness.frames("DATA\r\nNOOP\r\n", acceptData: false) == [.command(.data), .command(.noop)])
    }

    @Test func overlongLineIsSkippedThenCommandsContinue() {
        let long = "NOOP " + String(repeating: "x", count: 600) + "\r\nQUIT\r\n"
        for read in [1, 7, 100, 511, 512, 513, long.utf8.count] {
            #expect(FramerHarness.frames(long, reads: [read]) == [.lineTooLong, .command(.quit)], "reads of \(read)")
        }
    }

    @Test func lineLengthLimitIncludesTheLineEnding() {
        let exact = "NOOP " + String(repeating: "x", count: 505) + "\r\n"  // 512 octets
        #expect(FramerHarness.frames(exact) == [.command(.noop)])
        let over = "NOOP " + String(repeating: "x", count: 506) + "\r\n"
        #expect(FramerHarness.frames(over) == [.lineTooLong])
        #expect(FramerHarness.frames(over, reads: [1]) == [.lineTooLong])
    }

    @Test func endlessLineCostsNoMemory() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer()
        var tooLong = 0
        for _ in 0..<1000 {
            buffer.writeString(String(repeating: "y", count: 1000))
            while let frame = framer.next(from: &buffer) {
                if frame == .lineTooLong { tooLong += 1 }
            }
            #expect(buffer.readableBytes == 0)
        }
        #expect(tooLong == 1)
        buffer.writeString("\r\nRSET\r\n")
        #expect(framer.next(from: &buffer) == .command(.rset))
    }

    @Test func bareLFEndsACommandLine() {
        #expect(FramerHarness.frames("NOOP\nRSET\r\nQUIT\n") == [.command(.noop), .command(.rset), .command(.quit)])
    }

    @Test func garbageAndEmptyLines() {
        let frames = FramerHarness.frames("\r\nFOO bar\r\n\u{0}\r\nMAIL FROM:a@b\r\nNOOP\r\n", reads: [3])
        #expect(frames.count == 5)
        for frame in frames.prefix(3) {
            guard case .invalidCommand(let error) = frame else {
                Issue.record("\(frame)")
                continue
            }
            #expect(error.reply.code == 500)
        }
        guard case .invalidCommand(let error) = frames[3] else {
            Issue.record("\(frames[3])")
            return
        }
        #expect(error.reply.code == 501)
        #expect(frames[4] == .command(.noop))
    }

    @Test func smtpUTF8AllowsLongerLinesAndUTF8Recipients() {
        let recipient = "RCPT TO:<" + String(repeating: "ü", count: 300) + "@bücher.example>\r\n"
        let plain = FramerHarness.frames("MAIL FROM:<a@b>\r\n" + recipient)
        #expect(plain.last == .lineTooLong)
        let utf8 = FramerHarness.frames("MAIL FROM:<a@b> SMTPUTF8\r\n" + recipient + "RSET\r\n" + recipient)
        #expect(utf8.count == 4)
        #expect(utf8[1] == .command(.rcpt(to: String(repeating: "ü", count: 300) + "@bücher.example", parameters: [])))
        #expect(utf8[3] == .lineTooLong)  // RSET ended the SMTPUTF8 transaction
        var framer = SMTPServerFramer()
        framer.isSMTPUTF8 = true
        var buffer = ByteBuffer(string: "RCPT TO:<ü@b>\r\n")
        #expect(framer.next(from: &buffer) == .command(.rcpt(to: "ü@b", parameters: [])))
    }

    @Test func utf8RecipientWithoutSMTPUTF8IsRefused() {
        let frames = FramerHarness.frames("MAIL FROM:<a@b>\r\nRCPT TO:<ü@b>\r\n")
        guard case .invalidCommand(let error) = frames.last else {
            Issue.record("\(frames)")
            return
        }
        #expect(error.reply.enhancedCode == EnhancedStatusCode(5, 6, 7))
    }

    /// CVE-2011-0411: commands pipelined after STARTTLS must not run inside TLS.
    @Test func startTLSDropsPipelinedPlaintext() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "STARTTLS\r\nRSET\r\nMAIL FROM:<evil@x>\r\n")
        #expect(framer.next(from: &buffer) == .command(.starttls))
        #expect(framer.mode == .awaitingTLSDecision)
        #expect(framer.next(from: &buffer) == nil)
        let dropped = framer.startTLS(discarding: &buffer)
        #expect(String(buffer: dropped) == "RSET\r\nMAIL FROM:<evil@x>\r\n")
        #expect(buffer.readableBytes == 0)
        #expect(framer.mode == .command)
        buffer.writeString("EHLO again\r\n")
        #expect(framer.next(from: &buffer) == .command(.ehlo("again")))
    }

    @Test func refusedStartTLSResumesCommands() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "STARTTLS\r\nNOOP\r\n")
        #expect(framer.next(from: &buffer) == .command(.starttls))
        #expect(framer.next(from: &buffer) == nil)
        framer.resumeCommands()
        #expect(framer.next(from: &buffer) == .command(.noop))
    }

    /// RFC 4954 §4: after 334 the next line is the client's answer, then commands again.
    @Test func authenticationResponseIsOneRawLine() {
        var framer = SMTPServerFramer()
        var buffer = ByteBuffer(string: "AUTH PLAIN\r\n")
        #expect(framer.next(from: &buffer) == .command(.auth(mechanism: "PLAIN", initialResponse: nil)))
        framer.expectAuthenticationResponse()
        #expect(framer.next(from: &buffer) == nil)
        buffer.writeString("AGFsaWNlAHNlY3JldA==\r\nNOOP\r\n")
        #expect(framer.next(from: &buffer) == .authenticationResponse("AGFsaWNlAHNlY3JldA=="))
        #expect(framer.next(from: &buffer) == .command(.noop))
        // `*` cancels (the caller answers 501); a bare LF ends the line as for commands.
        framer.expectAuthenticationResponse()
        buffer.writeString("*\n")
        #expect(framer.next(from: &buffer) == .authenticationResponse("*"))
    }

    @Test func overlongAuthenticationResponseIsSkipped() {
        var framer = SMTPServerFramer()
        framer.expectAuthenticationResponse()
        var buffer = ByteBuffer(string: String(repeating: "A", count: SMTPServerFramer.maximumAuthenticationLineLength))
        #expect(framer.next(from: &buffer) == .lineTooLong)
        buffer.writeString("AAAA\r\nNOOP\r\n")
        #expect(framer.next(from: &buffer) == .command(.noop))
    }

    @Test func randomBytesNeverCrash() {
        var random = SplitMix64(seed: 11)
        let alphabet = Array("DATA\r\nBDAT 3 LAST\r\n.\r\nMAIL FROM:<a@b>\n\u{0}x".utf8) + [0xFF, 0xC3]
        for _ in 0..<300 {
            let input = (0..<Int.random(in: 0..<400, using: &random)).map { _ in
                alphabet.randomElement(using: &random) ?? 0
            }
            let reads = random.chunking(total: input.count, maximum: 9)
            let frames = FramerHarness.frames(input, reads: reads)
            #expect(FramerHarness.merged(frames) == FramerHarness.merged(FramerHarness.frames(input)))
        }
    }
}
