import FuzzSupport
import MailAuth

/// SPF and DMARC records come from anyone's DNS: a syntax error is a permerror with a reason, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMailAuthRecords(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = FuzzInput(data, size).text
    _ = try? SPFRecord(parsing: text)
    _ = try? DMARCRecord(parsing: text)
    _ = try? StaticZone(parsing: text)
    return 0
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzMailAuthRecords(data, size) }
