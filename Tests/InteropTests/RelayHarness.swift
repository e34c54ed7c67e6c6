import Foundation
import Testing

/// Shared parts of the relay tests that push on limits and failures: what arrived at a next hop, checks that
/// it is the sent message plus signatures, the independent verifiers, and waiting with a deadline.
enum RelayHarness {
    typealias Running = RelayEndToEndTests.Running

    /// A folder with keys for example.com (rsa and ed selectors) and their DNS records.
    struct Setup {
        var dir: URL
        var keys: RelayEndToEndTests.Keys
        init(_ name: String) throws {
            dir = try Tools.makeTemporaryDirectory(name)
            keys = try RelayEndToEndTests.makeKeys(in: dir)
        }
        func subdirectory(_ name: String) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
            return url
        }
        func remove() { try? FileManager.default.removeItem(at: dir) }
    }

    /// Polls `condition` until it holds or `seconds` pass; returns whether it held.
    @discardableResult
    static func wait(seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return try condition()
    }

    // MARK: What arrived

    /// The messages smtp-sink stored, each without the X-* lines and the Received field smtp-sink writes in front
    /// and the empty line it writes after, with CRLF restored (smtp-sink stores LF).
    static func sinkMessages(_ dumps: URL) throws -> [Data] {
        let names = try FileManager.default.contentsOfDirectory(atPath: dumps.path).sorted()
        return try names.map { try sinkContent(Data(contentsOf: dumps.appendingPathComponent($0))) }
    }

    static func sinkContent(_ dump: Data) -> Data {
        let bytes = [UInt8](dump)
        var index = 0
        func lineEnd(_ from: Int) -> Int { (bytes[from...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count - 1) + 1 }
        func starts(_ prefix: String) -> Bool { bytes[index...].starts(with: prefix.utf8) }
        while index < bytes.count
            && (starts("X-Client-") || starts("X-Helo-") || starts("X-Mail-") || starts("X-Rcpt-"))
        {
            index = lineEnd(index)
        }
        if starts("Received:") {
            index = lineEnd(index)
            while index < bytes.count && (bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")) {
                index = lineEnd(index)
            }
        }
        let end = bytes.suffix(2) == [10, 10] ? bytes.count - 1 : bytes.count
        return withCRLF(Array(bytes[index..<end]))
    }

    /// LF-terminated lines with CRLF instead.
    static func withCRLF(_ bytes: [UInt8]) -> Data {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 41 / 40)
        Mail.forEachLine(bytes) { line in
            if line.last == 10 {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: line.dropLast()))
                out += [13, 10]
            } else {
                out.append(contentsOf: line)
            }
        }
        return Data(out)
    }

    /// The message in a Postfix Maildir file, without the Return-Path, X-Original-To, Delivered-To and Received
    /// fields Postfix puts in front, with CRLF restored (Maildir stores LF).
    static func maildirContent(_ file: Data) -> Data {
        let bytes = [UInt8](file)
        var index = 0
        func lineEnd(_ from: Int) -> Int { (bytes[from...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count - 1) + 1 }
        func starts(_ prefix: String) -> Bool { bytes[index...].starts(with: prefix.utf8) }
        var received = false
        while index < bytes.count
            && (starts("Return-Path:") || starts("X-Original-To:") || starts("Delivered-To:")
                || (!received && starts("Received:")))
        {
            if starts("Received:") { received = true }
            index = lineEnd(index)
            while index < bytes.count && (bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")) {
                index = lineEnd(index)
            }
        }
        return withCRLF(Array(bytes[index...]))
    }

    /// Bare CR and bare LF become CRLF: what the relay must make of a message before hashing and sending it.
    /// Written here independently of Signet's normalizer.
    static func normalized(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var index = 0
        while index < message.count {
            let byte = message[index]
            if byte == 13 {
                out += [13, 10]
                if index + 1 < message.count && message[index + 1] == 10 { index += 1 }
            } else if byte == 10 {
                out += [13, 10]
            } else {
                out.append(byte)
            }
            index += 1
        }
        return out
    }

    /// The text between "relay test " and the end of the Subject line: which sent message this is.
    static func token(of message: Data) -> String? {
        guard let range = message.range(of: Data("Subject: relay test ".utf8)) else { return nil }
        let end = message[range.upperBound...].firstIndex(of: UInt8(ascii: "\r")) ?? message.endIndex
        return String(decoding: message[range.upperBound..<end], as: UTF8.self)
    }

    /// Expects `arrived` to be the two signatures (rsa-sha256 then ed25519-sha256, d=example.com) followed by
    /// exactly `sent` (as normalized by the relay).
    static func expectSignedCopy(
        _ arrived: Data, of sent: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let (signatures, rest) = Mail.splitSignatures(arrived)
        #expect(
            signatures.count == 2, "\(what): \(signatures.count) DKIM-Signature fields in front",
            sourceLocation: sourceLocation)
        #expect(
            signatures.first?.contains("a=rsa-sha256") == true, "\(what): \(signatures)", sourceLocation: sourceLocation
        )
        #expect(
            signatures.last?.contains("a=ed25519-sha256") == true, "\(what): \(signatures)",
            sourceLocation: sourceLocation)
        #expect(
            signatures.allSatisfy { $0.contains("d=example.com") }, "\(what): \(signatures)",
            sourceLocation: sourceLocation)
        let expected = Data(normalized(sent))
        if rest != expected {
            let prefix = zip(rest, expected).prefix { $0 == $1 }.count
            let arrivedText = String(decoding: rest.dropFirst(prefix).prefix(60), as: UTF8.self).debugDescription
            let expectedText = String(decoding: expected.dropFirst(prefix).prefix(60), as: UTF8.self).debugDescription
            let text =
                "\(what): \(rest.count) bytes arrived after the signatures, \(expected.count) expected; "
                + "first difference at \(prefix): arrived \(arrivedText), expected \(expectedText)"
            Issue.record(Comment(rawValue: text), sourceLocation: sourceLocation)
        }
    }

    enum Verifier { case dkimpy, mailDKIM }

    /// Writes the messages to files and expects every signature to pass dkimpy (rsa and ed) and Mail::DKIM (rsa).
    static func expectVerified(
        _ messages: [Data], keys: RelayEndToEndTests.Keys, in dir: URL,
        verifiers: Set<Verifier> = [.dkimpy, .mailDKIM],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let folder = dir.appendingPathComponent("verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var files: [String] = []
        for (index, message) in messages.enumerated() {
            let path = folder.appendingPathComponent("m\(index).eml")
            try message.write(to: path)
            files.append(path.path)
        }
        let all: [(Verifier, String, String, String, [String])] = [
            (.dkimpy, "dkimpy", "/usr/bin/python3", "dkimpy_verify.py", ["rsa", "ed"]),
            // The Debian Mail::DKIM does not know ed25519-sha256 yet; it checks the RSA signature.
            (.mailDKIM, "Mail::DKIM", "/usr/bin/perl", "maildkim_verify.pl", ["rsa"]),
        ]
        for (_, verifier, executable, script, selectors) in all.filter({ verifiers.contains($0.0) }) {
            // Batches keep each command line short.
            var results: [VerifierResult] = []
            for start in stride(from: 0, to: files.count, by: 100) {
                let batch = Array(files[start..<min(start + 100, files.count)])
                let output = try Tools.run(
                    executable, [Tools.interopScripts.appendingPathComponent(script).path, keys.keyFile] + batch)
                #expect(
                    output.status == 0, "\(verifier) exited with \(output.status): \(output.stderr)",
                    sourceLocation: sourceLocation)
                results += VerifierResult.parse(output.text)
            }
            for file in files {
                for selector in selectors {
                    let mine = results.filter {
                        $0.file == file && $0.selector == selector && $0.domain == "example.com"
                    }
                    #expect(
                        mine.map(\.result) == ["pass"], "\(verifier) \(file) s=\(selector): \(mine)",
                        sourceLocation: sourceLocation)
                }
            }
        }
    }

    // MARK: Processes

    /// The recording (or dying) next hop of Tests/Interop/recording_sink.py, once it listens.
    static func startRecorder(_ dir: URL, port: Int? = nil, options: [String] = []) throws -> (Running, Int, URL) {
        let out = dir.appendingPathComponent("recorded-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let port = port ?? RelayEndToEndTests.freePort()
        let recorder = try Running(
            "/usr/bin/python3",
            [Tools.interopScripts.appendingPathComponent("recording_sink.py").path, "\(port)", out.path] + options,
            log: out.appendingPathComponent("recorder.log"))
        // Test runner children never see SIGTERM (blocked signal mask), and the recorder has nothing to finish.
        recorder.killAtOnce = true
        // Wait for its own "ready" rather than probing the port: a probe would be a connection it has to serve.
        guard wait(seconds: 20, { recorder.output.contains("ready") }) else {
            throw ToolError("recording_sink.py did not start: \(recorder.output)")
        }
        return (recorder, port, out)
    }

    /// The messages the recorder stored, in arrival order, as the bytes on the wire.
    static func recorded(_ out: URL) throws -> [Data] {
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasSuffix(".raw") }
        let numbered = names.compactMap { name in
            Int(name.dropFirst("message-".count).dropLast(".raw".count)).map { ($0, name) }
        }
        return try numbered.sorted { $0.0 < $1.0 }.map { try Data(contentsOf: out.appendingPathComponent($0.1)) }
    }

    /// The peak and current resident set size of a process, in KiB (VmHWM and VmRSS of /proc/PID/status).
    static func memory(of pid: Int32) throws -> (peak: Int, current: Int) {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func value(_ key: String) -> Int {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return -1 }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? -1
        }
        return (value("VmHWM"), value("VmRSS"))
    }

    /// Sends one whole transaction over DATA; returns the reply to the end of data.
    static func sendWithData(
        _ client: WireClient, _ message: [UInt8], from: String = "alice@example.com", to: String = "bob@example.org"
    )
        throws -> WireClient.Reply
    {
        let replies = try client.pipeline(Array("MAIL FROM:<\(from)>\r\nRCPT TO:<\(to)>\r\nDATA\r\n".utf8), replies: 3)
        guard replies[0].code == 250, replies[1].code == 250, replies[2].code == 354 else {
            throw ToolError("transaction refused before the message: \(replies)")
        }
        return try client.pipeline(Mail.dotStuffed(message), replies: 1)[0]
    }

    /// A client that has been greeted and has sent EHLO.
    static func greetedClient(_ port: Int, timeout: Double = 60) throws -> WireClient {
        let client = try WireClient(port: port, timeout: timeout)
        let greeting = try client.reply()
        guard greeting.code == 220 else { throw ToolError("greeting: \(greeting)") }
        let ehlo = try client.command("EHLO client.example.com")
        guard ehlo.code == 250 else { throw ToolError("EHLO: \(ehlo)") }
        return client
    }
}
