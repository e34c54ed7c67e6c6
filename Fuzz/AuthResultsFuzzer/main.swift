import FuzzSupport
import MailAuth

/// Authentication-Results and ARC-Authentication-Results values come from earlier hops: parse errors, never a
/// crash; a value that parses is written and parsed back to the same results.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAuthResults(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = FuzzInput(data, size).text
    _ = try? AuthenticationResults.parseARC(text)
    if let parsed = try? AuthenticationResults(parsing: text) {
        let written = parsed.value
        let again = try? AuthenticationResults(parsing: written)
        fuzzCheck(again == parsed, "\(parsed) written as \(written) parsed as \(String(describing: again))")
    }
    return 0
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzAuthResults(data, size) }
