import DKIM
import DKIMCore
import Foundation
import Keys
import MailAuth
import MailMessage
import NIOCore
import Synchronization
import Testing

/// DKIM verification through a resolver: DNS outcomes, RFC 6376 §6 checks, bad input and bounds.
@Suite("DKIM verification with DNS")
struct DKIMVerificationTests {
    static let rsa = try! PrivateKey.generateRSA(bits: 2048)
    static let ed = try! PrivateKey.generateEd25519()
    static let now = 1_790_000_000
    static let text = "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: hi\r\n\r\nBody  text\r\n"

    static func record(_ key: PrivateKey, _ extra: String = "") -> String {
        "v=DKIM1; k=\(key.algorithm.rawValue);\(extra) p=" + Base64.encode(key.publicKey.dkimKeyData)
    }

    /// `text` signed by each (selector, key, options) in turn, the last one topmost.
    static func signed(
        _ signers: [(String, PrivateKey)], options: DKIMSignerOptions = DKIMSignerOptions(), text: String = text
    ) throws -> String {
        let message = try WholeMessage(ByteBuffer(string: text))
        var fields: [String] = []
        for (selector, key) in signers {
            let signer = try DKIMSigner(domain: "example.com", selector: selector, key: key, options: options)
            fields.insert(contentsOf: try message.sign(with: [signer], now: now), at: 0)
        }
        return String(buffer: message.bytes(prepending: fields))
    }

    static func verify(
        _ text: String, zone: StaticZone, configure: (inout DKIMVerifier) -> Void = { _ in }
    ) async throws -> [DKIMVerificationResult] {
        var verifier = DKIMVerifier(keyLookup: { _ in .noRecord })
        configure(&verifier)
        return await DKIMVerification(resolver: zone, verifier: verifier)
            .verify(try WholeMessage(ByteBuffer(string: text)), now: now)
    }

    static func zone(_ records: [(String, String)]) -> StaticZone {
        var zone = StaticZone()
        for (selector, value) in records { zone.addTXT("\(selector)._domainkey.example.com", value) }
        return zone
    }

    @Test("RSA and Ed25519 pass; DNS outcomes map to permerror and temperror")
    func dnsOutcomes() async throws {
        let message = try Self.signed([("r", Self.rsa), ("e", Self.ed)])
        var zone = Self.zone([("r", Self.record(Self.rsa)), ("e", Self.record(Self.ed))])
        var results = try await Self.verify(message, zone: zone)
        #expect(results.map(\.status) == [.pass, .pass], "\(results)")
        #expect(results.map(\.algorithm) == ["ed25519-sha256", "rsa-sha256"])

        zone = Self.zone([("r", Self.record(Self.rsa))])
        zone.add("e._domainkey.example.com") { $0.failure = .timeout }
        results = try await Self.verify(message, zone: zone)
        #expect(results[0].status == .temperror && results[0].reason.contains("timed out"), "\(results[0])")
        #expect(results[1].status == .pass)

        zone = Self.zone([("r", Self.record(Self.rsa))])
        zone.add("e._domainkey.example.com") { $0.failure = .serverFailure }
        #expect(try await Self.verify(message, zone: zone)[0].status == .temperror)

        zone = Self.zone([("r", Self.record(Self.rsa))])  // e: NXDOMAIN
        results = try await Self.verify(message, zone: zone)
        #expect(results[0].status == .permerror && results[0].reason.contains("no key record"), "\(results[0])")

        zone.add("e._domainkey.example.com") { $0.a = [IPAddress("192.0.2.1")!] }  // NODATA for TXT
        results = try await Self.verify(message, zone: zone)
        #expect(results[0].status == .permerror && results[0].reason.contains("no key record"), "\(results[0])")
    }

    @Test("streaming: prepare at the end of the header, hash the body in chunks, finish with the resolver")
    func streaming() async throws {
        let text = try Self.signed(
            [("r", Self.rsa), ("e", Self.ed)], text: Self.text + String(repeating: "more  body \r\n", count: 500))
        let zone = Self.zone([("r", Self.record(Self.rsa)), ("e", Self.record(Self.ed))])
        let message = try WholeMessage(ByteBuffer(string: text))
        let verification = DKIMVerification(resolver: zone)
        let plan = verification.verifier.prepare(message.header, now: Self.now)
        #expect(plan.keyNames == ["e._domainkey.example.com", "r._domainkey.example.com"])
        var hashers = BodyHasherSet(keys: plan.bodyHasherKeys)
        var body = message.body
        while body.readableBytes > 0 {
            // Safe to force unwrap: at most the readable bytes are taken.
            hashers.update(body.readSlice(length: min(7, body.readableBytes))!)
        }
        let streamed = await verification.finish(plan, bodyHashes: hashers.finalize())
        #expect(streamed.map(\.status) == [.pass, .pass])
        #expect(streamed == (await verification.verify(message, now: Self.now)))
    }

