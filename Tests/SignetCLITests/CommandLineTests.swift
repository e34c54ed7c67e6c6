import ArgumentParser
import Foundation
import Keys
import Testing

@testable import SignetCLI

/// The offline commands, run in-process: clear errors for bad input, files written as promised.
@Suite("signet command line")
struct CommandLineTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("signet-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// Runs a command line; returns the error message it failed with, or nil.
    func run(_ arguments: [String]) -> String? {
        do {
            var command = try SignetCommand.parseAsRoot(arguments)
            try command.run()
            return nil
        } catch {
            return Self.message(error)
        }
    }

    /// What a failed command line says.
    static func message(_ error: any Error) -> String {
        (error as? CLIError)?.description ?? SignetCommand.message(for: error)
    }

    /// Runs a command line that may be async (`verify`); returns the error message it failed with, or nil.
    func runAsync(_ arguments: [String]) async -> String? {
        do {
            var command = try SignetCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return nil
        } catch {
            return Self.message(error)
        }
    }

    func makeKey(_ name: String, _ algorithm: String = "ed25519-sha256") throws -> String {
        let key = path(name)
        #expect(run(["keygen", "--algorithm", algorithm, "--out", key]) == nil)
        return key
    }

    @Test("keygen writes a 0600 key and refuses to overwrite it or to make a short key")
    func keygen() throws {
        let key = try makeKey("k.pem")
        let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(run(["keygen", "--out", key])?.contains("already exists") == true)
        #expect(run(["keygen", "--bits", "512", "--out", path("short.pem")])?.contains("1024 to 4096") == true)
        #expect(run(["keygen", "--algorithm", "dsa", "--out", path("x.pem")])?.contains("unknown algorithm") == true)
    }

    @Test("sign refuses unusable keys and names the file")
    func badKeys() throws {
        let message = try write("m.eml", "From: a@example.com\r\n\r\nbody\r\n")
        let missing = run(["sign", "--domain", "example.com", "--selector", "s", "--key", path("nope.pem"), message])
        #expect(missing?.contains("nope.pem") == true)
        let garbage = try write("garbage.pem", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
        let bad = run(["sign", "--domain", "example.com", "--selector", "s", "--key", garbage, message])
        #expect(bad?.contains("garbage.pem") == true)
        let key = try makeKey("rsa.pem", "rsa-sha256")
        let mismatch = run([
            "sign", "--domain", "example.com", "--selector", "s", "--key", key, "--algorithm", "ed25519-sha256",
            message,
        ])
        #expect(mismatch?.contains("rsa") == true)
    }

    @Test(
        "sign refuses messages it cannot sign safely",
        arguments: [
            ("no From", "To: b@example.org\r\n\r\nbody\r\n", "From"),
            ("two From fields", "From: a@example.com\r\nFrom: c@example.com\r\n\r\nx\r\n", "From"),
            ("a NUL byte", "From: a@example.com\r\n\r\nnul\u{0}byte\r\n", "NUL"),
            ("a header line without a colon", "From: a@example.com\r\nnot a header\r\n\r\nx\r\n", "colon"),
        ]
    )
    func badMessages(name: String, text: String, mentions: String) throws {
        let key = try makeKey("k.pem")
        let message = try write("m.eml", text)
        let error = run([
            "sign", "--domain", "example.com", "--selector", "s", "--key", key, message, "--output", path("out.eml"),
        ])
        #expect(error?.localizedCaseInsensitiveContains(mentions) == true, "\(name): \(error ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: path("out.eml")), "\(name): output written despite the error")
    }

    @Test("sign then verify round trip through files, and verify fails on a tampered copy")
    func roundTrip() async throws {
        let rsa = try makeKey("rsa.pem", "rsa-sha256")
        let ed = try makeKey("ed.pem")
        let message = try write("m.eml", "From: a@example.com\nSubject: hi\n\nbare LF body\n")
        let out = path("signed.eml")
        #expect(
            run([
                "sign", "--domain", "example.com", "--selector", "r", "--key", rsa, "--selector", "e", "--key", ed,
                message, "--output", out,
            ]) == nil
        )
        let signed = try String(contentsOfFile: out, encoding: .utf8)
        #expect(signed.components(separatedBy: "DKIM-Signature:").count == 3)
        #expect(signed.hasSuffix("Subject: hi\r\n\r\nbare LF body\r\n"))

        var zone = ""
        for (selector, key) in [("r", rsa), ("e", ed)] {
            var command = try DNSRecordCommand.parse(["--selector", selector, "--key", key, "--domain", "example.com"])
            _ = command
            let record = dnsRecordText(for: try loadKey(key).publicKey, selector: selector, domain: "example.com")
            #expect(record.hasPrefix("\(selector)._domainkey.example.com. IN TXT ("))
            zone += record + "\n"
            command = try DNSRecordCommand.parse(["--selector", selector, "--key", key])
            #expect(throws: Never.self) { try command.run() }
        }
        let keys = try write("keys.zone", zone)
        #expect(await runAsync(["verify", "--key-file", keys, out]) == nil)
        #expect(await runAsync(["verify", "--dns-file", keys, out]) == nil)
        #expect(await runAsync(["verify", out]) != nil, "neither --dns-file nor --key-file")
        let tampered = try write("tampered.eml", signed.replacingOccurrences(of: "bare LF body", with: "bare LF bodY"))
        #expect(await runAsync(["verify", "--key-file", keys, tampered]) != nil)
        #expect(await runAsync(["verify", "--dns-file", keys, tampered]) != nil)
    }
}
