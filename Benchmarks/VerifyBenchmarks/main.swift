// DKIM verifications per second on one core, next to `openssl speed` verify/s measured in the same run, for
// `make bench` and docs/performance.md:
//   raw:          PublicKey.isValidSignature over a 32-byte digest (the public-key operation alone);
//   whole:        DKIMVerifier.verify of a 4 KiB message, key record already resolved, parsed keys cached;
//   whole, no cache: the same, importing the key (DER decode, EVP_PKEY) for every message.
// Usage: VerifyBenchmarks [seconds]
import DKIM
import DKIMCore
import Foundation
import Keys
import NIOCore

let seconds = CommandLine.arguments.count > 1 ? Double(CommandLine.arguments[1]) ?? 3 : 3

/// Calls `body` for `seconds` and returns calls per second.
func rate(_ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    let end = start + .milliseconds(Int(seconds * 1000))
    var count = 0
    while clock.now < end {
        for _ in 0..<16 { body() }
        count += 16
    }
    let elapsed = start.duration(to: clock.now)
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// openssl's single-core verify/s for RSA-2048 and Ed25519 (the last column of its table lines).
func opensslVerifyRates() -> (rsa: Double?, ed25519: Double?) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["speed", "-seconds", "\(Int(seconds))", "rsa2048", "ed25519"]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return (nil, nil) }
    let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    var rsa: Double?
    var ed: Double?
    for line in text.split(separator: "\n") {
        let last = line.split(separator: " ").last.flatMap { Double($0) }
        if line.hasPrefix("rsa 2048 bits") { rsa = last }
        if line.contains("(Ed25519)") { ed = last }
    }
    return (rsa, ed)
}

// A 4 KiB message as a list server would send it.
var body = ""
while body.utf8.count < 4096 - 80 {
    body += "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n"
}
let text = """
    From: Alice <alice@example.com>\r
    To: list@example.org\r
    Subject: verification benchmark\r
    Date: Sun, 29 Nov 2026 12:00:00 +0000\r
    Message-ID: <bench@example.com>\r
    MIME-Version: 1.0\r
    Content-Type: text/plain; charset=utf-8\r
    \r
    \(body)
    """
let now = 1_790_000_000

/// One table row: a left-aligned name and two right-aligned numbers.
func row(_ name: String, _ rsa: String, _ ed: String) -> String {
    func pad(_ text: String, _ width: Int, left: Bool) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + fill : fill + text
    }
    return pad(name, 44, left: true) + pad(rsa, 12, left: false) + pad(ed, 12, left: false)
}

print(row("verify, one core, \(Int(seconds)) s each", "RSA-2048/s", "Ed25519/s"))
var rows: [(String, [Double])] = []
var columns: [[Double]] = []
for algorithm in [KeyAlgorithm.rsa, .ed25519] {
    let key = algorithm == .rsa ? try PrivateKey.generateRSA(bits: 2048) : try PrivateKey.generateEd25519()
    let digest = SHA256.hash(Array("benchmark".utf8))
    let signature = try key.signature(forSHA256Digest: digest)
    let publicKey = key.publicKey
    let raw = rate { precondition(publicKey.isValidSignature(signature, forSHA256Digest: digest)) }

    let message = try WholeMessage(ByteBuffer(string: text))
    let signer = try DKIMSigner(domain: "example.com", selector: "s", key: key)
    let signed = try WholeMessage(message.bytes(prepending: message.sign(with: [signer], now: now)))
    let record = DKIMKeyRecord(keyType: algorithm.rawValue, publicKeyData: key.publicKey.dkimKeyData).text
    var cached = DKIMVerifier(keyLookup: { _ in .records([record]) })
    cached.keyCache = PublicKeyCache(capacity: 16)
    var uncached = cached
    uncached.keyCache = nil
    precondition(cached.verify(signed, now: now).map(\.status) == [.pass])
    let whole = rate { precondition(cached.verify(signed, now: now)[0].status == .pass) }
    let wholeNoCache = rate { precondition(uncached.verify(signed, now: now)[0].status == .pass) }
    let importOnly = rate { _ = try! PublicKey(dkimKeyData: key.publicKey.dkimKeyData, algorithm: algorithm) }
    columns.append([raw, whole, wholeNoCache, importOnly])
}
let openssl = opensslVerifyRates()
let names = [
    "raw public-key verify (PublicKey)", "whole DKIM verify, 4 KiB, key cached",
    "whole DKIM verify, 4 KiB, no key cache",
    "public key import alone (p= to EVP_PKEY)",
]
for (index, name) in names.enumerated() {
    print(row(name, String(Int(columns[0][index])), String(Int(columns[1][index]))))
}
print(
    row(
        "openssl speed verify/s (same run)", openssl.rsa.map { String(Int($0)) } ?? "?",
        openssl.ed25519.map { String(Int($0)) } ?? "?"))
