import Foundation
import MailAuth
import Testing
import Yams

/// The openspf.org RFC 7208 conformance suite (Tests/Fixtures/spf/SOURCE.md), every scenario against a
/// `StaticZone` built from its zone data.
@Suite struct SPFSuiteTests {
    /// Cases the evaluator is known to get wrong, with why; the test fails if one of them starts passing.
    static let knownExceptions: [String: String] = [:]

    /// One test case of a scenario.
    struct Case {
        var name: String
        var helo: String
        var host: String
        var mailFrom: String
        var results: [String]
        var explanation: String?
    }

    @Test func rfc7208Suite() async throws {
        let text = try SPFFixtures.text("spf/rfc7208-tests.yml")
        var total = 0
        var passed = 0
        var failures: [String] = []
        var exceptionsSeen: Set<String> = []
        for document in try Yams.compose_all(yaml: text) {
            guard let mapping = document.mapping else { continue }
            let zone = try Self.zone(mapping["zonedata"])
            let verifier = SPFVerifier(resolver: zone, receiver: "receiver.example")
            for (key, value) in mapping["tests"]?.mapping ?? [:] {
                let testCase = try Self.testCase(name: key.string ?? "?", value)
                total += 1
                let ip = try #require(IPAddress(testCase.host), "\(testCase.name): host \(testCase.host)")
                let result = await verifier.checkMailFrom(
                    clientIP: ip, mailFrom: testCase.mailFrom, helo: testCase.helo)
                var problem: String?
                if !testCase.results.contains(result.status.rawValue) {
                    problem = "got \(result.status.rawValue), want \(testCase.results.joined(separator: "|"))"
                } else if let want = testCase.explanation {
                    // The suite writes DEFAULT where no exp= text applies.
                    let got = result.explanation ?? "DEFAULT"
                    if got != want { problem = "explanation '\(got)', want '\(want)'" }
                }
                if let known = Self.knownExceptions[testCase.name] {
                    exceptionsSeen.insert(testCase.name)
                    if problem == nil {
                        failures.append("\(testCase.name): listed as a known exception (\(known)) but passes")
                    }
                    continue
                }
                if let problem {
                    failures.append("\(testCase.name): \(problem) [\(result)]")
                } else {
                    passed += 1
                }
            }
        }
        print("SPF suite: \(passed)/\(total) (known exceptions: \(Self.knownExceptions.count))")
        for failure in failures { print("  SPF suite failure: \(failure)") }
        #expect(total == 203, "the suite's case count changed")
        #expect(failures.isEmpty, "\(failures.count) cases failed")
        #expect(exceptionsSeen == Set(Self.knownExceptions.keys), "a known exception names no case")
    }

    static func testCase(name: String, _ node: Node) throws -> Case {
        guard let map = node.mapping else { throw SPFFixtures.Failure("test \(name) is not a mapping") }
        let results: [String]
        if let list = map["result"]?.sequence {
            results = list.compactMap(\.string)
        } else {
            results = [map["result"]?.string ?? ""]
        }
        return Case(
            name: name, helo: map["helo"]?.string ?? "", host: map["host"]?.string ?? "",
            mailFrom: map["mailfrom"]?.string ?? "", results: results, explanation: map["explanation"]?.string)
    }

    /// Zone data as the suite's own driver (pyspf's testspf.py) reads it: SPF-type records are served as TXT
    /// unless the name has TXT entries of its own (`TXT: NONE` says "no TXT"); a list of strings is one record's
    /// character-strings; a bare TIMEOUT makes questions the name has no records for time out.
    static func zone(_ zonedata: Node?) throws -> StaticZone {
        var zone = StaticZone()
        for (nameNode, recordsNode) in zonedata?.mapping ?? [:] {
            guard let name = nameNode.string else { continue }
            var spfTexts: [String] = []
            var hasTXT = false
            zone.add(name) { _ in }  // the name exists even when all it has is NONE or a failure
            for record in recordsNode.sequence ?? [] {
                if record.string == "TIMEOUT" {
                    zone.add(name) { $0.failureWhenEmpty = .timeout }
                    continue
                }
                guard let pair = record.mapping?.first, let type = pair.key.string else {
                    throw SPFFixtures.Failure("\(name): unreadable record \(record)")
                }
                let value = pair.value
                func text() -> String? {
                    if let list = value.sequence { return list.compactMap(\.string).joined() }
                    return value.string == "NONE" ? nil : value.string
                }
                switch type {
                case "TXT":
                    hasTXT = true
                    if let text = text() { zone.addTXT(name, text) }
                case "SPF":
                    if let text = text() { spfTexts.append(text) }
                case "A", "AAAA":
                    guard let address = value.string.flatMap(IPAddress.init) else {
                        throw SPFFixtures.Failure("\(name): bad address \(value)")
                    }
                    zone.add(name) { entry in
                        if type == "A" { entry.a.append(address) } else { entry.aaaa.append(address) }
                    }
                case "MX":
                    guard let parts = value.sequence, parts.count == 2,
                        let preference = parts[0].string.flatMap(UInt16.init),
                        let host = parts[1].string
                    else { throw SPFFixtures.Failure("\(name): bad MX \(value)") }
                    zone.add(name) { $0.mx.append(MXRecord(preference: preference, exchange: host)) }
                case "PTR":
                    guard let host = value.string else { throw SPFFixtures.Failure("\(name): bad PTR") }
                    zone.add(name) { $0.ptr.append(DNSName.normalize(host)) }
                case "CNAME":
                    guard let host = value.string else { throw SPFFixtures.Failure("\(name): bad CNAME") }
                    zone.add(name) { $0.cname = DNSName.normalize(host) }
                default:
                    throw SPFFixtures.Failure("\(name): unknown record type \(type)")
                }
            }
            if !hasTXT {
                for text in spfTexts { zone.addTXT(name, text) }
            }
        }
        return zone
    }
}

/// The team's test data folder when it is beside the repository, else the copy in Tests/Fixtures.
enum SPFFixtures {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static let directory: URL = {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let shared = repository.deletingLastPathComponent().appendingPathComponent("shared/testdata")
        if FileManager.default.fileExists(atPath: shared.appendingPathComponent("spf").path) { return shared }
        return repository.appendingPathComponent("Tests/Fixtures")
    }()

    static func text(_ relativePath: String) throws -> String {
        try String(contentsOf: directory.appendingPathComponent(relativePath), encoding: .utf8)
    }
}
