import ArgumentParser
import DKIM
import Foundation
import Keys
import MailAuth
import NIOCore
import Testing

@testable import SignetCLI

/// `signet seal` in-process: two hops with a change between them, the ARC line for `signet verify`, and the
/// refusals.
@Suite("signet seal")
struct SealCommandTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("signet-seal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func write(_ name: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path(name)))
        return path(name)
    }

    /// Runs a command line (async commands included); returns the error message it failed with, or nil.
    func run(_ arguments: [String]) async -> String? {
        do {
            var command = try SignetCommand.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return nil
        } catch let error as CLIError {
            return error.description
        } catch {
            return SignetCommand.message(for: error)
        }
    }

    @Test func twoHopsThenVerifyLine() async throws {
        var zone = ""
        var keys: [String: String] = [:]
        for (domain, algorithm) in [("a.example", "rsa-sha256"), ("b.example", "ed25519-sha256")] {
            let key = path("\(domain).pem")
            #expect(await run(["keygen", "--algorithm", algorithm, "--out", key]) == nil)
            keys[domain] = key
            zone += dnsRecordText(for: try loadKey(key).publicKey, selector: "arc", domain: domain) + "\n"
        }
        let zoneFile = try write("keys.zone", zone)
        let original = try write(
            "m.eml", "From: a@origin.example\nTo: list@b.example\nSubject: hi\n\nbody\n")
        let hop1 = path("hop1.eml")
        #expect(
            await run([
                "seal", "--domain", "a.example", "--selector", "arc", "--key", keys["a.example"]!,
                "--authserv-id", "mx.a.example", "--results", "spf=pass smtp.mailfrom=origin.example",
                "--timestamp", "1700000000", "--output", hop1, original,
            ]) == nil)
        let sealed1 = try String(contentsOfFile: hop1, encoding: .utf8)
        #expect(sealed1.hasPrefix("ARC-Seal: "))
        #expect(sealed1.contains("ARC-Authentication-Results: i=1; mx.a.example;\r\n arc=none; spf=pass"))

        // A chain on the input needs its keys.
        let refused = await run([
            "seal", "--domain", "b.example", "--selector", "arc", "--key", keys["b.example"]!,
            "--authserv-id", "lists.b.example", hop1,
        ])
        #expect(refused?.contains("--dns-file") == true, "\(refused ?? "accepted")")

        let modified = try write(
            "modified.eml", sealed1.replacingOccurrences(of: "Subject: hi", with: "Subject: [l] hi"))
        let hop2 = path("hop2.eml")
        #expect(
            await run([
                "seal", "--domain", "b.example", "--selector", "arc", "--key", keys["b.example"]!,
                "--authserv-id", "lists.b.example", "--dns-file", zoneFile, "--received", hop1,
                "--output", hop2, modified,
            ]) == nil)
        let sealed2 = try WholeMessage(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: hop2))))
        let resolver = try StaticZone(parsing: zone)
        #expect(await arcVerificationLine(for: sealed2, resolver: resolver) == "arc=pass (i=2 oldest-pass=2)")
        let unsealed = try WholeMessage(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: modified))))
        #expect(await arcVerificationLine(for: unsealed, resolver: resolver).hasPrefix("arc=fail ("))
    }
}
