import FuzzSupport
import NIOCore
import SMTPProtocol

/// Dot-stuffing then the server's unstuffing is the identity on CRLF content (with the last line completed),
/// whatever the chunking on either side; the end-of-data mark is found exactly once, at the end.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDotStuffing(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    // The stuffer expects CRLF line ends (the relay normalizes first): make every LF part of a CRLF.
    var content: [UInt8] = []
    for byte in input.bytes {
        if byte == 0x0A && content.last != 0x0D { content.append(0x0D) }
        if content.last == 0x0D && byte != 0x0A { content.append(0x0A) }
        content.append(byte)
    }
    if content.last == 0x0D { content.append(0x0A) }
    var stuffer = DotStuffer()
    var stuffed: [ByteBuffer] = []
    for chunk in FuzzInput(seed: input.seed, content).chunks() { stuffer.stuff(chunk, into: &stuffed) }
    stuffer.finish(into: &stuffed)
    var wire: [UInt8] = []
    for part in stuffed { wire += part.readableBytesView }

    var expected = content
    if !expected.isEmpty && !(expected.count >= 2 && expected.suffix(2) == [0x0D, 0x0A]) { expected += [0x0D, 0x0A] }

    var framer = SMTPServerFramer()
    var buffer = ByteBuffer(string: "DATA\r\n")
    guard case .command = framer.next(from: &buffer) else { fatalError("DATA was not a command") }
    framer.startMessageData()
    var received: [UInt8] = []
    var ends = 0
    for chunk in FuzzInput(seed: input.seed &+ 1, wire).chunks() {
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        while let frame = framer.next(from: &buffer) {
            switch frame {
            case .messageData(let part): received += part.readableBytesView
            case .messageEnd: ends += 1
            default: fatalError("unexpected frame \(frame)")
            }
        }
    }
    fuzzCheck(ends == 1 && buffer.readableBytes == 0, "end mark seen \(ends) times, \(buffer.readableBytes) left")
    fuzzCheck(received == expected, "unstuffed \(received) != \(expected)")
    return 0
}

extension FuzzInput {
    fileprivate init(seed: UInt8, _ bytes: [UInt8]) {
        let all = [seed] + bytes
        self = all.withUnsafeBufferPointer { FuzzInput($0.baseAddress!, $0.count) }
    }
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzDotStuffing(data, size) }
