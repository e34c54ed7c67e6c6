import NIOCore

/// Builds the generator's messages: fixed-width headers (so every message of a size has exactly that many bytes)
/// and a shared body per size, so sending a message copies no body bytes.
struct MessageFactory: Sendable {
    let from: String
    let to: String
    let sizes: [Int]
    private let runID: String
    /// One body per entry of `sizes`: 76-column text lines, CRLF, no line starting with a dot (no stuffing needed).
    private let bodies: [ByteBuffer]

    /// Header bytes of every message: the index is zero-padded so the length never varies.
    private static let indexWidth = 10

    init(from: String, to: String, sizes: [Int], runID: String) {
        self.from = from
        self.to = to
        self.sizes = sizes
        self.runID = runID
        let headerLength = Self.header(index: 0, from: from, to: to, runID: runID).readableBytes
        bodies = sizes.map { Self.body(length: max(0, $0 - headerLength)) }
    }

    /// The header fields and the empty line that ends them, for message `index`.
    func header(index: Int) -> ByteBuffer { Self.header(index: index, from: from, to: to, runID: runID) }

    /// The body of message `index` (sizes are used in turn).
    func body(index: Int) -> ByteBuffer { bodies[index % bodies.count] }

    private static func header(index: Int, from: String, to: String, runID: String) -> ByteBuffer {
        let digits = String(index)
        let padded = String(repeating: "0", count: max(0, indexWidth - digits.count)) + digits
        let text =
            "From: <\(from)>\r\nTo: <\(to)>\r\nSubject: signet-load message \(padded)\r\n"
            + "Date: Sun, 29 Nov 2026 12:00:00 +0000\r\nMessage-ID: <\(padded).\(runID)@signet-load.test>\r\n"
            + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        return ByteBuffer(string: text)
    }

    private static func body(length: Int) -> ByteBuffer {
        // Ordinary text with the odd double space and trailing space, as relaxed canonicalization meets it.
        let words = Array("The quick brown fox jumps over the lazy dog;  pack my box with five dozen liquor jugs ".utf8)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(length)
        var column = 0
        var index = 0
        // Content up to the last two bytes, which are the CRLF the end-of-data mark needs.
        while length - buffer.readableBytes > 2 {
            if column >= 76 && length - buffer.readableBytes > 3 {
                buffer.writeStaticString("\r\n")
                column = 0
            } else {
                buffer.writeInteger(words[index % words.count])
                index += 1
                column += 1
            }
        }
        if length >= 2 { buffer.writeStaticString("\r\n") }
        return buffer
    }
}
