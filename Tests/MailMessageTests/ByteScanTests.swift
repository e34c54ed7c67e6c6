import Testing

@testable import MailMessage

@Suite("ByteScan")
struct ByteScanTests {
    /// Runs the scan over an array; every array here is non-empty, so it has a base address.
    private func scan(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        bytes.withUnsafeBytes { ByteScan.firstControl($0.baseAddress!, from: start, to: end) }
    }

    private func naive(_ bytes: [UInt8], from start: Int, to end: Int) -> Int {
        (start..<end).first { bytes[$0] < 0x0E } ?? end
    }

    @Test("finds the first control byte in every position of a long run")
    func everyPosition() {
        for control: UInt8 in [0x00, 0x09, 0x0A, 0x0D, 0x01, 0x0C] {
            for position in 0..<40 {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: 40)
                bytes[position] = control
                let found = scan(bytes, from: 0, to: 40)
                #expect(found == position)
            }
        }
    }

    @Test("bytes 0x0E and above, 0x80 and above included, are skipped")
    func noFalsePositives() {
        let bytes = (0x0E...0xFF).map { UInt8($0) } + (0x0E...0xFF).reversed().map { UInt8($0) }
        let found = scan(bytes, from: 0, to: bytes.count)
        #expect(found == bytes.count)
    }

    @Test("agrees with a byte-by-byte scan on random data and ranges")
    func randomAgreement() {
        var rng = SplitMix64(seed: 0x5CA9)
        for _ in 0..<2000 {
            let count = Int(rng.next() % 100) + 1
            let bytes = (0..<count).map { _ in
                rng.next() % 16 == 0 ? UInt8(rng.next() % 0x0E) : UInt8(truncatingIfNeeded: 0x0E + rng.next() % 0xF2)
            }
            let start = Int(rng.next() % UInt64(count + 1))
            let end = start + Int(rng.next() % UInt64(count - start + 1))
            let found = scan(bytes, from: start, to: end)
            #expect(found == naive(bytes, from: start, to: end))
        }
    }

    @Test("ASCII lowercasing touches only A-Z")
    func lowercasing() {
        for byte in 0...255 {
            let expected = byte >= 0x41 && byte <= 0x5A ? byte + 0x20 : byte
            #expect(ASCII.lowercased(UInt8(byte)) == UInt8(expected))
        }
    }
}
