import NIOCore

/// DKIM key records answered from a file instead of DNS: lines of `selector._domainkey.domain`,
/// white space, then the TXT value, either bare (OpenDKIM's TestPublicKeys format) or as quoted
/// strings, optionally after `IN TXT` (zone-file form). `#` and `;` start comments.
public struct DKIMKeyTable: Sendable {
    /// TXT values by name (lower case, no trailing dot).
    public private(set) var records: [String: String]

    public init(records: [String: String] = [:]) {
        self.records = [:]
        for (name, value) in records {
            self.records[Self.normalize(name)] = value
        }
    }

    /// Parses the file's text; a line with a name but no value is an error naming the line.
    public init(parsing text: String) throws {
        self.records = [:]
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            guard let split = line.firstIndex(where: { $0 == " " || $0 == "\t" }) else {
                throw DKIMError(.malformedKeyFile, "line \(lineNumber): a name and a TXT value are expected")
            }
            let name = String(line[..<split])
            var value = line[split...].trimmingWhitespace()
            for prefix in ["IN ", "IN\t"] where value.hasPrefix(prefix) {
                value = value.dropFirst(prefix.count).trimmingWhitespace()
            }
            for prefix in ["TXT ", "TXT\t"] where value.hasPrefix(prefix) {
                value = value.dropFirst(prefix.count).trimmingWhitespace()
            }
            if value.hasPrefix("(") && value.hasSuffix(")") {
                value = value.dropFirst().dropLast().trimmingWhitespace()
            }
            guard !value.isEmpty else {
                throw DKIMError(.malformedKeyFile, "line \(lineNumber): '\(name)' has no TXT value")
            }
            records[Self.normalize(name)] = value.hasPrefix("\"") ? Self.joinQuoted(value) : String(value)
        }
    }

    /// The TXT value for a name, or nil when there is none.
    public func txt(for name: String) -> String? {
        records[Self.normalize(name)]
    }

    /// The record for `selector._domainkey.domain`.
    public func keyRecord(selector: String, domain: String) -> String? {
        txt(for: "\(selector)._domainkey.\(domain)")
    }

    private static func normalize(_ name: String) -> String {
        var lower = name.lowercased()
        if lower.hasSuffix(".") { lower.removeLast() }
        return lower
    }

    /// `"v=DKIM1; k=rsa; " "p=MIIB..."` -> the strings concatenated, as a resolver would.
    private static func joinQuoted(_ value: Substring) -> String {
        var result = ""
        var inQuotes = false
        var escaped = false
        for character in value {
            if escaped {
                result.append(character)
                escaped = false
            } else if character == "\\" && inQuotes {
                escaped = true
            } else if character == "\"" {
                inQuotes.toggle()
            } else if inQuotes {
                result.append(character)
            }
        }
        return result
    }
}

extension StringProtocol {
    fileprivate func trimmingWhitespace() -> Substring {
        let scalars = self[...]
        guard let first = scalars.firstIndex(where: { !$0.isWhitespace }) else { return "" }
        // Safe to force unwrap: a non-white-space character exists.
        let last = scalars.lastIndex(where: { !$0.isWhitespace })!
        return Substring(scalars[first...last])
    }
}
