import Foundation
import MailAuth
import MailMessage
import Testing

@Suite struct PublicSuffixListTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/publicsuffix")

    /// The `checkPublicSuffix(input, expected)` lines of the PSL project's tests/test_psl.txt.
    static func vectors() throws -> [(input: String?, expected: String?)] {
        let text = try String(contentsOf: fixtures.appendingPathComponent("test_psl.txt"), encoding: .utf8)
        var vectors: [(String?, String?)] = []
        for line in text.split(separator: "\n") where line.hasPrefix("checkPublicSuffix(") {
            let arguments = line.dropFirst("checkPublicSuffix(".count).prefix { $0 != ")" }
            let parts = arguments.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            func literal(_ text: String) -> String? {
                text == "null" ? nil : String(text.dropFirst().dropLast())  // drop the quotes
            }
            vectors.append((literal(parts[0]), literal(parts[1])))
        }
        return vectors
    }

    @Test func theProjectsTestVectors() throws {
        let vectors = try Self.vectors()
        #expect(vectors.count == 78)
        var passed = 0
        for (input, expected) in vectors {
            // null input is a JavaScript API check; there is nothing to look up.
            guard let input else { continue }
            // The vectors answer in the input's form (Unicode or A-labels); the lookup answers in A-labels.
            let want = expected.map { DomainName.asciiLowercased($0) ?? $0 }
            let got = PublicSuffixList.shared.organizationalDomain(of: input)
            #expect(got == want, "checkPublicSuffix('\(input)', \(expected.map { "'\($0)'" } ?? "null"))")
            if got == want { passed += 1 }
        }
        #expect(passed == 77)
    }

    @Test func sectionsAndSuffixes() {
        let list = PublicSuffixList.shared
        #expect(list.count > 9000)
        #expect(list.publicSuffix(of: "www.example.co.uk") == "co.uk")
        #expect(list.organizationalDomain(of: "a.b.example.co.uk.") == "example.co.uk")
        // github.io is in the private section.
        #expect(list.organizationalDomain(of: "alice.github.io") == "alice.github.io")
        #expect(PublicSuffixList.icannOnly.organizationalDomain(of: "alice.github.io") == "github.io")
        #expect(PublicSuffixList.icannOnly.count < list.count)
        #expect(list.organizationalDomain(of: "bücher.example.de") == "example.de")
        #expect(list.organizationalDomain(of: "www.bücher.de") == "xn--bcher-kva.de")
        #expect(list.organizationalDomain(of: "a..b") == nil)
        #expect(list.organizationalDomain(of: "") == nil)
        #expect(list.publicSuffix(of: "unlisted") == "unlisted")
    }

    @Test func loadingAndLookupCost() {
        // The compiled-in list is parsed at first use; this bounds that cost (and reports it) in a debug build.
        let clock = ContinuousClock()
        let load = clock.measure { _ = PublicSuffixList(sections: .icannAndPrivate) }
        let list = PublicSuffixList.shared
        let lookups = clock.measure {
            for index in 0..<10_000 { _ = list.organizationalDomain(of: "host\(index).mail.example.co.uk") }
        }
        print("PublicSuffixList: load \(load), 10,000 lookups \(lookups)")
        #expect(load < .seconds(2))
    }

    @Test func aListFromDatText() {
        let list = PublicSuffixList(
            datFile: """
                // comment
                com
                *.wild.example
                !ok.wild.example

                """)
        #expect(list.count == 3)
        #expect(list.organizationalDomain(of: "x.y.wild.example") == "x.y.wild.example")
        #expect(list.organizationalDomain(of: "a.ok.wild.example") == "ok.wild.example")
        #expect(list.organizationalDomain(of: "a.b.com") == "b.com")
    }
}
