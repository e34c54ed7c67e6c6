import ARC
import DKIM
import Foundation
import Keys
import MailAuth
import MailMessage
import NIOCore
import Testing
import Yams

/// The public ARC test suite (ValiMail arc_test_suite, see SOURCE.md): every signing case byte-exact on the tag
/// values, every validation case with the expected cv.
@Suite struct ARCConformanceTests {
    struct Scenario {
        var name: String
        var tests: [(name: String, fields: [String: Any])]
        var records: [String: String]
        var fields: [String: Any]
    }

    /// The YAML documents, with each scenario's tests in file order. A repeated test name replaces the earlier
    /// one, as a YAML mapping (and dkimpy's runner) has it.
    static func scenarios(_ file: String) throws -> [Scenario] {
        var result: [Scenario] = []
        for document in try Yams.compose_all(yaml: renamingRepeatedTests(try ARCTestData.text(file))) {
            guard let mapping = document.mapping else { continue }
            var tests: [(String, [String: Any])] = []
            for (key, value) in mapping["tests"]?.mapping ?? [:] {
                guard let marked = key.string else { continue }
                let name = marked.split(separator: "#").first.map(String.init) ?? marked
                let fields = try Yams.load(yaml: try Yams.serialize(node: value)) as? [String: Any] ?? [:]
                if let index = tests.firstIndex(where: { $0.0 == name }) {
                    tests[index] = (name, fields)
                } else {
                    tests.append((name, fields))
                }
            }
            var records: [String: String] = [:]
            for (key, value) in mapping["txt-records"]?.mapping ?? [:] {
                if let name = key.string, let text = value.string { records[name] = text }
            }
            var fields: [String: Any] = [:]
            for key in ["domain", "sel", "privatekey", "description"] {
                fields[key] = mapping[key]?.string
            }
            result.append(
                Scenario(
                    name: (fields["description"] as? String) ?? "", tests: tests, records: records, fields: fields))
        }
        return result
    }

    /// Yams refuses a mapping with a repeated key (the validation file repeats a few test names), so later
    /// occurrences get a `#n` suffix here, and `scenarios` lets them replace the earlier ones.
    static func renamingRepeatedTests(_ text: String) -> String {
        var seen: [String: Int] = [:]
        var lines: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("---") { seen = [:] }
            let isTestName =
                line.hasPrefix("  ") && !line.hasPrefix("   ")
                && line.trimmingCharacters(in: .whitespaces).hasSuffix(":")
            if isTestName {
                let name = line.trimmingCharacters(in: .whitespaces).dropLast()
                let count = seen[String(name), default: 0]
                seen[String(name)] = count + 1
                if count > 0 {
                    lines.append("  \(name)#\(count + 1):")
                    continue
                }
            }
            lines.append(String(line))
        }
        return lines.joined(separator: "\n")
    }

    static func string(_ value: Any?) -> String {
        switch value {
        case let text as String: return text
        case let number as Int: return String(number)
        case nil: return ""
        default: return "\(value!)"
        }
    }

    @Test func validationCases() async throws {
        let scenarios = try Self.scenarios("arc-draft-validation-tests.yml")
        var total = 0
        var failures: [String] = []
        for scenario in scenarios {
            let zone = ARCTestData.zone(scenario.records)
            for (name, test) in scenario.tests {
                total += 1
                let expected = Self.string(test["cv"]).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
                let message = try ARCTestData.message(Self.string(test["message"]))
                let result = await ARCValidator().validate(message, resolver: zone)
                if expected.isEmpty {
                    // Empty: the chain was ended by a hop that sealed it with cv=fail (dkimpy returns None for
                    // "terminated"); RFC 8617 §5.2 step 3 makes that cv=fail, for that reason.
                    if result.status != .fail || !result.reason.contains("cv=fail") {
                        failures.append("\(name): expected fail for a seal with cv=fail, got \(result)")
                    }
                } else if result.status.rawValue != expected {
                    failures.append("\(name): expected \(expected), got \(result)")
                }
            }
        }
        print("ARC validation cases: \(total - failures.count)/\(total) pass")
        for failure in failures { print("  FAIL \(failure)") }
        #expect(total == 171)
        #expect(failures.isEmpty, "\(failures.count) validation cases did not match")
    }

    @Test func signingCases() async throws {
        let scenarios = try Self.scenarios("arc-draft-sign-tests.yml")
        var total = 0
        var failures: [String] = []
        for scenario in scenarios {
            let key = try PrivateKey(pemRepresentation: Self.string(scenario.fields["privatekey"]))
            for (name, test) in scenario.tests {
                total += 1
                let message = try ARCTestData.message(Self.string(test["message"]))
                var options = ARCSealer.defaultOptions
                options.explicitHeaderList = Self.string(test["sig-headers"]).split(separator: ":").map(String.init)
                let sealer = try ARCSealer(
                    domain: Self.string(scenario.fields["domain"]), selector: Self.string(scenario.fields["sel"]),
                    key: key, options: options)
                let srvID = Self.string(test["srv-id"])
                let now = Int(Self.string(test["t"])) ?? 0
                var produced: [String: String] = [:]
                // The suite's hop states its verdict on the incoming chain as arc= in its own results.
                if let results = ARCSealer.results(in: message.header, authservID: srvID) {
                    let status = ARCSealer.arcResult(in: results) ?? .none
                    let outcome = try sealer.seal(
                        message, chainStatus: status, authservID: srvID, results: results, now: now)
                    for field in outcome.fields {
                        let colon = field.firstIndex(of: ":")!
                        produced[String(field[..<colon])] = String(field[field.index(after: colon)...])
                    }
                }
                for (label, fieldName) in [
                    ("AS", "ARC-Seal"), ("AMS", "ARC-Message-Signature"), ("AAR", "ARC-Authentication-Results"),
                ] {
                    let want = ARCTestData.tagSet(Self.string(test[label]))
                    let got = ARCTestData.tagSet(produced[fieldName] ?? "")
                    if want != got {
                        failures.append(
                            "\(name) \(label): expected \(want.sorted()), got \(got.sorted()); "
                                + "missing \(want.subtracting(got).sorted()) extra \(got.subtracting(want).sorted())")
                    }
                }
            }
        }
        print("ARC signing cases: \(total - failures.count)/\(total) pass (field mismatches: \(failures.count))")
        for failure in failures { print("  FAIL \(failure)") }
        #expect(total == 17)
        #expect(failures.isEmpty, "\(failures.count) signing fields did not match")
    }
}
