import FuzzSupport
import MailMessage
import NIOCore

/// RFC 5322 header scanning: whole or chunked gives the same fields and body; the author and address parsers
/// never crash on any field value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMessageHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = split([input.whole])
    let chunked = split(input.chunks())
    fuzzCheck(whole == chunked, "whole \(whole) != chunked \(chunked)")
    if case .success(let header?, _) = splitHeader([input.whole]) {
        _ = try? header.authorMailbox()
        for field in header.fields {
            _ = try? AddressParser.parseAddressList(field.unfoldedValue)
            _ = try? AddressParser.parseMailbox(field.unfoldedValue)
        }
    }
    return 0
}

private enum Outcome: Equatable {
    case success([String], body: [UInt8])
    case failure(String)
}

private func split(_ chunks: [ByteBuffer]) -> Outcome {
    switch splitHeader(chunks) {
    case .success(let header, let body):
        return .success(header?.fields.map { "\($0.name):\($0.unfoldedValue)" } ?? [], body: body)
    case .failure(let error):
        return .failure("\(error)")
    }
}

private enum Split {
    case success(MessageHeader?, [UInt8])
    case failure(MailMessageError)
}

private func splitHeader(_ chunks: [ByteBuffer]) -> Split {
    var splitter = MessageSplitter()
    var header: MessageHeader?
    var body: [UInt8] = []
    do {
        for chunk in chunks {
            switch try splitter.feed(chunk) {
            case .needMoreData: break
            case .header(let complete, let bodyStart):
                header = complete
                body += bodyStart.readableBytesView
            case .body(let part): body += part.readableBytesView
            }
        }
        if header == nil { header = try splitter.finish() }
    } catch {
        return .failure(error)
    }
    return .success(header, body)
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzMessageHeader(data, size) }
