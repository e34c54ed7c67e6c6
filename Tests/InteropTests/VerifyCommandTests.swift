import Foundation
import Testing

/// `signet verify` as a user runs it: the binary, a zone file from `signet keygen`, one Authentication-Results
/// style line per signature, then SPF (with --client-ip), DMARC; exit status 0 only when every signature passes.
@Suite("signet verify --dns-file and --key-file")
struct VerifyCommandTests {
    @Test("one result line per signature; exit 0 only when all pass; DNS timeout is temperror")
    func resultLines() throws {
        let signet = try Tools.signet
        let dir = try Tools.makeTemporaryDirectory("verify-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        var zone = ""
        var keys: [String: String] = [:]
        for (selector, algorithm) in [("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")] {
            let path = dir.appendingPathComponent("\(selector).pem").path
            let keygen = try Tools.run(
                signet,
                ["keygen", "--algorithm", algorithm, "--out", path, "--selector", selector, "--domain", "example.com"])
            try #require(keygen.status == 0, "keygen: \(keygen.stderr)")
            zone += keygen.text
            keys[selector] = path
        }
        zone += "slow._domainkey.example.com TIMEOUT\n"
        zone += "_dmarc.example.com TXT \"v=DMARC1; p=reject\"\n"
        zone += "example.com TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n"
        let zoneFile = dir.appendingPathComponent("zone.txt").path
        try zone.write(toFile: zoneFile, atomically: true, encoding: .utf8)

        let message = Data("From: Alice <alice@example.com>\nTo: bob@example.org\nSubject: cli\n\nHello\n".utf8)
        func sign(_ selectors: [(String, String)]) throws -> String {
            var arguments = ["sign", "--domain", "example.com"]
            for (selector, key) in selectors { arguments += ["--selector", selector, "--key", key] }
            let signed = try Tools.run(signet, arguments, stdin: message)
            try #require(signed.status == 0, "sign: \(signed.stderr)")
            let path = dir.appendingPathComponent("m-\(UUID().uuidString).eml").path
            try signed.stdout.write(to: URL(fileURLWithPath: path))
            return path
        }
        // Safe to force unwrap: both keys were made above.
        let good = try sign([("rsa", keys["rsa"]!), ("ed", keys["ed"]!)])
        var run = try Tools.run(signet, ["verify", "--dns-file", zoneFile, good])
        #expect(run.status == 0, "\(run.text)\(run.stderr)")
        #expect(
            run.text == """
                dkim=pass header.d=example.com header.s=rsa header.a=rsa-sha256
                dkim=pass header.d=example.com header.s=ed header.a=ed25519-sha256
                dmarc=pass (p=reject dis=none) header.from=example.com

                """)
        // With the SMTP client's identity, SPF too; a client outside the record fails SPF, DMARC still passes
        // through DKIM.
        run = try Tools.run(
            signet,
            [
                "verify", "--dns-file", zoneFile, "--client-ip", "192.0.2.7", "--helo", "mx.example.com",
                "--mail-from", "alice@example.com", good,
            ])
        #expect(run.status == 0, "\(run.text)\(run.stderr)")
        #expect(
            run.text.split(separator: "\n").dropFirst(2).first?.hasPrefix("spf=pass smtp.mailfrom=example.com") == true)
        run = try Tools.run(
            signet,
            ["verify", "--dns-file", zoneFile, "--client-ip", "198.51.100.1", "--mail-from", "alice@example.com", good])
        let spfLines = run.text.split(separator: "\n").dropFirst(2)
        #expect(spfLines.first?.hasPrefix("spf=fail smtp.mailfrom=example.com") == true, "\(run.text)")
        #expect(spfLines.last == "dmarc=pass (p=reject dis=none) header.from=example.com", "\(run.text)")

        let withTimeout = try sign([("rsa", keys["rsa"]!), ("slow", keys["rsa"]!)])
        run = try Tools.run(signet, ["verify", "--dns-file", zoneFile, withTimeout])
        #expect(run.status == 1)
        let lines = run.text.split(separator: "\n").dropLast()  // the DMARC line
        #expect(lines.count == 2)
        #expect(lines.first == "dkim=pass header.d=example.com header.s=rsa header.a=rsa-sha256")
        #expect(
            lines.last?.hasPrefix("dkim=temperror header.d=example.com header.s=slow header.a=rsa-sha256 (key lookup")
                == true,
            "\(run.text)")

        // The same keys as a key table (OpenDKIM's TestPublicKeys format) still work.
        let table = zone.split(separator: "\n").compactMap { line -> String? in
            guard let open = line.firstIndex(of: "("), !line.contains("TIMEOUT") else { return nil }
            let name = line.prefix { $0 != " " }
            return "\(name)\t\(line[open...].dropFirst().dropLast().trimmingCharacters(in: .whitespaces))"
        }
        let tableFile = dir.appendingPathComponent("keys.txt").path
        try (table.joined(separator: "\n") + "\n").write(toFile: tableFile, atomically: true, encoding: .utf8)
        run = try Tools.run(signet, ["verify", "--key-file", tableFile, good])
        #expect(run.status == 0, "\(run.text)\(run.stderr)")
        // No _dmarc record in a key table: DMARC says none.
        #expect(run.text.split(separator: "\n").count == 3)
        #expect(
            run.text.hasSuffix("dmarc=none reason=\"no DMARC record for example.com\" header.from=example.com\n"),
            "\(run.text)")

        let tampered = try String(contentsOfFile: good, encoding: .utf8).replacingOccurrences(
            of: "Hello", with: "Hullo")
        let tamperedPath = dir.appendingPathComponent("tampered.eml").path
        try tampered.write(toFile: tamperedPath, atomically: true, encoding: .utf8)
        run = try Tools.run(signet, ["verify", "--dns-file", zoneFile, tamperedPath])
        #expect(run.status == 1)
        #expect(
            run.text.split(separator: "\n").dropLast().allSatisfy {
                $0.hasPrefix("dkim=fail ") && $0.hasSuffix("(body hash did not verify)")
            }, "\(run.text)")
        #expect(
            run.text.split(separator: "\n").last?.hasPrefix("dmarc=fail (p=reject dis=reject)") == true, "\(run.text)")

        // Without a zone file, real DNS through libunbound: a server that does not answer gives temperror.
        let (silent, port) = try Tools.silentUDPSocket()
        defer { close(silent) }
        run = try Tools.run(
            signet, ["verify", "--dns-server", "127.0.0.1@\(port)", "--dns-timeout", "1", good], timeout: 60)
        #expect(run.status == 1)
        #expect(run.text.hasPrefix("dkim=temperror header.d=example.com header.s=rsa"), "\(run.text)\(run.stderr)")
    }
}
