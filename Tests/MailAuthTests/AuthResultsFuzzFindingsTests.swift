import MailAuth
import Testing

/// Inputs AuthResultsFuzzer found, kept as tests.
@Suite struct AuthResultsFuzzFindingsTests {
    /// A tab inside a quoted value or comment is white space the writer keeps; a CR or LF there is folding, which
    /// the parser drops and the writer never writes. Either way a parsed value and its rewrite are the same.
    @Test func tabsAndLineBreaksInsideQuotesRoundTrip() throws {
        let parsed = try AuthenticationResults(
            parsing: "mx.example.com; dkim=pass (a\tcomment\r\n more) header.b=\"ab\tc\r\n d\"")
        #expect(parsed.results.first?.comments == ["a comment more"])  // comment white space is normalized
        #expect(parsed.results.first?.property("header", "b") == "ab\tc d")
        #expect(try AuthenticationResults(parsing: parsed.value) == parsed)
        #expect(!parsed.value.contains("\r") && !parsed.value.contains("\n"))
    }

    /// A quoted local part with folding inside and no domain: the value keeps its quotes but not the line break,
    /// and survives being written and read back.
    @Test func quotedLocalPartWithFoldingRoundTrips() throws {
        let parsed = try AuthenticationResults(parsing: "mx.example.com; dkim=pass header.b=\"ab\r\n c\"@")
        #expect(parsed.results.first?.property("header", "b") == "\"ab c\"@")
        #expect(try AuthenticationResults(parsing: parsed.value) == parsed)
    }
}
