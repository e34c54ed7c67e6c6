import ARC
import DKIM
import DKIMCore
import Foundation
import Keys
import MailAuth
import MailMessage
import NIOCore
import Testing

/// Sealing and validating chains made here, and broken chains: each gives cv=fail with a reason, never a crash.
@Suite struct ARCChainTests {
    static let original = """
        From: Author <author@origin.example>
        To: list@lists.example
        Subject: Hello
        Date: Sun, 29 Nov 2026 12:00:00 +0000
        Message-ID: <m1@origin.example>

        Body line one.
        Body line two.

        """

    struct Hop {
        var sealer: ARCSealer
        var zone: StaticZone
    }

    static let rsaKey = Result { try PrivateKey.generateRSA(bits: 1024) }
    static let edKey = Result { try PrivateKey.generateEd25519() }

    static func zone(adding key: PrivateKey, name: String, to zone: inout StaticZone) {
        let type = key.algorithm == .rsa ? "rsa" : "ed25519"
        zone.addTXT(name, "v=DKIM1; k=\(type); p=\(Base64.encode(key.publicKey.dkimKeyData))")
    }

    static func message(_ text: String) throws -> WholeMessage {
        try WholeMessage(ByteBuffer(string: text.replacingOccurrences(of: "\n", with: "\r\n")))
    }

    /// Seals `text` (validating the chain of `received`, or of `text` itself) and returns the sealed text.
    static func seal(
        _ text: String, received: String? = nil, domain: String, key: PrivateKey, zone: StaticZone,
        now: Int = 1_700_000_000
    ) async throws -> (String, ARCSealOutcome) {
        let message = try Self.message(text)
        let validation = await ARCValidator().validate(try Self.message(received ?? text), resolver: zone)
        let sealer = try ARCSealer(domain: domain, selector: "s", key: key)
        let outcome = try sealer.seal(
            message, chainStatus: validation.status, authservID: "mx.\(domain)",
            results: "\(validation); spf=pass smtp.mailfrom=origin.example", now: now)
        let bytes = message.bytes(prepending: outcome.fields)
        return (String(buffer: bytes).replacingOccurrences(of: "\r\n", with: "\n"), outcome)
    }

    static func validate(_ text: String, zone: StaticZone) async throws -> ARCValidationResult {
        await ARCValidator().validate(try message(text), resolver: zone)
    }

    /// A chain of two sets, the message changed by a list between them.
    static func twoHops() async throws -> (String, StaticZone) {
        var zone = StaticZone()
        let key = try rsaKey.get()
        Self.zone(adding: key, name: "s._domainkey.a.example", to: &zone)
        Self.zone(adding: try edKey.get(), name: "s._domainkey.b.example", to: &zone)
        let (hop1, _) = try await seal(original, domain: "a.example", key: key, zone: zone)
        let modified = hop1.replacingOccurrences(of: "Subject: Hello", with: "Subject: [list] Hello") + "-- footer\n"
        let (hop2, _) = try await seal(modified, received: hop1, domain: "b.example", key: try edKey.get(), zone: zone)
        return (hop2, zone)
    }

    @Test func noChainIsNone() async throws {
        let result = try await Self.validate(Self.original, zone: StaticZone())
        #expect(result.status == .none)
        #expect(result.description == "arc=none")
    }

    @Test func oneHopPasses() async throws {
        var zone = StaticZone()
        let key = try Self.rsaKey.get()
        Self.zone(adding: key, name: "s._domainkey.a.example", to: &zone)
        let (sealed, outcome) = try await Self.seal(Self.original, domain: "a.example", key: key, zone: zone)
        guard case .sealed(let fields, let instance, let status) = outcome else {
            Issue.record("not sealed: \(outcome)")
            return
        }
        #expect(fields.count == 3 && instance == 1 && status == .none)
        #expect(fields[2].hasPrefix("ARC-Authentication-Results: i=1; mx.a.example;"))
        #expect(fields[2].contains("arc=none"))
        let result = try await Self.validate(sealed, zone: zone)
        #expect(result.status == .pass, "\(result)")
        #expect(result.description == "arc=pass (i=1 oldest-pass=0)")
    }

