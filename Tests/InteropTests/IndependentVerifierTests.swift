import Foundation
import Testing

/// How one interop run signs: which keys, which canonicalization, which extra flags.
struct SigningConfig: Sendable, CustomTestStringConvertible {
    var name: String
    var keys: [String]  // "rsa" and/or "ed"
    var canonicalization: String
    var extraArguments: [String] = []
    var testDescription: String { name }

    static let all: [SigningConfig] = [
        SigningConfig(name: "rsa relaxed/relaxed", keys: ["rsa"], canonicalization: "relaxed/relaxed"),
        SigningConfig(name: "rsa simple/simple", keys: ["rsa"], canonicalization: "simple/simple"),
        SigningConfig(name: "ed25519 relaxed/relaxed", keys: ["ed"], canonicalization: "relaxed/relaxed"),
        SigningConfig(name: "ed25519 simple/simple", keys: ["ed"], canonicalization: "simple/simple"),
        SigningConfig(name: "dual rsa+ed25519 relaxed/simple", keys: ["rsa", "ed"], canonicalization: "relaxed/simple"),
        SigningConfig(
            name: "rsa simple/relaxed with i=, l=, h= and no oversigning",
            keys: ["rsa"],
            canonicalization: "simple/relaxed",
            extraArguments: ["--identity", "@example.com", "--body-length", "--headers", "from:to:subject:date", "--no-oversign"]
        ),
    ]
}

/// Messages signed by `signet sign` must verify with three independent implementations, and tampered copies
/// must fail with all of them (issue 2's interoperability requirement).
@Suite("Independent verifiers: dkimpy, OpenDKIM, Mail::DKIM")
struct IndependentVerifierTests {
    static let domain = "example.com"

