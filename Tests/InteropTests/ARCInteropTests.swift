import Foundation
import Testing

/// Messages sealed by `signet seal` must validate with cv=pass under dkimpy's arc_verify and Mail::DKIM's
/// ARC verifier, through a three-hop chain that a list modifies between hops (issue 6).
@Suite("ARC sealing: dkimpy and Mail::DKIM validate signet's chains")
struct ARCInteropTests {
    static let message = """
        From: Author <author@origin.example>
        To: list@lists.a.example
        Subject: Weekly report
        Date: Sun, 29 Nov 2026 12:00:00 +0000
        Message-ID: <report-1@origin.example>
        MIME-Version: 1.0
        Content-Type: text/plain; charset=us-ascii
        Authentication-Results: mx.a.example; dkim=pass header.d=origin.example;
          spf=pass smtp.mailfrom=origin.example

        Hello list,
        the numbers are in.
        -- 
        Author

        """.replacingOccurrences(of: "\n", with: "\r\n")

    /// What a mailing list does: a subject tag and a footer.
    static func listModify(_ data: Data, tag: String, footer: String) -> Data {
        var text = String(decoding: data, as: UTF8.self)
        text = text.replacingOccurrences(of: "\r\nSubject: ", with: "\r\nSubject: [\(tag)] ")
        text += "_______________\r\n\(footer)\r\n"
        return Data(text.utf8)
    }

    struct Keys {
        var keyFile: String  // `name<TAB>value` for the Python and Perl scripts
        var zoneFile: String  // a zone file for `signet seal --dns-file`
        var paths: [String: String]  // domain -> PEM path
    }

    static func makeKeys(in dir: URL, domains: [String], signet: String) throws -> Keys {
        var keyLines: [String] = []
        var zoneLines: [String] = []
        var paths: [String: String] = [:]
        for domain in domains {
            let path = dir.appendingPathComponent("\(domain).pem").path
            let keygen = try Tools.run(
                signet, ["keygen", "--algorithm", "rsa-sha256", "--out", path, "--selector", "arc"])
            try #require(keygen.status == 0, "signet keygen failed: \(keygen.stderr)")
            paths[domain] = path
            // The record from openssl, not from Signet, so a wrong export could not agree by accident.
            let value = "v=DKIM1; k=rsa; p=\(try Tools.publicKeyBase64(privateKeyPEM: path))"
            keyLines.append("arc._domainkey.\(domain)\t\(value)")
            var chunks: [String] = []
            var rest = Substring(value)
            while !rest.isEmpty {
                chunks.append("\"\(rest.prefix(200))\"")
                rest = rest.dropFirst(200)
            }
            zoneLines.append("arc._domainkey.\(domain). TXT \(chunks.joined(separator: " "))")
        }
        let keyFile = dir.appendingPathComponent("keys.txt").path
        let zoneFile = dir.appendingPathComponent("keys.zone").path
        try (keyLines.joined(separator: "\n") + "\n").write(toFile: keyFile, atomically: true, encoding: .utf8)
        try (zoneLines.joined(separator: "\n") + "\n").write(toFile: zoneFile, atomically: true, encoding: .utf8)
        return Keys(keyFile: keyFile, zoneFile: zoneFile, paths: paths)
    }

