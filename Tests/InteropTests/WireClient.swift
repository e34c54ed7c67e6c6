import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An SMTP client on a plain blocking socket, for what swaks and smtp-source cannot send: BDAT, deep
/// pipelining, bare LF, NUL, overlong lines, a connection dropped in the middle of a message. Every read has
/// a timeout, so a relay that stops answering fails the test instead of hanging it.
final class WireClient: @unchecked Sendable {
    // @unchecked: one thread reads and at most one other writes (`pipeline`); the descriptor is the only
    // state they share, and a socket may be read and written concurrently.

    struct Reply: CustomStringConvertible {
        var code: Int
        var lines: [String]
        var text: String { lines.joined(separator: "\n") }
        var description: String { text }
        var isPositive: Bool { code >= 200 && code < 400 }
        var isTransientFailure: Bool { code >= 400 && code < 500 }
    }

    private let fd: Int32
    private var inbox: [UInt8] = []
    private var closed = false

    init(port: Int, timeout: Double = 60, from: String? = nil) throws {
        fd = try Tools.connectToLoopback(port: port, timeout: timeout, from: from)
    }

    deinit { close() }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Closes at once with a TCP reset (SO_LINGER 0): a client that crashes rather than one that hangs up.
    func abort() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    /// Sets SO_RCVBUF: a small receive window makes a server's replies back up sooner.
    func setReceiveBuffer(_ bytes: Int32) {
        var size = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ bytes: [UInt8]) throws {
        var done = 0
        while done < bytes.count {
            let sent = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                throw ToolError("send failed after \(done) of \(bytes.count) bytes: errno \(errno)")
            }
            done += sent
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Reads one reply, multi-line replies joined.
    func reply() throws -> Reply {
        var lines: [String] = []
        while true {
            let line = try readLine()
            lines.append(line)
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)) else {
                throw ToolError("not an SMTP reply line: \(line.debugDescription) after \(lines.dropLast())")
            }
            if bytes.count == 3 || bytes[3] != UInt8(ascii: "-") { return Reply(code: code, lines: lines) }
        }
    }

    func replies(_ count: Int) throws -> [Reply] { try (0..<count).map { _ in try reply() } }

    /// Sends one command line (CRLF added) and reads its reply.
    func command(_ line: String) throws -> Reply {
        try send(line + "\r\n")
        return try reply()
    }

    /// Writes `bytes` from another thread while this one reads `count` replies, so a long pipelined burst cannot
    /// deadlock with replies nobody reads (both sides' socket buffers full).
    func pipeline(_ bytes: [UInt8], replies count: Int) throws -> [Reply] {
        let writer = DispatchGroup()
        nonisolated(unsafe) var writeError: (any Error)?
        writer.enter()
        Thread.detachNewThread {
            do { try self.send(bytes) } catch { writeError = error }
            writer.leave()
        }
        var result: [Reply] = []
        var readError: (any Error)?
        do {
            for _ in 0..<count { result.append(try reply()) }
        } catch {
            readError = error
        }
        if writer.wait(timeout: .now() + 120) == .timedOut {
            throw ToolError("the pipelined write did not finish in 120 s")
        }
        if let writeError { throw ToolError("\(writeError); replies so far: \(result)") }
        if let readError { throw ToolError("\(readError); replies so far: \(result)") }
        return result
    }

    /// Whether the server closes the connection within `seconds` (bytes that arrive before are discarded).
    func closedByPeer(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 100) > 0 {
                let count = recv(fd, &buffer, buffer.count, 0)
                if count <= 0 { return true }
            }
        }
        return false
    }

    private func readLine() throws -> String {
        while true {
            if let end = inbox.firstIndex(of: UInt8(ascii: "\n")) {
                var line = Array(inbox[..<end])
                inbox.removeSubrange(...end)
                if line.last == UInt8(ascii: "\r") { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            var buffer = [UInt8](repeating: 0, count: 16384)
            let count = recv(fd, &buffer, buffer.count, 0)
            if count == 0 {
                throw ToolError(
                    "the server closed the connection (pending: \(String(decoding: inbox, as: UTF8.self).debugDescription))"
                )
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw ToolError("no reply from the server: errno \(errno)\(errno == EAGAIN ? " (timed out)" : "")")
            }
            inbox += buffer[..<count]
        }
    }
}

/// Test messages and what to expect of them after the relay.
enum Mail {
    /// A message with a unique token in its Subject and Message-ID, CRLF line endings, body from `body`.
    static func message(token: String, from: String = "Alice <alice@example.com>", body: String) -> [UInt8] {
        let header = [
            "From: \(from)", "To: Bob <bob@example.org>", "Subject: relay test \(token)",
            "Date: Sun, 29 Nov 2026 10:00:00 +0000", "Message-ID: <\(token)@example.com>", "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ]
        return Array((header.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    /// A message of exactly `size` bytes: `message(token:body:)` with generated lines and one filler line.
    static func message(token: String, exactSize size: Int, seed: Int = 0) -> [UInt8] {
        var message = Mail.message(token: token, body: "")
        message += Array(Mail.body(bytes: size - message.count - 200, seed: seed).utf8)
        return message + Array(String(repeating: "x", count: size - message.count - 2).utf8) + [13, 10]
    }

    /// `count` bytes of body in 78-octet lines, with lines that start with "." (dot-stuffing must round-trip).
    static func body(bytes count: Int, seed: Int = 0) -> String {
        var lines: [String] = []
        var size = 0
        var index = 0
        while size < count {
            var line = index % 97 == 3 ? ".dot line \(seed)-\(index) " : "line \(seed)-\(index) "
            let letter = Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(index % 26)))
            line += String(repeating: letter, count: max(0, 76 - line.count))
            lines.append(line)
            size += line.utf8.count + 2
            index += 1
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// The message with lines starting with "." doubled and the end-of-data mark: what goes after DATA's 354.
    static func dotStuffed(_ message: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + message.count / 50 + 5)
        // Line by line with memchr: the 50 MiB test cannot afford a byte loop in a debug build. Only CRLF starts
        // a new line in SMTP (RFC 5321 §4.5.2), so a "." after a bare LF is not stuffed.
        var afterCRLF = true
        forEachLine(message) { line in
            if afterCRLF && line.first == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(contentsOf: line)
            afterCRLF = line.count >= 2 && line[line.count - 2] == 13
        }
        if out.suffix(2) != [13, 10] { out += [13, 10] }
        return out + Array(".\r\n".utf8)
    }

    /// Calls `body` with each line including its LF (the last one may have none).
    static func forEachLine(_ bytes: [UInt8], _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var start = 0
            while start < buffer.count {
                var end = buffer.count
                if let found = memchr(base + start, 10, buffer.count - start) {
                    end = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) - base + 1
                }
                body(UnsafeBufferPointer(rebasing: buffer[start..<end]))
                start = end
            }
        }
    }

    /// Splits what arrived into the DKIM-Signature fields in front and the rest, which must be what was sent.
    static func splitSignatures(_ arrived: Data) -> (signatures: [String], rest: Data) {
        var signatures: [String] = []
        var index = arrived.startIndex
        while arrived[index...].starts(with: Array("DKIM-Signature:".utf8))
            || arrived[index...].starts(with: Array("dkim-signature:".utf8))
        {
            var end = index
            // The field runs until a CRLF that is not followed by folding white space.
            while let lf = arrived[end...].firstIndex(of: UInt8(ascii: "\n")) {
                end = lf + 1
                if end >= arrived.endIndex || (arrived[end] != UInt8(ascii: " ") && arrived[end] != UInt8(ascii: "\t"))
                {
                    break
                }
            }
            signatures.append(String(decoding: arrived[index..<end], as: UTF8.self))
            index = end
        }
        return (signatures, arrived[index...])
    }
}
