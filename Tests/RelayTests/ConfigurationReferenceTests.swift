import Foundation
import Testing

@testable import Relay

/// docs/configuration.md must name every key the loader accepts, with its environment variable, and name no
/// variable the loader would refuse: operators configure from that page, so a key missing there is a key nobody
/// can find.
@Suite("docs/configuration.md is complete")
struct ConfigurationReferenceTests {
    static let reference: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return (try? String(contentsOf: root.appendingPathComponent("docs/configuration.md"), encoding: .utf8)) ?? ""
    }()

    @Test func everySchemaKeyIsDocumented() {
        #expect(!Self.reference.isEmpty, "docs/configuration.md is missing")
        #expect(ConfigurationLoader.keyPaths.contains("limits.max_connections"))
        let missing = ConfigurationLoader.keyPaths.filter { !Self.reference.contains("`\($0)`") }
        #expect(missing.isEmpty, "keys the loader accepts but docs/configuration.md does not name: \(missing)")
    }

    @Test func everyEnvironmentVariableIsDocumented() {
        let missing = ConfigurationLoader.environmentPaths.keys.sorted().filter { !Self.reference.contains("`\($0)`") }
        #expect(missing.isEmpty, "environment variables not in docs/configuration.md: \(missing)")
    }

    /// A variable the page names but the loader refuses would stop the relay at start.
    @Test func everyDocumentedVariableExists() throws {
        let pattern = try Regex("SIGNET_[A-Z0-9_]+")
        let named = Set(Self.reference.matches(of: pattern).map { String(Self.reference[$0.range]) })
        let unknown = named.filter { ConfigurationLoader.environmentPaths[$0] == nil }.sorted()
        #expect(unknown.isEmpty, "docs/configuration.md names variables the loader refuses: \(unknown)")
    }
}