    @Test func twoHopsWithListChangesPassWithOldestPassTwo() async throws {
        let (sealed, zone) = try await Self.twoHops()
        #expect(sealed.contains("a=ed25519-sha256"))
        let result = try await Self.validate(sealed, zone: zone)
        #expect(result.description == "arc=pass (i=2 oldest-pass=2)", "\(result)")
    }

    @Test func oldestPassIsZeroWhenEveryAMSValidatesElseTheOldestStillValid() async throws {
        let (hop2, zone) = try await Self.twoHops()
        // A third hop that changes nothing: AMS 3 and 2 validate, AMS 1 does not (the list changed the message).
        let (hop3, _) = try await Self.seal(hop2, domain: "a.example", key: try Self.rsaKey.get(), zone: zone)
        #expect(try await Self.validate(hop3, zone: zone).description == "arc=pass (i=3 oldest-pass=2)")
        // Two hops that change nothing: every AMS validates.
        let (hop1, _) = try await Self.seal(Self.original, domain: "a.example", key: try Self.rsaKey.get(), zone: zone)
        let (again, _) = try await Self.seal(hop1, domain: "b.example", key: try Self.edKey.get(), zone: zone)
        #expect(try await Self.validate(again, zone: zone).description == "arc=pass (i=2 oldest-pass=0)")
    }

