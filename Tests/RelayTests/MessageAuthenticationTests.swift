import ARC
import DKIM
import DKIMCore
import Foundation
import Keys
import MailAuth
import MailMessage
import NIOCore
import Testing

@testable import Relay

/// The relay's verification and sealing path without sockets: the assembler streams a message in random chunks,
/// the checks' body hashes share its one `BodyHasherSet`, the key lookups answer from a `StaticZone`, and the
/// sealed result validates with `ARCValidator`.
@Suite("Message pipeline: verification and sealing on the streaming path")
struct MessageAuthenticationTests {
    static let sealKey = try! PrivateKey.generateRSA(bits: 2048)

    static var zone: StaticZone {
        var zone = StaticZone()
        let rsa = MessageAssemblerTests.rsa.publicKey.dkimKeyData
        let ed = MessageAssemblerTests.ed.publicKey.dkimKeyData
        zone.addTXT("rsa1._domainkey.example.com", DKIMKeyRecord(keyType: "rsa", publicKeyData: rsa).text)
        zone.addTXT("ed1._domainkey.example.com", DKIMKeyRecord(keyType: "ed25519", publicKeyData: ed).text)
        zone.addTXT(
            "arc1._domainkey.lists.example.org",
            DKIMKeyRecord(keyType: "rsa", publicKeyData: sealKey.publicKey.dkimKeyData).text)
        zone.addTXT("_dmarc.example.com", "v=DMARC1; p=reject")
        return zone
    }

    static func authenticator(seal: Bool) throws -> MessageAuthenticator {
        var settings = RelayConfiguration.Authentication()
        settings.addResults = true
        var rules: [SealingPolicy.Rule] = []
        if seal {
            let sealer = try ARCSealer(domain: "lists.example.org", selector: "arc1", key: sealKey)
            rules = [
                SealingPolicy.Rule(rule: RelayConfiguration.ARCRule(key: "arc"), sealer: sealer, authservID: "mx.test")
            ]
        }
        return MessageAuthenticator(
            resolver: zone, settings: settings, hostname: "mx.test", sealing: SealingPolicy(rules: rules))
    }

    /// A message signed by the relay's own pipeline (rsa1 and ed1 for example.com).
    static func signedMessage(pool: SignerPool) async throws -> String {
        let (out, _) = try await MessageAssemblerTests.run(MessageAssemblerTests.message, seed: 7, pool: pool)
        return String(buffer: out)
    }

    /// Streams `text` through an assembler that signs nothing but verifies (and seals when asked).
    static func verify(
        _ text: String, seed: UInt64, seal: Bool, pool: SignerPool
    ) async throws
        -> (AssembledMessage, AuthenticationOutcome)
    {
        let authenticator = try authenticator(seal: seal)
        let request = SealingPolicy.Request(listener: nil, recipients: ["a@example.net"], sender: "", listID: nil)
        var assembler = MessageAssembler(
            signingTable: try SigningTable(RelayConfiguration.Signing()), spoolThreshold: 1 << 20,
            spoolDirectory: NSTemporaryDirectory(),
            beginAuthentication: { header in
                authenticator.begin(
                    header: header, now: MessageAssemblerTests.now, spf: nil,
                    seal: authenticator.sealing.match(request))
            })
        var random = SplitMix64(seed: seed)
        var bytes = ByteBuffer(string: text)
        while bytes.readableBytes > 0 {
            let size = min(bytes.readableBytes, 1 + Int(random.next() % 17))
            try assembler.append(bytes.readSlice(length: size)!)
        }
        let assembled = try assembler.finish(now: MessageAssemblerTests.now)
        let authentication = try #require(assembled.authentication)
        // A generous budget: the zone answers at once, but in a test run the shared cooperative threads may be
        // held by other suites for seconds (the budget itself is tested end to end in RelayAuthenticationTests).
        let outcome = await authentication.finish(
            bodyHashes: assembled.bodyHashes, fromDomain: assembled.fromDomain,
            deadline: ContinuousClock.now + .seconds(120))
        return (assembled, outcome)
    }

    static func results(_ outcome: AuthenticationOutcome, _ method: String) -> [String] {
        outcome.results.results(for: method).map(\.result)
    }

    @Test func verifiesWhatStreamsThrough() async throws {
        let pool = SignerPool(threadCount: 1)
        let signed = try await Self.signedMessage(pool: pool)
        for seed in UInt64(1)...10 {
            let (assembled, outcome) = try await Self.verify(signed, seed: seed, seal: false, pool: pool)
            #expect(assembled.unsignedReason == .noKey)  // nothing signs, yet the body was hashed for the checks
            #expect(Self.results(outcome, "dkim") == ["pass", "pass"], "\(outcome.results.value)")
            #expect(Self.results(outcome, "dmarc") == ["pass"])
            #expect(Self.results(outcome, "arc") == ["none"])
            #expect(outcome.results.authservID == "mx.test")
            // What the relay writes parses back to the same results.
            let written = outcome.results.field()
            let parsed = try AuthenticationResults(parsing: written.drop { $0 != ":" }.dropFirst())
            #expect(parsed == outcome.results)
        }
        let tampered = signed.replacingOccurrences(of: "last line", with: "last line!")
        let (_, outcome) = try await Self.verify(tampered, seed: 3, seal: false, pool: pool)
        #expect(Self.results(outcome, "dkim") == ["fail", "fail"], "\(outcome.results.value)")
        #expect(Self.results(outcome, "dmarc") == ["fail"])
        try await pool.shutdown()
    }

    @Test func sealsFromTheSameBodyPass() async throws {
        let pool = SignerPool(threadCount: 1)
        var message = try await Self.signedMessage(pool: pool)
        for hop in 1...2 {
            let (assembled, outcome) = try await Self.verify(message, seed: UInt64(hop), seal: true, pool: pool)
            let match = try #require(assembled.authentication?.seal)
            let bodyHash = try #require(assembled.bodyHashes[ARCSealer.bodyHasherKey])
            let header = try #require(assembled.header)
            #expect(outcome.arc.status == (hop == 1 ? .none : .pass))
            let sealed = try await pool.seal(
                match.sealer, header: header, bodyHash: bodyHash, chainStatus: outcome.arc.status,
                authservID: match.authservID, results: outcome.results.results.map(\.text).joined(separator: "; "),
                now: MessageAssemblerTests.now)
            #expect(sealed.fields.count == 3)
            message = sealed.fields.joined() + String(buffer: try assembled.content.collected())
            let validation = await ARCValidator().validate(
                try WholeMessage(ByteBuffer(string: message)), resolver: Self.zone)
            #expect(validation.status == .pass && validation.instance == hop, "\(validation)")
        }
        try await pool.shutdown()
    }
}
