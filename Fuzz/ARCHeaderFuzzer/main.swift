import ARC
import FuzzSupport
import MailMessage
import NIOCore

/// ARC sets come from earlier hops: any header gives a chain (maybe failed, with a reason), never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzARCHeader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var splitter = MessageSplitter()
    guard case .header(let header, _)? = try? splitter.feed(input.whole) else { return 0 }
    let chain = ARCChain(header: header)
    _ = ARCValidator().keyNames(for: chain)
    _ = ARCValidator().bodyHasherKeys(for: chain)
    // No keys and no body hashes: every path up to the key lookup runs, and the result must be a reasoned answer.
    let result = ARCValidator().validate(chain: chain, header: header, bodyHashes: [:], keys: [:])
    fuzzCheck(result.status != .pass, "a chain validated without keys: \(result)")
    return 0
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzARCHeader(data, size) }
