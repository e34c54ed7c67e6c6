import NIOCore

@testable import SMTPProtocol

/// Drives an `SMTPServerFramer` the way the relay does: reads of given sizes appended to one buffer, DATA answered.
struct FramerHarness {
    var framer = SMTPServerFramer()
    var pending = ByteBuffer()
    var frames: [SMTPServerFramer.Frame] = []
    var acceptData = true

    /// Feeds `input` in reads of the given sizes (the last size repeats), collecting frames after each read.
    static func frames(
        _ input: [UInt8], reads: [Int] = [], acceptData: Bool = true, framer: SMTPServerFramer = SMTPServerFramer()
    ) -> [SMTPServerFramer.Frame] {
        var harness = FramerHarness(framer: framer, acceptData: acceptData)
        var offset = 0
        var sizes = reads.makeIterator()
        var lastSize = input.count
        while offset < input.count {
            lastSize = sizes.next() ?? lastSize
            let size = min(max(1, lastSize), input.count - offset)
            harness.feed(input[offset..<offset + size])
            offset += size
        }
        harness.drain()
        return harness.frames
    }

    static func frames(_ input: String, reads: [Int] = [], acceptData: Bool = true) -> [SMTPServerFramer.Frame] {
        frames(Array(input.utf8), reads: reads, acceptData: acceptData)
    }

    mutating func feed(_ bytes: ArraySlice<UInt8>) {
        pending.writeBytes(bytes)
        drain()
    }

    mutating func drain() {
        while let frame = framer.next(from: &pending) {
            frames.append(frame)
            if case .command(.data) = frame {
                if acceptData { framer.startMessageData() } else { framer.rejectMessageData() }
            }
        }
    }

    /// Joins consecutive data frames, so results compare whatever the cuts were.
    static func merged(_ frames: [SMTPServerFramer.Frame]) -> [SMTPServerFramer.Frame] {
        var result: [SMTPServerFramer.Frame] = []
        for frame in frames {
            switch (frame, result.last) {
            case (.messageData(let data), .messageData(var previous)?):
                previous.writeImmutableBuffer(data)
                result[result.count - 1] = .messageData(previous)
            case (.chunkData(let data), .chunkData(var previous)?):
                previous.writeImmutableBuffer(data)
                result[result.count - 1] = .chunkData(previous)
            default:
                result.append(frame)
            }
        }
        return result
    }
}

/// A one-shot DATA reader written independently of the framer: CRLF-delimited lines, "." alone ends,
/// a leading "." is removed. Returns the content and the bytes after the end mark, or nil without one.
func referenceUnstuff(_ input: [UInt8]) -> (content: [UInt8], rest: [UInt8])? {
    var content: [UInt8] = []
    var lineStart = 0
    var index = 0
    while index + 1 < input.count {
        guard input[index] == 0x0D && input[index + 1] == 0x0A else {
            index += 1
            continue
        }
        var line = Array(input[lineStart..<index + 2])
        if line == Array(".\r\n".utf8) { return (content, Array(input[(index + 2)...])) }
        if line.first == UInt8(ascii: ".") { line.removeFirst() }
        content += line
        index += 2
        lineStart = index
    }
    return nil
}

/// Dot-stuffing as RFC 5321 §4.5.2 states it, for content with CRLF line ends, plus the end mark.
func referenceStuff(_ content: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var atLineStart = true
    for (index, byte) in content.enumerated() {
        if atLineStart && byte == UInt8(ascii: ".") { out.append(byte) }
        out.append(byte)
        atLineStart = byte == 0x0A && index > 0 && content[index - 1] == 0x0D
    }
    if content.last == 0x0D {
        out.append(0x0A)
    } else if !(content.isEmpty || atLineStart) {
        out += Array("\r\n".utf8)
    }
    return out + Array(".\r\n".utf8)
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}