    @Test("selectors differing only in case share one lookup")
    func selectorCase() async throws {
        let message = try Self.signed([("r", Self.rsa), ("r", Self.rsa)])
        let first = try #require(message.range(of: "s=r;"))
        let mixed = message.replacingCharacters(in: first, with: "s=R;")
        let resolver = CountingResolver(Self.zone([("r", Self.record(Self.rsa))]))
        let results = await DKIMVerification(resolver: resolver)
            .verify(try WholeMessage(ByteBuffer(string: mixed)), now: Self.now)
        // The changed s= breaks the first signature's header hash; the key was still found for it.
        #expect(results.map(\.reason) == ["signature did not verify", ""], "\(results)")
        #expect(resolver.state.withLock { $0.asked } == 1)
    }

    @Test("several TXT records: the first one that parses is used")
    func severalRecords() async throws {
        let message = try Self.signed([("r", Self.rsa)])
        var zone = StaticZone()
        zone.addTXT("r._domainkey.example.com", "v=spf1 -all")
        zone.addTXT("r._domainkey.example.com", Self.record(Self.rsa))
        #expect(try await Self.verify(message, zone: zone).map(\.status) == [.pass])
        zone = StaticZone()
        zone.addTXT("r._domainkey.example.com", "garbage")
        zone.addTXT("r._domainkey.example.com", "v=DKIM1; k=rsa")
        let result = try await Self.verify(message, zone: zone)[0]
        #expect(result.status == .permerror && result.reason.contains("malformed key record"), "\(result)")
    }

    @Test(
        "key records: revoked, wrong type, h=, s=, t=s, t=y, v=, bad p=, key sizes",
        arguments: [
            ("v=DKIM1; k=rsa; p=", "revoked"),
            ("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", "does not match"),
            ("v=DKIM1; k=foo; p=AAAA", "does not match"),
            ("v=DKIM1; h=sha1; p=@", "malformed key record"),
            ("v=DKIM2; p=AAAA", "malformed key record"),
            ("p=AAAA; v=DKIM1", "malformed key record"),
            ("k=rsa; t; p=AAAA", "malformed key record"),
            ("v=DKIM1; k=rsa; p=AAAA", "unusable public key"),
        ])
    func badKeyRecords(record: String, reason: String) async throws {
        let message = try Self.signed([("r", Self.rsa)])
        let result = try await Self.verify(message, zone: Self.zone([("r", record)]))[0]
        #expect(result.status == .permerror, "\(result)")
        #expect(result.reason.contains(reason), "\(result)")
    }

    @Test("key record tags: h=, s=, t=s, t=y; RSA below 1024 bits refused")
    func keyRecordTags() async throws {
        let message = try Self.signed([("r", Self.rsa)])
        func check(_ record: String) async throws -> DKIMVerificationResult {
            try await Self.verify(message, zone: Self.zone([("r", record)]))[0]
        }
        #expect(try await check(Self.record(Self.rsa, " h=sha1;")).reason.contains("does not allow sha256"))
        #expect(try await check(Self.record(Self.rsa, " h=sha1:sha256;")).status == .pass)
        #expect(try await check(Self.record(Self.rsa, " s=chat;")).reason.contains("not for email"))
        #expect(try await check(Self.record(Self.rsa, " s=*;")).status == .pass)
        let testing = try await check(Self.record(Self.rsa, " t=y;"))
        #expect(testing.status == .pass && testing.testing && testing.description.contains("(testing)"))

        var options = DKIMSignerOptions()
        options.identity = "user@sub.example.com"
        let subdomain = try Self.signed([("r", Self.rsa)], options: options)
        let strict = try await Self.verify(subdomain, zone: Self.zone([("r", Self.record(Self.rsa, " t=s;"))]))[0]
        #expect(strict.status == .permerror && strict.reason.contains("t=s"), "\(strict)")
        #expect(try await Self.verify(subdomain, zone: Self.zone([("r", Self.record(Self.rsa))]))[0].status == .pass)

        let small = try PrivateKey.generateRSA(bits: 1024)
        let signedSmall = try Self.signed([("s", small)])
        #expect(try await Self.verify(signedSmall, zone: Self.zone([("s", Self.record(small))]))[0].status == .pass)
        let refused = try await Self.verify(signedSmall, zone: Self.zone([("s", Self.record(small))])) {
            $0.minimumRSABits = 2048
        }[0]
        #expect(refused.status == .permerror && refused.reason.contains("shorter than 2048"), "\(refused)")
        let tooBig = try await Self.verify(message, zone: Self.zone([("r", Self.record(Self.rsa))])) {
            $0.maximumRSABits = 1024
        }[0]
        #expect(tooBig.status == .permerror && tooBig.reason.contains("longer than 1024"), "\(tooBig)")
    }

