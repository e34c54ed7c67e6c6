import DKIM
import DKIMCore
import Foundation
import Keys
import MailMessage
import NIOCore
import Testing

@testable import Relay

@Suite("Message pipeline: streaming hash, spooling, unsigned cases")
struct MessageAssemblerTests {
    static let rsa = try! PrivateKey.generateRSA(bits: 2048)
    static let ed = try! PrivateKey.generateEd25519()
    static let now = 1_790_000_000

    static func table() throws -> SigningTable {
        var signing = RelayConfiguration.Signing()
        signing.keys["rsa"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "rsa1", keyFile: "rsa")
        signing.keys["ed"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "ed1", keyFile: "ed")
        signing.table = [RelayConfiguration.TableEntry(from: "example.com", keys: ["rsa", "ed"])]
        return try SigningTable(signing, loadKey: { $0 == "rsa" ? rsa : ed })
    }

    static var verifier: DKIMVerifier {
        DKIMVerifier(
            keyTable: DKIMKeyTable(records: [
                "rsa1._domainkey.example.com": DKIMKeyRecord(keyType: "rsa", publicKeyData: rsa.publicKey.dkimKeyData).text,
                "ed1._domainkey.example.com": DKIMKeyRecord(keyType: "ed25519", publicKeyData: ed.publicKey.dkimKeyData).text,
            ])
        )
    }

    static let message = "From: Alice <alice@example.com>\nTo: bob@example.org\r\nSubject: chunks\r\n\r\nBody  line \r\n\r\nlast line\n\n"

    /// Feeds `text` in random pieces and returns the bytes that would go downstream.
    static func run(_ text: String, seed: UInt64, spoolThreshold: Int = 1 << 20, pool: SignerPool) async throws
        -> (ByteBuffer, AssembledMessage)
    {
        var assembler = MessageAssembler(
            signingTable: try table(), spoolThreshold: spoolThreshold, spoolDirectory: NSTemporaryDirectory())
        var random = SplitMix64(seed: seed)
        var bytes = ByteBuffer(string: text)
        while bytes.readableBytes > 0 {
            let size = min(bytes.readableBytes, 1 + Int(random.next() % 13))
            try assembler.append(bytes.readSlice(length: size)!)
        }
        let assembled = try assembler.finish(now: now)
        let fields = try await pool.signatureFields(for: assembled.signatures)
        var out = ByteBuffer(string: fields.joined())
        out.writeImmutableBuffer(try assembled.content.collected())
        return (out, assembled)
    }

    @Test func signsWhatItSendsWhateverTheChunking() async throws {
        let pool = SignerPool(threadCount: 1)
        for seed in UInt64(1)...20 {
            let (out, assembled) = try await Self.run(Self.message, seed: seed, pool: pool)
            #expect(assembled.unsignedReason == nil)
            let text = String(buffer: out)
            #expect(!text.contains("\n\n") && !text.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
            let results = Self.verifier.verify(try WholeMessage(out), now: Self.now)
            #expect(results.map(\.status) == [.pass, .pass], "seed \(seed): \(results.map(\.reason))")
        }
        try await pool.shutdown()
    }

    @Test func largeMessagesGoToAPrivateSpoolFile() async throws {
        let pool = SignerPool(threadCount: 1)
        let body = String(repeating: "0123456789 abcdefghij  \r\n", count: 4000)
        let text = "From: alice@example.com\r\nSubject: big\r\n\r\n" + body
        let (out, assembled) = try await Self.run(text, seed: 7, spoolThreshold: 10_000, pool: pool)
        #expect(assembled.content.isSpooled)
        #expect(assembled.content.count == text.utf8.count)
        #expect(Self.verifier.verify(try WholeMessage(out), now: Self.now).map(\.status) == [.pass, .pass])
        var pieces = 0
        var total = 0
        try await assembled.content.forEachPiece(pieceSize: 4096) { piece in
            pieces += 1
            total += piece.readableBytes
        }
        #expect(total == text.utf8.count && pieces == (total + 4095) / 4096)
        try await pool.shutdown()
    }

    @Test(arguments: [
        ("To: x@example.org\r\n\r\nbody\r\n", MessageAssembler.UnsignedReason.noFrom),
        ("From: a@example.com\r\nFrom: b@example.com\r\n\r\nbody\r\n", .multipleFrom),
        ("From: not an address\r\n\r\nbody\r\n", .unparsableFrom),
        ("From: a@example.org\r\n\r\nbody\r\n", .noKey),
        ("From: a@example.com\r\nthis line has no colon\r\n\r\nbody\r\n", .unparsableHeader),
    ])
    func unsignedButCarried(text: String, reason: MessageAssembler.UnsignedReason) async throws {
        let pool = SignerPool(threadCount: 1)
        let (out, assembled) = try await Self.run(text, seed: 3, pool: pool)
        #expect(assembled.unsignedReason == reason)
        #expect(assembled.signatures.isEmpty)
        #expect(String(buffer: out) == text)
        try await pool.shutdown()
    }

    @Test func notSignedTwiceAsTheSameIdentity() async throws {
        let pool = SignerPool(threadCount: 1)
        let (once, _) = try await Self.run(Self.message, seed: 1, pool: pool)
        let (twice, assembled) = try await Self.run(String(buffer: once), seed: 2, pool: pool)
        #expect(assembled.unsignedReason == .alreadySigned)
        #expect(twice == once)
        try await pool.shutdown()
    }

    @Test func nulIsRefused() throws {
        var assembler = MessageAssembler(signingTable: try Self.table(), spoolThreshold: 1 << 20, spoolDirectory: "/tmp")
        #expect(throws: MailMessageError.nulByte) {
            try assembler.append(ByteBuffer(bytes: Array("From: a@example.com\r\n\r\nx\0y\r\n".utf8)))
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