    /// Each verifier's verdict per file: "pass", "fail" or "none" (lowercased), with its detail.
    static func verdicts(keyFile: String, files: [String]) throws -> [String: [String: String]] {
        var all: [String: [String: String]] = [:]
        for (name, executable, script) in [
            ("dkimpy", "/usr/bin/python3", "arc_verify_dkimpy.py"),
            ("Mail::DKIM", "/usr/bin/perl", "arc_verify_maildkim.pl"),
        ] {
            let output = try Tools.run(
                executable, [Tools.interopScripts.appendingPathComponent(script).path, keyFile] + files)
            try #require(
                output.status == 0,
                "\(name) did not run (install python3-dkim python3-authres libmail-dkim-perl): \(output.stderr)")
            for line in output.text.split(separator: "\n") {
                let parts = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard parts.count >= 2 else { continue }
                all[name, default: [:]][parts[0]] = parts[1].lowercased() + (parts.count > 2 ? " \(parts[2])" : "")
            }
        }
        return all
    }

    @Test("three hops, modified between hops: every seal passes both verifiers")
    func threeHops() throws {
        let signet = try Tools.signet
        let dir = try Tools.makeTemporaryDirectory("arc-interop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let keys = try Self.makeKeys(in: dir, domains: ["a.example", "b.example"], signet: signet)

        func seal(
            _ input: String, received: String?, domain: String, authservID: String, output: String
        ) throws
            -> String
        {
            var arguments = [
                "seal", "--domain", domain, "--selector", "arc", "--key", keys.paths[domain]!,
                "--authserv-id", authservID, "--dns-file", keys.zoneFile, "--output", output,
                "--results", "dmarc=pass header.from=origin.example",
            ]
            if let received { arguments += ["--received", received] }
            let run = try Tools.run(signet, arguments + [input])
            try #require(run.status == 0, "signet seal failed: \(run.stderr)")
            return try String(contentsOfFile: output, encoding: .utf8)
        }

        let original = dir.appendingPathComponent("0-original.eml").path
        try Data(Self.message.utf8).write(to: URL(fileURLWithPath: original))
        // Hop 1: a.example seals the message as it came from the author.
        let hop1 = dir.appendingPathComponent("1-sealed.eml").path
        let sealed1 = try seal(original, received: nil, domain: "a.example", authservID: "mx.a.example", output: hop1)
        #expect(sealed1.hasPrefix("ARC-Seal:"))
        #expect(sealed1.contains("cv=none"))

        // Hop 2: the list at b.example validates what it received, tags the subject, adds a footer, seals.
        let modified2 = dir.appendingPathComponent("2-modified.eml").path
        try Self.listModify(try Data(contentsOf: URL(fileURLWithPath: hop1)), tag: "list", footer: "List footer")
            .write(to: URL(fileURLWithPath: modified2))
        let hop2 = dir.appendingPathComponent("2-sealed.eml").path
        let sealed2 = try seal(
            modified2, received: hop1, domain: "b.example", authservID: "lists.b.example", output: hop2)
        #expect(sealed2.contains("i=2"))

        // Hop 3: modified again, sealed by a.example.
        let modified3 = dir.appendingPathComponent("3-modified.eml").path
        try Self.listModify(try Data(contentsOf: URL(fileURLWithPath: hop2)), tag: "fwd", footer: "Forwarded")
            .write(to: URL(fileURLWithPath: modified3))
        let hop3 = dir.appendingPathComponent("3-sealed.eml").path
        let sealed3 = try seal(modified3, received: hop2, domain: "a.example", authservID: "mx.a.example", output: hop3)
        let firstField = sealed3.components(separatedBy: "\r\n").prefix { !$0.hasPrefix("ARC-Message-Signature") }
            .joined()
        #expect(firstField.contains("i=3") && firstField.contains("cv=pass"), "third seal: \(firstField)")

        let verdicts = try Self.verdicts(keyFile: keys.keyFile, files: [hop1, hop2, hop3, modified2])
        for verifier in ["dkimpy", "Mail::DKIM"] {
            for file in [hop1, hop2, hop3] {
                let verdict = verdicts[verifier]?[file] ?? "missing"
                #expect(verdict.hasPrefix("pass"), "\(verifier) on \(file): \(verdict)")
            }
            // A modified message whose newest AMS no longer matches must fail: the verifiers really check.
            let verdict = verdicts[verifier]?[modified2] ?? "missing"
            #expect(verdict.hasPrefix("fail"), "\(verifier) on the modified, unsealed message: \(verdict)")
        }
    }
}