    /// Replaces the signature's tag list (keeping `b=` and `bh=` as signed) with `tags`.
    static func withSignatureTags(_ tags: String) throws -> String {
        let message = try signed([("r", rsa)])
        let end = message.range(of: "\r\nFrom:")!.lowerBound
        return "DKIM-Signature: " + tags + message[end...]
    }

    @Test(
        "malformed signatures are permerror with a reason",
        arguments: [
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b", "has no '='"),
            ("v=1; v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA", "more than once"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA", "no b= tag"),
            ("v=2; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA", "unsupported signature version"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=to:subject; bh=AAAA; b=AAAA", "From is not signed"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA; i=@evil.example", "is not d="),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA; t=200; x=100", "before t="),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=!!; b=AAAA", "not base64"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA; l=-1", "not a decimal"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA; q=http", "dns/txt"),
            ("v=1; a=rsa-sha256; d=example.com; s=r; h=from; bh=AAAA; b=AAAA; t=1990000000", "in the future"),
            ("v=1; a=rsa-md5; d=example.com; s=r; h=from; bh=AAAA; b=AAAA", "unknown algorithm"),
            ("v=1; a=rsa-sha1; d=example.com; s=r; h=from; bh=AAAA; b=AAAA", "rsa-sha1 is not accepted (RFC 8301)"),
            ("\u{1}\u{2}=;;", "malformed signature"),
        ])
    func malformedSignatures(tags: String, reason: String) async throws {
        let results = try await Self.verify(
            try Self.withSignatureTags(tags), zone: Self.zone([("r", Self.record(Self.rsa))]))
        #expect(results.count == 1)
        #expect(results[0].status == .permerror, "\(results)")
        #expect(results[0].reason.contains(reason), "\(results[0].reason)")
    }

    @Test("l= is reported, and appended text still passes; expired signatures fail")
    func bodyLengthAndExpiry() async throws {
        var options = DKIMSignerOptions()
        options.includeBodyLength = true
        let message = try Self.signed([("r", Self.rsa)], options: options) + "appended\r\n"
        let result = try await Self.verify(message, zone: Self.zone([("r", Self.record(Self.rsa))]))[0]
        #expect(result.status == .pass && result.bodyLength == 11, "\(result)")
        #expect(
            result.description.contains("l=11") && result.reason.contains("10 body bytes after l= are not signed"),
            "\(result)")

