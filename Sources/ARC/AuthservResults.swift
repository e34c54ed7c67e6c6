import MailMessage

/// Minimal Authentication-Results reading for the AAR: only the authserv-id and the text after it.
/// The full RFC 8601 parser belongs to MailAuth; this is meant to be replaced by it.
enum AuthservResults {
    /// The results of every Authentication-Results field whose authserv-id is `authservID`, top to bottom,
    /// each unfolded, trimmed and without a final `;`.
    static func results(in header: MessageHeader, authservID: String) -> [String] {
        header.fields(named: "authentication-results").compactMap { field -> String? in
            let value = field.unfoldedValue
            guard let semicolon = value.firstIndex(of: ";") else { return nil }
            // authserv-id [CFWS authres-version] ";": the id is the first word; comments are not expected here.
            let idPart = value[..<semicolon].arcTrimmed
            let id = idPart.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) ?? ""
            guard id.lowercased() == authservID.lowercased() else { return nil }
            var rest = value[value.index(after: semicolon)...].arcTrimmed
            while rest.hasSuffix(";") { rest = String(rest.dropLast()).arcTrimmed }
            return rest
        }
    }
}

extension ARCSealer {
    /// This hop's results for the AAR, gathered from its own Authentication-Results fields (those with
    /// `authservID`), joined with `; `; nil when there are none.
    public static func results(in header: MessageHeader, authservID: String) -> String? {
        let all = AuthservResults.results(in: header, authservID: authservID).filter { !$0.isEmpty }
        return all.isEmpty ? nil : all.joined(separator: "; ")
    }

    /// The `arc=` result among `results`, if any (how the public ARC test suite passes the incoming chain's
    /// state to the sealer).
    public static func arcResult(in results: String) -> ARCChainStatus? {
        for entry in results.split(separator: ";") {
            let trimmed = entry.arcTrimmed.lowercased()
            guard trimmed.hasPrefix("arc") else { continue }
            let afterName = trimmed.dropFirst(3).drop(while: { $0 == " " })
            guard afterName.first == "=" else { continue }
            let value = afterName.dropFirst().drop(while: { $0 == " " }).prefix(while: { $0.isLetter })
            return ARCChainStatus(rawValue: String(value)) ?? .fail
        }
        return nil
    }
}
