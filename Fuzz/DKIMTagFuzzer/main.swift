import DKIMCore
import FuzzSupport

/// DKIM tag lists, signature fields and key records from untrusted headers and DNS: parse errors, never a
/// crash; a tag list that parses is written and parsed back to the same tags.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDKIMTags(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = FuzzInput(data, size).text
    _ = try? DKIMSignatureTags(parsing: text)
    _ = try? DKIMKeyRecord(parsing: text)
    if let tags = try? TagList(parsing: text) {
        var writer = TagListWriter(fieldName: "X")
        for tag in tags.tags { writer.append(tag.name, tag.value) }
        let written = String(writer.text.dropFirst(2))
        let again = try? TagList(parsing: written)
        fuzzCheck(again?.tags == tags.tags, "\(tags.tags) written as \(written)")
    }
    return 0
}

// Last: top-level globals above are initialized in order before this runs.
runFuzzer { data, size in fuzzDKIMTags(data, size) }
