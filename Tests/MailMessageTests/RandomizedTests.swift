import MailMessage
import NIOCore
import Testing

/// Property tests with a seeded generator: every way of cutting the same input gives the same result, and garbage
/// never crashes. A failure prints its seed; rerun with that seed to reproduce it.
@Suite("Randomized properties")
struct RandomizedTests {
    // MARK: - Line endings

    /// Straightforward reference: CRLF stays, any other CR or LF becomes CRLF.
    private static func referenceNormalize(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0D {
                output += [0x0D, 0x0A]
                index += index + 1 < bytes.count && bytes[index + 1] == 0x0A ? 2 : 1
            } else if byte == 0x0A {
                output += [0x0D, 0x0A]
                index += 1
            } else {
                output.append(byte)
                index += 1
            }
        }
        return output
    }

    private static func normalized(_ chunks: [ByteBuffer]) -> Result<[UInt8], MailMessageError> {
        Result { () throws(MailMessageError) -> [UInt8] in
            var normalizer = LineEndingNormalizer()
            var output: [UInt8] = []
            for chunk in chunks { output += try normalizer.normalize(chunk).bytes }
            if let tail = normalizer.finish() { output += tail.bytes }
            return output
        }
    }

    @Test("the normalizer gives the reference result for every chunking", arguments: 0..<40)
    func normalizerChunkings(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let bytes = randomMailBytes(count: Int(rng.next() % 300), using: &rng).filter { $0 != 0 }
        let whole = buffer(bytes)
        let expected = Self.referenceNormalize(bytes)
        #expect(Self.normalized([whole]) == .success(expected), "seed \(seed)")
        #expect(Self.normalized(byteChunks(of: whole)) == .success(expected), "seed \(seed)")
        for _ in 0..<25 {
            #expect(Self.normalized(randomChunks(of: whole, using: &rng)) == .success(expected), "seed \(seed)")
        }
    }

    @Test(
        "normalized output has only CRLF line ends, and normalizing it again returns the same slice", arguments: 0..<20)
    func normalizerOutput(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 1000)
        let bytes = randomMailBytes(count: 500, using: &rng).filter { $0 != 0 }
        let output = try Self.normalized([buffer(bytes)]).get()
        for (index, byte) in output.enumerated() {
            if byte == 0x0D { #expect(index + 1 < output.count && output[index + 1] == 0x0A, "seed \(seed)") }
            if byte == 0x0A { #expect(index > 0 && output[index - 1] == 0x0D, "seed \(seed)") }
        }
        var again = LineEndingNormalizer()
        let input = buffer(output)
        let second = try again.normalize(input)
        #expect(second.firstByteAddress == input.firstByteAddress, "seed \(seed)")
        #expect(again.finish() == nil)
    }

    @Test("a NUL is reported at the same offset however the input is cut", arguments: 0..<20)
    func normalizerNul(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 2000)
        var bytes = randomMailBytes(count: 200, using: &rng).filter { $0 != 0 }
        let position = Int(rng.next() % UInt64(bytes.count + 1))
        bytes.insert(0, at: position)
        let whole = buffer(bytes)
        for chunks in [[whole], byteChunks(of: whole), randomChunks(of: whole, using: &rng)] {
            guard case .failure(let error) = Self.normalized(chunks) else {
                Issue.record("seed \(seed): NUL not found")
                continue
            }
            #expect(error.code == .nulByte)
            #expect(error.reason.contains("offset \(position) "), "seed \(seed): \(error.reason)")
        }
    }

    // MARK: - Splitting

    /// A plausible message: fields (some folded, some with obs space), maybe a blank line, a body with blank lines.
    private static func randomMessage(using rng: inout SplitMix64) -> [UInt8] {
        var text = ""
        let names = ["From", "To", "Subject", "DKIM-Signature", "X-Long-Name-Here", "Received", "a"]
        for _ in 0..<Int(rng.next() % 8) {
            text += names[Int(rng.next() % UInt64(names.count))]
            text += rng.next() % 5 == 0 ? " :" : ":"
            for _ in 0...Int(rng.next() % 3) {
                text += String(repeating: "v", count: Int(rng.next() % 40)) + (rng.next() % 3 == 0 ? " ü" : "")
                if rng.next() % 3 == 0 { text += rng.next() % 2 == 0 ? "\r\n\t" : "\r\n " }
            }
            text += "\r\n"
        }
        switch rng.next() % 4 {
        case 0:
            return Array(text.utf8)  // no body, no blank line
        case 1 where !text.isEmpty:
            text.removeLast(2)
            return Array(text.utf8)  // no final CRLF either
        default:
            text += "\r\n"
            for _ in 0..<Int(rng.next() % 6) {
                text += String(repeating: "b", count: Int(rng.next() % 30)) + "\r\n"
                if rng.next() % 2 == 0 { text += "\r\n" }
            }
            return Array(text.utf8)
        }
    }

    /// Reference split: header up to the first CRLF CRLF (first CRLF kept), or all header without one.
    private static func referenceSplit(_ bytes: [UInt8]) -> (header: [UInt8], body: [UInt8], blank: Bool) {
        if bytes.starts(with: [0x0D, 0x0A]) { return ([], Array(bytes.dropFirst(2)), true) }
        var index = 0
        while index + 4 <= bytes.count {
            if Array(bytes[index..<index + 4]) == [0x0D, 0x0A, 0x0D, 0x0A] {
                return (Array(bytes[..<(index + 2)]), Array(bytes[(index + 4)...]), true)
            }
            index += 1
        }
        return (bytes, [], false)
    }

    private static func splitResult(_ chunks: [ByteBuffer]) -> Result<SplitResult, MailMessageError> {
        Result { () throws(MailMessageError) -> SplitResult in try split(chunks) }
    }

    @Test("the splitter gives the same header and body for every chunking", arguments: 0..<60)
    func splitterChunkings(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 3000)
        let bytes = Self.randomMessage(using: &rng)
        let whole = buffer(bytes)
        let expected = try Self.splitResult([whole]).get()
        let reference = Self.referenceSplit(bytes)
        #expect(expected.header == reference.header, "seed \(seed)")
        #expect(expected.body == reference.body, "seed \(seed)")
        #expect(expected.sawBlankLine == reference.blank, "seed \(seed)")
        #expect(try Self.splitResult(byteChunks(of: whole)).get() == expected, "seed \(seed)")
        for _ in 0..<20 {
            #expect(try Self.splitResult(randomChunks(of: whole, using: &rng)).get() == expected, "seed \(seed)")
        }
    }

    /// A random message with some of its CRLFs made bare LF or bare CR, rarely a NUL, sometimes a random byte.
    private static func randomRawMessage(using rng: inout SplitMix64) -> [UInt8] {
        var output: [UInt8] = []
        let message = randomMessage(using: &rng)
        var index = 0
        while index < message.count {
            if message[index] == 0x0D && index + 1 < message.count && message[index + 1] == 0x0A {
                switch rng.next() % 6 {
                case 0: output.append(0x0A)
                case 1: output.append(0x0D)
                default: output += [0x0D, 0x0A]
                }
                index += 2
                continue
            }
            switch rng.next() % 400 {
            case 0: output.append(0)
            case 1, 2: output.append(UInt8(truncatingIfNeeded: rng.next()))
            default: break
            }
            output.append(message[index])
            index += 1
        }
        return output
    }

    @Test("normalizer then splitter: the same outcome for every chunking, never a crash", arguments: 0..<100)
    func pipeline(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 4000)
        let bytes = seed % 4 == 0 ? randomMailBytes(count: 300, using: &rng) : Self.randomRawMessage(using: &rng)
        let whole = buffer(bytes)
        func run(_ chunks: [ByteBuffer]) -> Result<SplitResult, MailMessageError> {
            Result { () throws(MailMessageError) -> SplitResult in
                var normalizer = LineEndingNormalizer()
                var normalized = try chunks.map { chunk throws(MailMessageError) in try normalizer.normalize(chunk) }
                if let tail = normalizer.finish() { normalized.append(tail) }
                return try split(normalized)
            }
        }
        let expected = run([whole])
        if case .success(let result) = expected, !bytes.contains(0) {
            // Without NUL, normalizing then splitting is the reference split of the reference normalization.
            let reference = Self.referenceSplit(Self.referenceNormalize(bytes))
            #expect(result.header == reference.header && result.body == reference.body, "seed \(seed)")
        }
        #expect(run(byteChunks(of: whole)) == expected, "seed \(seed)")
        for _ in 0..<10 {
            #expect(run(randomChunks(of: whole, using: &rng)) == expected, "seed \(seed)")
        }
    }

    // MARK: - Header parsing

    /// Header lines, mostly valid, some broken in each way the parser reports.
    private static func randomHeaderBlock(using rng: inout SplitMix64) -> [UInt8] {
        let lines = [
            "From: a@b.test", "Subject: ü", "X-Y :z", "To:", " folded", "\tfolded", "DKIM-Signature: v=1; b=x",
            "A: b", "A: b", "A: b", "Bad Name: x", "no colon", ": empty", "Ä: x", "A: \u{0}", "", "A: b\rc", "A: b\nc",
        ]
        var text = (0..<Int(rng.next() % 8)).map { _ in pick(lines, using: &rng) }.joined(separator: "\r\n")
        if rng.next() % 2 == 0 { text += "\r\n" }
        return Array(text.utf8)
    }

    @Test("parsing never crashes; what parses tiles the block and re-parses field by field", arguments: 0..<300)
    func headerGarbage(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 5000)
        let bytes =
            seed % 3 == 0
            ? randomMailBytes(count: Int(rng.next() % 200), using: &rng) : Self.randomHeaderBlock(using: &rng)
        guard let header = try? MessageHeader.parse(buffer(bytes)) else { return }
        #expect(header.fields.flatMap(\.raw.bytes) == bytes, "seed \(seed)")
        for field in header.fields {
            #expect(try HeaderField(raw: field.raw) == field, "seed \(seed)")
            #expect(field.hasName(field.name.lowercased()), "seed \(seed)")
            #expect(field.raw.bytes.prefix(field.nameLength).elementsEqual(field.name.utf8))
            _ = field.unfoldedValue
        }
        _ = try? header.authorMailbox()
    }

    // MARK: - Addresses and domains

    /// Comments and folding white space, or nothing, to put between tokens.
    private static func randomCFWS(using rng: inout SplitMix64) -> String {
        ["", "", " ", "\t", "(c)", " (nested (c) \\) ) ", "\r\n ", ""][Int(rng.next() % 8)]
    }

    private static func pick(_ options: [String], using rng: inout SplitMix64) -> String {
        options[Int(rng.next() % UInt64(options.count))]
    }

    /// A valid address list and the addresses it holds (as `Mailbox.address` writes them).
    private static func randomAddressList(using rng: inout SplitMix64) -> (text: String, addresses: [String]) {
        func cfws() -> String { randomCFWS(using: &rng) }
        func mailbox() -> (String, String) {
            let localWords = (0...Int(rng.next() % 2)).map { _ in
                pick(["joe", "a", "first.last", "\"a b\"", "\"x\\\"y\"", "jöran", "o'neil", "x+tag"], using: &rng)
            }
            let domain = pick(
                ["example.com", "bücher.example", "a.b.c.test", "[192.0.2.1]", "Example.COM"], using: &rng)
            let local = localWords.joined(separator: ".")
            let spelled = localWords.joined(separator: cfws() + "." + cfws())
            let domainSpelled =
                domain.hasPrefix("[") ? domain : domain.split(separator: ".").joined(separator: cfws() + ".")
            let addrSpec = spelled + cfws() + "@" + cfws() + domainSpelled
            switch rng.next() % 3 {
            case 0:
                return (cfws() + addrSpec + cfws(), local + "@" + domain)
            default:
                let phrase = (0..<Int(rng.next() % 3)).map { _ in
                    pick(["Joe", "\"Q. Public\"", "Jöran", "=?utf-8?q?x?=", "A.", "\"a\\\"b\"", "Who?"], using: &rng)
                }.joined(separator: " ")
                let route = rng.next() % 5 == 0 ? "@relay.test,@b.test:" : ""
                return (phrase + cfws() + "<" + route + cfws() + addrSpec + cfws() + ">" + cfws(), local + "@" + domain)
            }
        }
        var parts: [String] = []
        var addresses: [String] = []
        for _ in 0..<Int(rng.next() % 4) {
            if rng.next() % 5 == 0 {
                let members = (0..<Int(rng.next() % 3)).map { _ in mailbox() }
                parts.append("Group" + cfws() + ":" + members.map(\.0).joined(separator: ",") + ";" + cfws())
                addresses += members.map(\.1)
            } else {
                let (text, address) = mailbox()
                parts.append(text)
                addresses.append(address)
            }
        }
        return (parts.joined(separator: ","), addresses)
    }

    @Test("random valid address lists parse to exactly their addresses", arguments: 0..<300)
    func addressLists(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 6000)
        let (text, expected) = Self.randomAddressList(using: &rng)
        let mailboxes = try AddressParser.parseAddressList(text)
        #expect(mailboxes.map(\.address) == expected, "seed \(seed): \(text.debugDescription)")
        for mailbox in mailboxes {
            let again = try AddressParser.parseMailbox(mailbox.address)
            #expect(again.address == mailbox.address, "seed \(seed): \(text.debugDescription)")
        }
    }

    @Test("mutated address lists never crash; whatever parses is well-formed", arguments: 0..<500)
    func addressGarbage(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &+ 9000)
        var bytes = Array(Self.randomAddressList(using: &rng).text.utf8)
        let noise: [[UInt8]] = [
            [0x3C], [0x3E], [0x40], [0x2C], [0x3A], [0x3B], [0x28], [0x29], [0x22], [0x5C], [0x5B],
            [0x5D], [0x2E], [0x00], [0x01], [0x20], [0xC3, 0xBC],
        ]
        for _ in 0...Int(rng.next() % 3) {
            let position = Int(rng.next() % UInt64(bytes.count + 1))
            if rng.next() % 2 == 0 && position < bytes.count {
                bytes.remove(at: position)
            } else {
                bytes.insert(contentsOf: noise[Int(rng.next() % UInt64(noise.count))], at: position)
            }
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let mailboxes = try? AddressParser.parseAddressList(text) else { return }
        for mailbox in mailboxes {
            let again = try AddressParser.parseMailbox(mailbox.address)
            #expect(again.localPart == mailbox.localPart, "seed \(seed): \(text.debugDescription)")
            #expect(again.domain == mailbox.domain, "seed \(seed): \(text.debugDescription)")
            _ = DomainName.asciiLowercased(mailbox.domain)
        }
        if let single = try? AddressParser.parseMailbox(text) {
            #expect(mailboxes == [single], "seed \(seed): \(text.debugDescription)")
        }
    }

    @Test("domain conversion never crashes; its results are valid and stable", arguments: 0..<300)
    func domainGarbage(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 7000)
        let pieces = ["a", "Z", "-", "_", ".", "ü", "Ü", "例", "xn--", "0", " ", "\u{3002}", "ß", "İ", "\u{200D}"]
        let text = (0..<Int(rng.next() % 20)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
        guard let ascii = DomainName.asciiLowercased(text) else { return }
        #expect(ascii.utf8.allSatisfy { $0 < 0x80 && !($0 >= 0x41 && $0 <= 0x5A) }, "seed \(seed): \(text)")
        #expect(DomainName.asciiLowercased(ascii) == ascii, "seed \(seed): \(text)")
        #expect(ascii.utf8.count <= 253)
    }

    @Test("random bytes as a header value and as a domain", arguments: 0..<100)
    func randomBytesEverywhere(seed: UInt64) {
        var rng = SplitMix64(seed: seed &+ 8000)
        let bytes = (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? AddressParser.parseAddressList(text)
        _ = try? AddressParser.parseMailbox(text)
        _ = DomainName.asciiLowercased(text)
        _ = try? MessageHeader.parse(buffer(Array("From: ".utf8) + bytes)).authorMailbox()
        _ = try? HeaderField(raw: buffer(bytes))
    }
}
