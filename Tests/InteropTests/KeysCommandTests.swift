import Foundation
import Testing

/// `signet keys list` and `signet keys check` as an operator runs them before and after publishing DNS records:
/// against a zone file for every verdict, and through libunbound against a real authoritative server (NSD).
@Suite("signet keys list / check", .serialized)
struct KeysCommandTests {
    @Test(.timeLimit(.minutes(5)))
    func listAndCheckEveryVerdict() throws {
        let signet = try Tools.signet
        let dir = try Tools.makeTemporaryDirectory("keys-cli")
        defer { try? FileManager.default.removeItem(at: dir) }
        var records: [String: String] = [:]
        for (name, algorithm) in [("rsa", "rsa-sha256"), ("ed", "ed25519-sha256"), ("spare", "rsa-sha256")] {
            let keygen = try Tools.run(
                signet,
                [
                    "keygen", "--algorithm", algorithm, "--out", dir.appendingPathComponent("\(name).pem").path,
                    "--selector", name, "--domain", "example.com",
                ])
            try #require(keygen.status == 0, "\(keygen.stderr)")
            records[name] = keygen.text
        }
        let config = dir.appendingPathComponent("signet.yaml")
        try """
        next_hop: 127.0.0.1:2525
        signing:
          keys:
            ok: {domain: example.com, selector: rsa, key_file: \(dir.path)/rsa.pem, expires: 2027-06-30}
            ed: {domain: example.com, selector: ed, key_file: \(dir.path)/ed.pem, algorithm: ed25519-sha256}
            missing: {domain: example.org, selector: rsa, key_file: \(dir.path)/rsa.pem}
            mismatch: {domain: example.net, selector: spare, key_file: \(dir.path)/rsa.pem}
            revoked: {domain: example.edu, selector: old, key_file: \(dir.path)/rsa.pem}
            slow: {domain: slow.example, selector: rsa, key_file: \(dir.path)/rsa.pem}
          table:
            - {from: example.com, keys: [ok, ed]}
        """.write(to: config, atomically: true, encoding: .utf8)

        let list = try Tools.run("/usr/bin/env", ["-u", "SIGNET_BIN", signet, "keys", "list", config.path])
        #expect(list.status == 0, "\(list.stderr)")
        let lines = list.text.split(separator: "\n").map(String.init)
        let okLine = try #require(lines.first { $0.hasPrefix("ok ") })
        #expect(okLine.contains("d=example.com s=rsa  rsa-2048  backend=in-process  SHA256:"))
        #expect(okLine.hasSuffix("expires=2027-06-30"))
        // The record `keys list` prints is the one `keygen` printed for the same key.
        #expect(lines.contains("  " + records["rsa"]!.trimmingCharacters(in: .whitespacesAndNewlines)), "\(list.text)")

        // The spare key's record at example.net (another key), an empty p= at example.edu, a timeout for slow.
        let spare = records["spare"]!.replacingOccurrences(
            of: "spare._domainkey.example.com.", with: "spare._domainkey.example.net.")
        let zone =
            records["rsa"]! + records["ed"]! + spare + """
                old._domainkey.example.edu TXT "v=DKIM1; k=rsa; p="
                rsa._domainkey.slow.example TIMEOUT

                """
        let zoneFile = dir.appendingPathComponent("zone.txt")
        try zone.write(to: zoneFile, atomically: true, encoding: .utf8)
        let check = try Tools.run(
            "/usr/bin/env", ["-u", "SIGNET_BIN", signet, "keys", "check", config.path, "--dns-file", zoneFile.path])
        #expect(check.status == 1)
        let verdicts = Dictionary(
            uniqueKeysWithValues: check.text.split(separator: "\n").map { line in
                (String(line.prefix { $0 != " " }), String(line))
            })
        #expect(verdicts["ok"]?.hasSuffix("rsa._domainkey.example.com  OK") == true, "\(check.text)")
        #expect(verdicts["ed"]?.hasSuffix("  OK") == true, "\(check.text)")
        #expect(verdicts["missing"]?.contains("MISSING") == true, "\(check.text)")
        #expect(verdicts["mismatch"]?.contains("MISMATCH (DNS publishes SHA256:") == true, "\(check.text)")
        #expect(verdicts["revoked"]?.contains("REVOKED") == true, "\(check.text)")
        #expect(verdicts["slow"]?.contains("TEMPERROR") == true, "\(check.text)")
    }

    /// The same check through libunbound (the default, real DNS) against NSD serving the records.
    @Test(.timeLimit(.minutes(5)))
    func checkThroughRealDNS() throws {
        let signet = try Tools.signet
        let dir = try Tools.makeTemporaryDirectory("keys-dns")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keygen = try Tools.run(
            signet,
            [
                "keygen", "--algorithm", "ed25519-sha256", "--out", dir.appendingPathComponent("ed.pem").path,
                "--selector", "ed", "--domain", "example.com",
            ])
        try #require(keygen.status == 0, "\(keygen.stderr)")
        let zone = """
            $ORIGIN example.com.
            $TTL 300
            @ IN SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 300
            @ IN NS ns.example.com.
            ns IN A 127.0.0.1
            \(keygen.text)
            """
        let server = try AuthoritativeDNS(zones: ["example.com": zone])
        defer { server.stop() }
        let config = dir.appendingPathComponent("signet.yaml")
        try """
        next_hop: 127.0.0.1:2525
        signing:
          keys:
            ed: {domain: example.com, selector: ed, key_file: \(dir.path)/ed.pem, algorithm: ed25519-sha256}
            gone: {domain: example.com, selector: nothere, key_file: \(dir.path)/ed.pem, algorithm: ed25519-sha256}
          table:
            - {from: example.com, keys: [ed]}
        """.write(to: config, atomically: true, encoding: .utf8)
        let check = try Tools.run(
            "/usr/bin/env",
            [
                "-u", "SIGNET_BIN", signet, "keys", "check", config.path, "--dns-server", server.address,
                "--dns-timeout", "3",
            ])
        #expect(check.status == 1, "\(check.text)\(check.stderr)")
        #expect(check.text.contains("ed  ed._domainkey.example.com  OK"), "\(check.text)\(check.stderr)")
        #expect(check.text.contains("gone  nothere._domainkey.example.com  MISSING"), "\(check.text)\(check.stderr)")
    }
}