    @Test("signet-signed corpus passes, tampered copies fail", arguments: SigningConfig.all)
    func corpus(config: SigningConfig) throws {
        let signet = try Tools.signet
        let dir = try Tools.makeTemporaryDirectory("interop")
        defer { try? FileManager.default.removeItem(at: dir) }

        // Keys come from `signet keygen`; their DNS records from openssl, so a wrong public key export by
        // Signet could not make the verifiers agree by accident.
        var keyLines: [String] = []
        var keyPaths: [String: String] = [:]
        for (selector, algorithm) in [("rsa", "rsa-sha256"), ("ed", "ed25519-sha256")] {
            let path = dir.appendingPathComponent("\(selector).pem").path
            let keygen = try Tools.run(signet, ["keygen", "--algorithm", algorithm, "--out", path, "--selector", selector])
            try #require(keygen.status == 0, "signet keygen failed: \(keygen.stderr)")
            keyPaths[selector] = path
            let spki = try Tools.publicKeyBase64(privateKeyPEM: path)
            let p: String
            if selector == "ed" {
                // An Ed25519 SubjectPublicKeyInfo is a fixed 12-byte prefix and the raw 32-byte key (RFC 8410).
                let der = try #require(Data(base64Encoded: spki))
                p = der.suffix(32).base64EncodedString()
            } else {
                p = spki
            }
            let k = selector == "ed" ? "ed25519" : "rsa"
            keyLines.append("\(selector)._domainkey.\(Self.domain)\tv=DKIM1; k=\(k); p=\(p)")
        }
        let keyFile = dir.appendingPathComponent("keys.txt")
        try (keyLines.joined(separator: "\n") + "\n").write(to: keyFile, atomically: true, encoding: .utf8)

        var signedFiles: [String] = []
        var tamperedFiles: [String] = []
        for (name, bytes) in Corpus.all {
            var arguments = ["sign", "--domain", Self.domain, "--canonicalization", config.canonicalization]
            for selector in config.keys {
                // Safe to force unwrap: both keys were made above.
                arguments += ["--selector", selector, "--key", keyPaths[selector]!]
            }
            arguments += config.extraArguments
            let signed = try Tools.run(signet, arguments, stdin: Data(bytes))
            #expect(signed.status == 0, "signet sign failed for \(name): \(signed.stderr)")
            guard signed.status == 0 else { continue }
            let signedPath = dir.appendingPathComponent("\(name).eml").path
            try signed.stdout.write(to: URL(fileURLWithPath: signedPath))
            signedFiles.append(signedPath)
            assertOnlyPrependedFields(original: bytes, signed: signed.stdout, name: name)

            let headerTampered = dir.appendingPathComponent("\(name).header-tampered.eml").path
            try Self.tamperHeader(signed.stdout).write(to: URL(fileURLWithPath: headerTampered))
            tamperedFiles.append(headerTampered)
            // With l=0 (an empty body) any body content verifies: the very weakness l= has.
            if !String(decoding: signed.stdout.prefix(2048), as: UTF8.self).contains("l=0;") {
                let bodyTampered = dir.appendingPathComponent("\(name).body-tampered.eml").path
                try Self.tamperBody(signed.stdout).write(to: URL(fileURLWithPath: bodyTampered))
                tamperedFiles.append(bodyTampered)
            }
        }
        #expect(signedFiles.count == Corpus.all.count)
        #expect(Corpus.all.count >= 30)

        let verifiers: [(name: String, executable: String, script: String, algorithms: Set<String>)] = [
            ("dkimpy", "/usr/bin/python3", "dkimpy_verify.py", ["rsa-sha256", "ed25519-sha256"]),
            ("OpenDKIM", "/bin/bash", "opendkim_verify.sh", ["rsa-sha256", "ed25519-sha256"]),
            // Debian 12's Mail::DKIM cannot check ed25519-sha256 (PEERS.md), so only RSA is asked of it.
            ("Mail::DKIM", "/usr/bin/perl", "maildkim_verify.pl", ["rsa-sha256"]),
        ]
        // dkimpy refuses obsolete syntax that RFC 5322 §4 says to accept; the other verifiers check these.
        let unparsableBy: [String: Set<String>] = ["dkimpy": ["space-before-colon"]]
        let ourSelectors = Set(config.keys)
        for verifier in verifiers {
            let script = Tools.interopScripts.appendingPathComponent(verifier.script).path
            let output = try Tools.run(verifier.executable, [script, keyFile.path] + signedFiles + tamperedFiles)
            try #require(output.status == 0, "\(verifier.name) did not run: \(output.stderr)")
            let results = VerifierResult.parse(output.text).filter {
                $0.domain.lowercased() == Self.domain && ourSelectors.contains($0.selector)
            }
            let allResults = VerifierResult.parse(output.text)
            for file in signedFiles {
                let base = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                if unparsableBy[verifier.name, default: []].contains(base) {
                    #expect(allResults.filter { $0.file == file }.map(\.result) == ["unparsable"], "\(verifier.name) \(base)")
                    continue
                }
                // `opendkim -t` rebuilds each field milter-style as "Name: value", so with simple header
                // canonicalization it cannot verify a field written "Name:value" or "Name :" (checked by hand:
                // "Subject: " passes, "Subject:" and "Subject:x" fail). Relaxed configurations still cover these files.
                if verifier.name == "OpenDKIM" && config.canonicalization.hasPrefix("simple/")
                    && ["empty-values", "space-before-colon"].contains(base)
                {
                    continue
                }
                for selector in ourSelectors {
                    let algorithm = selector == "ed" ? "ed25519-sha256" : "rsa-sha256"
                    guard verifier.algorithms.contains(algorithm) else { continue }
                    let mine = results.filter { $0.file == file && $0.selector == selector }
                    #expect(mine.count == 1, "\(verifier.name): expected one \(algorithm) result for \(file), got \(mine)")
                    for result in mine {
                        #expect(
                            result.result == "pass",
                            "\(verifier.name) \(config.name): \(URL(fileURLWithPath: file).lastPathComponent) s=\(selector) → \(result.result) \(result.detail)"
                        )
                    }
                }
            }
            for file in tamperedFiles {
                let base = URL(fileURLWithPath: file).lastPathComponent.split(separator: ".").first.map(String.init) ?? ""
                if unparsableBy[verifier.name, default: []].contains(base) { continue }
                let mine = results.filter { $0.file == file }
                #expect(!mine.isEmpty, "\(verifier.name): no result for tampered \(file)")
                for result in mine where verifier.algorithms.contains(result.algorithm) {
                    #expect(
                        result.result == "fail",
                        "\(verifier.name) \(config.name): tampered \(URL(fileURLWithPath: file).lastPathComponent) s=\(result.selector) → \(result.result)"
                    )
                }
            }
        }

        // Signet's own offline verifier agrees with them.
        for file in signedFiles {
            let verify = try Tools.run(signet, ["verify", "--key-file", keyFile.path, file])
            let ours = verify.text.split(separator: "\n").filter { $0.contains("header.d=\(Self.domain)") }
            #expect(ours.count == config.keys.count && ours.allSatisfy { $0.hasPrefix("dkim=pass") }, "signet verify \(file): \(verify.text)")
        }
        for file in tamperedFiles {
            let verify = try Tools.run(signet, ["verify", "--key-file", keyFile.path, file])
            #expect(verify.status == 1, "signet verify accepted tampered \(file): \(verify.text)")
        }
    }

    /// The signed output is the input (line endings normalized to CRLF) with fields prepended, nothing else.
    func assertOnlyPrependedFields(original: [UInt8], signed: Data, name: String) {
        var normalized: [UInt8] = []
        var previous: UInt8 = 0
        for (index, byte) in original.enumerated() {
            if byte == 0x0A && previous != 0x0D { normalized.append(0x0D) }
            normalized.append(byte)
            if byte == 0x0D && (index + 1 == original.count || original[index + 1] != 0x0A) { normalized.append(0x0A) }
            previous = byte
        }
        // A last line without CRLF is completed (SMTP cannot carry it otherwise).
        if !normalized.isEmpty && !normalized.suffix(2).elementsEqual([0x0D, 0x0A]) { normalized += [0x0D, 0x0A] }
        let signedBytes = [UInt8](signed)
        #expect(signedBytes.count > normalized.count, "\(name): nothing was added")
        #expect(Array(signedBytes.suffix(normalized.count)) == normalized, "\(name): message bytes changed beyond the added header")
        let added = String(decoding: signedBytes.prefix(signedBytes.count - normalized.count), as: UTF8.self)
        #expect(added.hasPrefix("DKIM-Signature: "), "\(name): the added bytes are not a DKIM-Signature field")
        for line in added.split(separator: "\r\n") {
            #expect(line.utf8.count <= 78, "\(name): signature line longer than 78 columns: \(line)")
        }
    }

    /// Inserts a display name into the author field: a change every verifier must notice.
    static func tamperHeader(_ signed: Data) -> Data {
        var text = [UInt8](signed)
        var lineStart = 0
        while lineStart < text.count {
            let prefix = text[lineStart..<min(lineStart + 5, text.count)].map { $0 | 0x20 }
            if prefix == Array("from:".utf8) {
                text.insert(contentsOf: Array(" Mallory".utf8), at: lineStart + 5)
                return Data(text)
            }
            guard let newline = text[lineStart...].firstIndex(of: 0x0A) else { break }
            lineStart = newline + 1
        }
        return Data(text + Array("From: mallory@example.com\r\n".utf8))
    }

    /// Puts a line at the start of the body (or gives a body to a message without one).
    static func tamperBody(_ signed: Data) -> Data {
        let bytes = [UInt8](signed)
        let separator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<index + 4]) == separator {
                return Data(bytes[..<(index + 4)] + Array("tampered\r\n".utf8) + bytes[(index + 4)...])
            }
        }
        return Data(bytes + Array("\r\ntampered\r\n".utf8))
    }
}
