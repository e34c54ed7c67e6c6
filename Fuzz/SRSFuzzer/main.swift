import FuzzSupport
import SRS

/// SRS addresses come from strangers' bounces: reversing any string gives an address or an error, never a
/// crash; forwarding a plain address and reversing the result gives the address back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSRS(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = FuzzInput(data, size).text
    let now = 1_800_000_000
    _ = try? scheme.reverse(text, now: now)
    if let forwarded = try? scheme.forward(text, domain: "fwd.example", now: now) {
        // Forwarding an SRS address re-forwards it (SRS1), whose reverse is the earlier hop's SRS0 address, not
        // the input: the identity holds for plain addresses.
        let isSRS = text.uppercased().hasPrefix("SRS0") || text.uppercased().hasPrefix("SRS1")
        if forwarded != text && !isSRS {
            let back = try? scheme.reverse(forwarded, now: now)
            fuzzCheck(back?.lowercased() == text.lowercased(), "\(text) -> \(forwarded) -> \(String(describing: back))")
        }
    }
    return 0
}

private let scheme = try! SRSScheme(secrets: ["fuzz-test-secret"])

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzSRS(data, size) }