        let expired = try await Self.verify(
            try Self.signed([("r", Self.rsa)]), zone: Self.zone([("r", Self.record(Self.rsa))])
        ) { _ in }
        #expect(expired[0].status == .pass)
        let later = await DKIMVerification(resolver: Self.zone([("r", Self.record(Self.rsa))]))
            .verify(
                try WholeMessage(ByteBuffer(string: try Self.signed([("r", Self.rsa)]))), now: Self.now + 8 * 86_400)
        #expect(later[0].status == .permerror && later[0].reason.contains("expired"), "\(later)")
    }

    /// Counts questions and the most asked at once.
    final class CountingResolver: DNSResolver {
        let zone: StaticZone
        let state = Mutex((asked: 0, running: 0, peak: 0))
        init(_ zone: StaticZone) { self.zone = zone }

        func txt(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> {
            state.withLock {
                $0.asked += 1
                $0.running += 1
                $0.peak = max($0.peak, $0.running)
            }
            defer { state.withLock { $0.running -= 1 } }
            try? await Task.sleep(for: .milliseconds(5))
            return try await zone.txt(name)
        }
        func a(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> { try await zone.a(name) }
        func aaaa(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> { try await zone.aaaa(name) }
        func mx(_ name: String) async throws(DNSFailure) -> DNSAnswer<MXRecord> { try await zone.mx(name) }
        func ptr(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> { try await zone.ptr(name) }
    }

    @Test("1,000 DKIM-Signature fields: a configurable number checked, the rest reported as policy, few lookups")
    func thousandSignatures() async throws {
        let signed = try Self.signed([("r", Self.rsa)])
        let end = signed.range(of: "\r\nFrom:")!.lowerBound
        let field = String(signed[..<end]) + "\r\n"
        let rest = String(signed[signed.index(end, offsetBy: 2)...])
        // Distinct selectors so that each checked signature needs its own lookup.
        var many = ""
        for index in 0..<1000 {
            many += field.replacingOccurrences(of: "s=r;", with: "s=r\(index);")
        }
        many += rest
        var zone = StaticZone()
        for index in 0..<1000 { zone.addTXT("r\(index)._domainkey.example.com", Self.record(Self.rsa)) }
        let resolver = CountingResolver(zone)
        var verifier = DKIMVerifier(keyLookup: { _ in .noRecord })
        verifier.maximumSignatures = 20
        // The default header limits (1,000 fields) already refuse this message before any DKIM work.
        #expect(throws: MailMessageError.self) { try WholeMessage(ByteBuffer(string: many)) }
        let limits = MailMessageLimits(maxHeaderBytes: 4 << 20, maxHeaderFields: 2000)
        let results = await DKIMVerification(resolver: resolver, verifier: verifier, concurrentLookups: 3)
            .verify(try WholeMessage(ByteBuffer(string: many), limits: limits), now: Self.now)
        #expect(results.count == 1000)
        // Changing s= breaks the signature, so the checked ones fail (signature did not verify), not pass.
        #expect(results.prefix(20).allSatisfy { $0.status == .fail }, "\(results.prefix(3))")
        #expect(results.dropFirst(20).allSatisfy { $0.status == .policy && $0.reason.contains("more than 20") })
        let counts = resolver.state.withLock { $0 }
        #expect(counts.asked == 20)
        #expect(counts.peak <= 3)
    }

    @Test("rsa-sha1 is refused by default and verified when accepted")
    func sha1Option() async throws {
        // An rsa-sha1 signature made with openssl's primitives through Keys: body hash and header hash in SHA-1.
        let text = "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"
        let message = try WholeMessage(ByteBuffer(string: text))
        var body = BodyHasher(BodyHasher.Key(canonicalization: .relaxed, digest: .sha1))
        body.update(message.body)
        let bh = Base64.encode(body.finalize().hash)
        let unsigned =
            "DKIM-Signature: v=1; a=rsa-sha1; c=relaxed/relaxed; d=example.com; s=r; h=from:subject; bh=\(bh); b="
        let digest = HeaderHasher.digest(
            signedFields: HeaderHasher.select(["from", "subject"], from: message.header),
            signatureField: ByteBuffer(string: unsigned), canonicalization: .relaxed, algorithm: .sha1)
        let signature = try Self.sha1Signature(digest)
        let signedText = unsigned + Base64.encode(signature) + "\r\n" + text
        let zone = Self.zone([("r", Self.record(Self.rsa))])
        let refused = try await Self.verify(signedText, zone: zone)[0]
        #expect(refused.status == .permerror && refused.reason == "rsa-sha1 is not accepted (RFC 8301)")
        let accepted = try await Self.verify(signedText, zone: zone) { $0.acceptSHA1 = true }[0]
        #expect(accepted.status == .pass, "\(accepted)")
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 by the openssl command (Keys only signs SHA-256).
    static func sha1Signature(_ digest: [UInt8]) throws -> [UInt8] {
        // Sign the DigestInfo(SHA-1) structure with raw PKCS#1 v1.5 padding.
        let prefix: [UInt8] = [
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14,
        ]
        return try OpenSSLCommand.rawSign(key: rsa, input: prefix + digest)
    }
}

/// The openssl command, for a signature Keys does not make.
enum OpenSSLCommand {
    /// `openssl pkeyutl -sign` with PKCS#1 v1.5 padding over `input` as given (no hashing).
    static func rawSign(key: PrivateKey, input: [UInt8]) throws -> [UInt8] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "signet-sha1-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let keyPath = directory.appendingPathComponent("key.pem")
        let inputPath = directory.appendingPathComponent("in.bin")
        let outputPath = directory.appendingPathComponent("out.bin")
        try Data(try key.pemRepresentation().utf8).write(to: keyPath)
        try Data(input).write(to: inputPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "pkeyutl", "-sign", "-inkey", keyPath.path, "-pkeyopt", "rsa_padding_mode:pkcs1", "-in", inputPath.path,
            "-out", outputPath.path,
        ]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return Array(try Data(contentsOf: outputPath))
    }
}