    @Test func signaturesMadeElsewhereAreCheckedAgainstThePublicKey() throws {
        let message = try Self.message(Self.original)
        let key = try Self.edKey.get()
        let remote = try ARCSealer(domain: "a.example", selector: "s", publicKey: key.publicKey, keyReference: "arc")
        let local = try ARCSealer(domain: "a.example", selector: "s", key: key)
        var hasher = BodyHasher(ARCSealer.bodyHasherKey)
        hasher.update(message.body)
        let bodyHash = hasher.finalize()
        let viaAgent = try remote.seal(
            header: message.header, bodyHash: bodyHash, chainStatus: .none, authservID: "mx", results: "", now: 1,
            sign: { try key.signature(forSHA256Digest: $0) })
        let direct = try local.seal(message, chainStatus: .none, authservID: "mx", results: "", now: 1)
        #expect(viaAgent.fields == direct.fields)
        let otherKey = try PrivateKey.generateEd25519()
        #expect(throws: ARCError.self) {
            try remote.seal(
                header: message.header, bodyHash: bodyHash, chainStatus: .none, authservID: "mx", results: "", now: 1,
                sign: { try otherKey.signature(forSHA256Digest: $0) })
        }
        #expect(throws: ARCError.self) {
            try remote.seal(message, chainStatus: .none, authservID: "mx", results: "", now: 1)
        }
    }

    @Test func precomputedBodyHashGivesTheSameSeal() throws {
        let message = try Self.message(Self.original)
        let sealer = try ARCSealer(domain: "a.example", selector: "s", key: try Self.edKey.get())
        var hasher = BodyHasher(ARCSealer.bodyHasherKey)
        hasher.update(message.body)
        let direct = try sealer.seal(message, chainStatus: .none, authservID: "mx", results: "spf=pass", now: 1)
        let split = try sealer.seal(
            header: message.header, bodyHash: hasher.finalize(), chainStatus: .none, authservID: "mx",
            results: "spf=pass", now: 1)
        // Ed25519 signatures are deterministic, so both fields must be byte-identical.
        #expect(direct.fields == split.fields)
        // One body pass serves a relaxed DKIM signature and the AMS.
        let dkim = try DKIMSigner(domain: "a.example", selector: "s", key: try Self.edKey.get())
        #expect(ARCSealer.bodyHasherKey == dkim.bodyHasherKey)
    }

    /// Each broken chain: what to change, and a word the reason must contain.
    static let breakages: [(String, @Sendable (String) -> String, String)] = [
        ("missing AMS", { removeField("ARC-Message-Signature", instance: 1, from: $0) }, "no ARC-Message-Signature"),
        (
            "duplicate AAR", { duplicateField("ARC-Authentication-Results", instance: 2, in: $0) },
            "2 ARC-Authentication-Results"
        ),
        ("missing instance 1", { removeSet(1, from: $0) }, "missing [1]"),
        ("instance above 50", { renumber($0, from: 2, to: 51) }, "above 50"),
        ("bad seal", { tamperSeal($0, instance: 2) }, "ARC-Seal i=2: signature did not verify"),
        ("bad older seal", { tamperSeal($0, instance: 1) }, "ARC-Seal i=2"),
        ("tampered body", { $0 + "added line\n" }, "body hash did not verify"),
        (
            "tampered signed header", { $0.replacingOccurrences(of: "Subject: [list] Hello", with: "Subject: Hello") },
            "signature did not verify"
        ),
        (
            "malformed tags",
            { $0.replacingOccurrences(of: "ARC-Seal: a=ed25519-sha256;", with: "ARC-Seal: a=ed25519-sha256;;") },
            "malformed"
        ),
        ("garbage seal", { "ARC-Seal: i=3; not a tag list\n" + $0 }, "ARC-Seal"),
        ("cv=fail on the newest seal", { $0.replacingOccurrences(of: "cv=pass", with: "cv=fail") }, "cv=fail"),
        ("cv=pass on instance 1", { $0.replacingOccurrences(of: "cv=none", with: "cv=pass") }, "expected none"),
        ("unknown key", { $0.replacingOccurrences(of: "d=b.example", with: "d=c.example") }, "no key record"),
    ]

    @Test(arguments: 0..<breakages.count)
    func brokenChainsFailWithAReason(index: Int) async throws {
        let (name, change, reason) = Self.breakages[index]
        let (sealed, zone) = try await Self.twoHops()
        let broken = change(sealed)
        #expect(broken != sealed, "\(name): the change did nothing")
        let result = try await Self.validate(broken, zone: zone)
        #expect(result.status == .fail, "\(name): \(result)")
        #expect(result.reason.contains(reason), "\(name): \(result.reason)")
        #expect(result.description.hasPrefix("arc=fail ("))
    }

    /// Every ARC header byte replaced in turn by a character that matters to the parsers (or removed): each
    /// result is a fail with a reason, or still a pass (folding white space), never a crash; sealing goes on.
    @Test func mutatedChainsNeverCrash() async throws {
        let (sealed, zone) = try await Self.twoHops()
        let headerEnd = sealed.range(of: "\nFrom:")!.lowerBound
        let characters = Array(sealed)
        let arcPart = sealed.distance(from: sealed.startIndex, to: headerEnd)
        var outcomes: [ARCChainStatus: Int] = [:]
        for position in stride(from: 0, to: arcPart, by: 7) {
            for replacement in [";", "=", ":", "", "\n", "9"] {
                var mutated = characters
                mutated.replaceSubrange(position...position, with: Array(replacement))
                let text = String(mutated)
                guard let message = try? Self.message(text) else { continue }
                let result = await ARCValidator().validate(message, resolver: zone)
                outcomes[result.status, default: 0] += 1
                if result.status == .fail { #expect(!result.reason.isEmpty) }
                let sealer = try ARCSealer(domain: "a.example", selector: "s", key: try Self.edKey.get())
                _ = try? sealer.seal(message, chainStatus: result.status, authservID: "mx", results: "", now: 1)
            }
        }
        #expect((outcomes[.fail] ?? 0) > 0)
        print("ARC mutated chains: \(outcomes)")
    }

    @Test func failedChainIsSealedOnceWithCvFailThenNeverAgain() async throws {
        let (sealed, zone) = try await Self.twoHops()
        let broken = sealed + "tampered\n"
        let (resealed, outcome) = try await Self.seal(
            broken, domain: "a.example", key: try Self.rsaKey.get(), zone: zone)
        guard case .sealed(_, let instance, let status) = outcome else {
            Issue.record("a failing chain must be sealed with cv=fail: \(outcome)")
            return
        }
        #expect(instance == 3 && status == .fail)
        let result = try await Self.validate(resealed, zone: zone)
        #expect(result.status == .fail)
        let (_, again) = try await Self.seal(resealed, domain: "a.example", key: try Self.rsaKey.get(), zone: zone)
        guard case .notSealed(let why) = again else {
            Issue.record("a chain with cv=fail must not be continued: \(again)")
            return
        }
        #expect(why.contains("cv=fail"))
    }

    @Test func instanceLimitStopsSealing() async throws {
        let (sealed, zone) = try await Self.twoHops()
        let renumbered = Self.renumber(Self.renumber(sealed, from: 2, to: 50), from: 1, to: 49)
        let sealer = try ARCSealer(domain: "a.example", selector: "s", key: try Self.rsaKey.get())
        let outcome = try sealer.seal(
            try Self.message(renumbered), chainStatus: .pass, authservID: "mx", results: "arc=pass", now: 1)
        guard case .notSealed(let why) = outcome else {
            Issue.record("instance 51 must not be sealed: \(outcome)")
            return
        }
        #expect(why.contains("50"))
        _ = zone
    }

    // MARK: - Editing helpers (fields are one per line start, continuation lines start with white space)

    static func fieldRanges(_ text: String) -> [(name: String, text: String)] {
        var fields: [(String, String)] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first == " " || first == "\t", !fields.isEmpty {
                fields[fields.count - 1].1 += "\n" + line
            } else {
                let name = line.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
                fields.append((name, String(line)))
            }
        }
        return fields
    }

    static func instance(of field: String) -> Int? {
        let compact = field.filter { !$0.isWhitespace }
        guard let range = compact.range(of: "i=") else { return nil }
        let digits = compact[range.upperBound...].prefix { $0.isNumber }
        // The AAR starts with i=; the AMS/AS carry ;i= or :i= somewhere.
        for marker in [":i=", ";i="] {
            if let found = compact.range(of: marker) {
                return Int(compact[found.upperBound...].prefix { $0.isNumber })
            }
        }
        return Int(digits)
    }

    static func edit(
        _ text: String, _ transform: ([(name: String, text: String)]) -> [(name: String, text: String)]
    ) -> String {
        transform(fieldRanges(text)).map(\.text).joined(separator: "\n")
    }

    static func removeField(_ name: String, instance: Int, from text: String) -> String {
        edit(text) { $0.filter { !($0.name == name && Self.instance(of: $0.text) == instance) } }
    }

    static func removeSet(_ instance: Int, from text: String) -> String {
        edit(text) { $0.filter { !($0.name.hasPrefix("ARC-") && Self.instance(of: $0.text) == instance) } }
    }

    static func duplicateField(_ name: String, instance: Int, in text: String) -> String {
        edit(text) { fields in
            fields.flatMap { $0.name == name && Self.instance(of: $0.text) == instance ? [$0, $0] : [$0] }
        }
    }

    static func renumber(_ text: String, from: Int, to: Int) -> String {
        edit(text) { fields in
            fields.map { field in
                guard field.name.hasPrefix("ARC-"), Self.instance(of: field.text) == from else { return field }
                let replaced = field.text.replacingOccurrences(of: "i=\(from);", with: "i=\(to);")
                    .replacingOccurrences(of: "i=\(from)\n", with: "i=\(to)\n")
                return (
                    field.name,
                    replaced.hasSuffix("i=\(from)") ? String(replaced.dropLast("\(from)".count)) + "\(to)" : replaced
                )
            }
        }
    }

    static func tamperSeal(_ text: String, instance: Int) -> String {
        edit(text) { fields in
            fields.map { field in
                guard field.name == "ARC-Seal", Self.instance(of: field.text) == instance,
                    let range = field.text.range(of: "b=")
                else { return field }
                var changed = field.text
                let index = changed.index(range.upperBound, offsetBy: 5)
                let old = changed[index]
                changed.replaceSubrange(index...index, with: old == "A" ? "B" : "A")
                return (field.name, changed)
            }
        }
    }
}
