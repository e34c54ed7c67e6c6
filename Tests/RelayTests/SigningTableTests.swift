import DKIM
import Foundation
import Keys
import Testing

@testable import Relay

@Suite("Signing table lookup")
struct SigningTableTests {
    static let key = try! PrivateKey.generateEd25519()

    static func table(_ rules: [(String, String)]) throws -> SigningTable {
        var signing = RelayConfiguration.Signing()
        for (index, (pattern, domain)) in rules.enumerated() {
            signing.keys["k\(index)"] = RelayConfiguration.KeyEntry(domain: domain, selector: "s\(index)", keyFile: "mem")
            signing.table.append(RelayConfiguration.TableEntry(from: pattern, keys: ["k\(index)"]))
        }
        return try SigningTable(signing, loadKey: { _ in key })
    }

    @Test func mostSpecificRuleWins() throws {
        let table = try Self.table([
            ("example.com", "example.com"), ("*.lists.example.com", "lists.example.com"),
            ("news.example.com", "news.example.com"), ("*", "fallback.example"),
        ])
        func selector(_ domain: String) -> String? { table.signers(forFromDomain: domain).first?.selector }
        #expect(selector("example.com") == "s0")
        #expect(selector("EXAMPLE.COM") == "s0")
        #expect(selector("mail.example.com") == "s0")
        #expect(selector("a.lists.example.com") == "s1")
        #expect(selector("lists.example.com") == "s0")  // *.x covers subdomains only
        #expect(selector("news.example.com") == "s2")
        #expect(selector("other.org") == "s3")
        #expect(selector("bücher.example") == "s3")
    }

    @Test func noRuleMeansUnsigned() throws {
        let table = try Self.table([("example.com", "example.com")])
        #expect(table.signers(forFromDomain: "example.org").isEmpty)
        #expect(table.signers(forFromDomain: "notexample.com").isEmpty)
    }

    @Test func unusableKeysAreReported() {
        var signing = RelayConfiguration.Signing()
        signing.keys["bad"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "s", keyFile: "/nonexistent.pem")
        signing.keys["wrong"] = RelayConfiguration.KeyEntry(
            domain: "example.com", selector: "t", keyFile: "mem", algorithm: .rsaSHA256)
        signing.table = [RelayConfiguration.TableEntry(from: "example.com", keys: ["bad", "wrong"])]
        do {
            _ = try SigningTable(signing, loadKey: { path in
                if path == "mem" { return Self.key }
                return try PrivateKey(contentsOfFile: path)
            })
            Issue.record("accepted unusable keys")
        } catch {
            #expect(error.description.contains("signing.keys.bad: cannot use key file /nonexistent.pem"))
            #expect(error.description.contains("signing.keys.wrong: mem is a ed25519 key, not for rsa-sha256"))
        }
    }
}

/// The relay's default loader insists on private key files.
@Suite("Signing table key hygiene")
struct SigningTableHygieneTests {
    @Test func worldReadableKeyIsRefusedByName() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("open-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try PrivateKey.generateEd25519().pemRepresentation().write(toFile: file, atomically: true, encoding: .utf8)
        #expect(chmod(file, 0o644) == 0)
        var signing = RelayConfiguration.Signing()
        signing.keys["open"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "s", keyFile: file)
        signing.table = [RelayConfiguration.TableEntry(from: "example.com", keys: ["open"])]
        do {
            _ = try SigningTable(signing)
            Issue.record("accepted a world-readable key")
        } catch {
            #expect(error.description.contains("signing.keys.open"))
            #expect(error.description.contains("readable by everyone"))
        }
        #expect(chmod(file, 0o600) == 0)
        _ = try SigningTable(signing)
    }
}
