import ARC
import DKIM
import Foundation
import MailAuth
import NIOCore

/// The ARC conformance suite lives in ../shared/testdata/arc beside the repository, with a copy in
/// Tests/Fixtures/arc for a clone on its own.
enum ARCTestData {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let folder: URL = {
        let team = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/testdata/arc")
        return FileManager.default.fileExists(atPath: team.path)
            ? team : packageRoot.appendingPathComponent("Tests/Fixtures/arc")
    }()

    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    /// A YAML literal block's LF line endings as CRLF.
    static func message(_ text: String) throws -> WholeMessage {
        try WholeMessage(ByteBuffer(string: text.replacingOccurrences(of: "\n", with: "\r\n")))
    }

    /// The suite's txt-records as a zone; `p=` may wrap over lines, so white space is removed from it.
    static func zone(_ records: [String: String]) -> StaticZone {
        var zone = StaticZone()
        for (name, value) in records {
            zone.addTXT(name, joinedRecord(value))
        }
        return zone
    }

    static func joinedRecord(_ value: String) -> String {
        value.split(separator: ";").map { tag -> String in
            let trimmed = tag.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.hasPrefix("p=") ? trimmed.filter { !$0.isWhitespace } : trimmed
        }.joined(separator: "; ")
    }

    /// A header value as a set of tags with all white space removed (the suite's comparison).
    static func tagSet(_ value: String) -> Set<String> {
        Set(value.filter { !$0.isWhitespace }.split(separator: ";").map(String.init).filter { !$0.isEmpty })
    }
}
