import FuzzSupport
import NIOCore
import SMTPProtocol

/// The server framer over a client's bytes: commands are parsed, DATA is unstuffed; fed whole or in arbitrary
/// chunks, the frames' content must be the same (a split can never change what is relayed).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPFramer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = frames([input.whole])
    let chunked = frames(input.chunks())
    fuzzCheck(whole == chunked, "whole \(whole) != chunked \(chunked)")
    return 0
}

/// What the framer produced, with adjacent data frames merged (their boundaries may differ).
private enum Event: Equatable {
    case command(String)
    case data([UInt8])
    case other(String)
}

private func frames(_ chunks: [ByteBuffer]) -> [Event] {
    var framer = SMTPServerFramer()
    var buffer = ByteBuffer()
    var events: [Event] = []
    func record(_ event: Event) {
        if case .data(let more) = event, case .data(let earlier) = events.last {
            events[events.count - 1] = .data(earlier + more)
        } else {
            events.append(event)
        }
    }
    for chunk in chunks {
        var chunk = chunk
        buffer.writeBuffer(&chunk)
        while let frame = framer.next(from: &buffer) {
            switch frame {
            case .command(let command):
                record(.command("\(command)"))
                switch framer.mode {
                case .awaitingDataDecision: framer.startMessageData()
                case .awaitingTLSDecision: framer.resumeCommands()
                default: break
                }
            case .messageData(let content), .chunkData(let content):
                record(.data(Array(content.readableBytesView)))
            default:
                record(.other("\(frame)"))
            }
        }
    }
    return events
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzSMTPFramer(data, size) }
