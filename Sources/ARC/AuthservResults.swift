import MailAuth
import MailMessage

extension ARCSealer {
    /// This hop's results for the AAR, gathered from its own Authentication-Results fields (those with
    /// `authservID`), joined with `; `; nil when there are none.
    ///
    /// Read with MailAuth's RFC 8601 parser; fields that do not parse are left out (RFC 8601 §2.5 treats them as
    /// absent), and the results are written back as MailAuth writes them.
    public static func results(in header: MessageHeader, authservID: String) -> String? {
        let all = AuthenticationResults.fields(in: header, authservID: authservID).flatMap(\.results).map(\.text)
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
