import DKIM
import DKIMCore
import FuzzSupport
import NIOCore

/// Body canonicalization (simple and relaxed, with and without l=) hashed chunk by chunk gives the same hash
/// and length as the whole body at once.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBodyHash(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    for canonicalization in [Canonicalization.simple, .relaxed] {
        for limit in [nil, Int(input.seed)] {
            var whole = BodyHasher(canonicalization, lengthLimit: limit)
            whole.update(input.whole)
            var chunked = BodyHasher(canonicalization, lengthLimit: limit)
            for chunk in input.chunks() { chunked.update(chunk) }
            let a = whole.finalize()
            let b = chunked.finalize()
            fuzzCheck(a.hash == b.hash && a.length == b.length, "\(canonicalization) l=\(String(describing: limit))")
        }
    }
    return 0
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzBodyHash(data, size) }
