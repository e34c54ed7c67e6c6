import Foundation
import SRS
import Testing

/// The scheme against fixed vectors (taken from Mail::SRS 0.31 with `time` pinned to 1700000000) and the rules of
/// its reverse; the interop suite repeats this against the live Perl module and postsrsd for generated addresses.
@Suite("SRS scheme")
struct SRSSchemeTests {
    static let now = 1_700_000_000  // day 19675: timestamp "G3"
    static let day = 86_400

    static func scheme(
        _ secrets: [String] = ["test-secret-1"], _ configure: (inout SRSOptions) -> Void = { _ in }
    )
        -> SRSScheme
    {
        var options = SRSOptions()
        options.maximumLocalPartLength = nil
        configure(&options)
        return try! SRSScheme(secrets: secrets, options: options)
    }

    @Test("forward matches Mail::SRS: SRS0, SRS1 of SRS0, SRS1 of SRS1")
    func forwardVectors() throws {
        let first = Self.scheme()
        let second = Self.scheme(["test-secret-2"])
        let srs0 = try first.forward("alice@orig.example", domain: "fwd.example", now: Self.now)
        #expect(srs0 == "SRS0=uvFg=G3=orig.example=alice@fwd.example")
        #expect(
            try first.forward("Bob.Smith+tag@Orig.Example", domain: "fwd.example", now: Self.now)
                == "SRS0=1GXh=G3=Orig.Example=Bob.Smith+tag@fwd.example")
        let srs1 = try second.forward(srs0, domain: "fwd2.example", now: Self.now)
        #expect(srs1 == "SRS1=AwtL=fwd.example==uvFg=G3=orig.example=alice@fwd2.example")
        #expect(
            try first.forward(srs1, domain: "fwd3.example", now: Self.now)
                == "SRS1=FTJ0=fwd.example==uvFg=G3=orig.example=alice@fwd3.example")
        // An alias given as an address uses its domain; the forwarder's own domain is not rewritten.
        #expect(try first.forward("alice@orig.example", domain: "list@fwd.example", now: Self.now) == srs0)
        #expect(try first.forward("alice@FWD.example", domain: "fwd.example", now: Self.now) == "alice@FWD.example")
    }

    @Test("reverse: SRS0 to the original, SRS1 to the first forwarder's SRS0")
    func reverseVectors() throws {
        let first = Self.scheme()
        let second = Self.scheme(["test-secret-2"])
        #expect(try first.reverse("SRS0=uvFg=G3=orig.example=alice@fwd.example", now: Self.now) == "alice@orig.example")
        #expect(
            try second.reverse("SRS1=AwtL=fwd.example==uvFg=G3=orig.example=alice@fwd2.example", now: Self.now)
                == "SRS0=uvFg=G3=orig.example=alice@fwd.example")
    }

    @Test("separators, tags in any case, + and - after the tag")
    func separators() throws {
        let plus = Self.scheme { $0.separator = UInt8(ascii: "+") }
        let address = try plus.forward("alice@orig.example", domain: "fwd.example", now: Self.now)
        #expect(address == "SRS0+uvFg=G3=orig.example=alice@fwd.example")
        #expect(try plus.reverse(address, now: Self.now) == "alice@orig.example")
        #expect(try plus.reverse("srs0-uvFg=G3=orig.example=alice@fwd.example", now: Self.now) == "alice@orig.example")
        // SRS1 keeps the first hop's separator inside.
        let relayed = try Self.scheme(["other"]).forward(address, domain: "b.example", now: Self.now)
        #expect(relayed.hasPrefix("SRS1=") && relayed.contains("=fwd.example=+uvFg=G3="))
        #expect(try Self.scheme(["other"]).reverse(relayed, now: Self.now) == address)
    }

    @Test("the hash is compared without case; a different secret or a changed character fails")
    func hashRules() throws {
        let scheme = Self.scheme()
        #expect(
            try scheme.reverse("SRS0=UVFG=G3=orig.example=alice@fwd.example", now: Self.now) == "alice@orig.example")
        #expect(
            try scheme.reverse("SRS0=uvfg=g3=ORIG.example=ALICE@fwd.example", now: Self.now) == "ALICE@ORIG.example")
        #expect(throws: SRSError.invalidHash(address: "SRS0=uvFh=G3=orig.example=alice@fwd.example")) {
            try scheme.reverse("SRS0=uvFh=G3=orig.example=alice@fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.invalidHash(address: "SRS0=uvF=G3=orig.example=alice@fwd.example")) {
            try scheme.reverse("SRS0=uvF=G3=orig.example=alice@fwd.example", now: Self.now)
        }
        // Longer prefixes of the full hash are accepted, as Mail::SRS does.
        let long = Self.scheme { $0.hashLength = 10 }
        let address = try long.forward("alice@orig.example", domain: "fwd.example", now: Self.now)
        #expect(address.hasPrefix("SRS0=uvFg") && address.split(separator: "=")[1].count == 10)
        #expect(try scheme.reverse(address, now: Self.now) == "alice@orig.example")
        #expect(throws: SRSError.invalidHash(address: "SRS0=uvFg=G3=orig.example=alice@fwd.example")) {
            try Self.scheme(["test-secret-2"]).reverse("SRS0=uvFg=G3=orig.example=alice@fwd.example", now: Self.now)
        }
    }

    @Test("secret rotation: the first signs, all verify, a removed one no longer does")
    func rotation() throws {
        let old = Self.scheme(["old-test-secret"])
        let rotated = Self.scheme(["new-test-secret", "old-test-secret"])
        let retired = Self.scheme(["new-test-secret"])
        let before = try old.forward("carol@orig.example", domain: "fwd.example", now: Self.now)
        let after = try rotated.forward("carol@orig.example", domain: "fwd.example", now: Self.now)
        #expect(before != after)
        #expect(try rotated.reverse(before, now: Self.now) == "carol@orig.example")
        #expect(try rotated.reverse(after, now: Self.now) == "carol@orig.example")
        #expect(try retired.reverse(after, now: Self.now) == "carol@orig.example")
        #expect(throws: SRSError.invalidHash(address: before)) { try retired.reverse(before, now: Self.now) }
    }

    @Test("base64url hashes are written when asked and accepted either way")
    func base64url() throws {
        let url = Self.scheme { $0.hashEncoding = .base64url }
        let standard = Self.scheme()
        // Find a sender whose hash has + or / in standard base64.
        var found = false
        for index in 0..<400 {
            let sender = "user\(index)@orig.example"
            let a = try standard.forward(sender, domain: "fwd.example", now: Self.now)
            let b = try url.forward(sender, domain: "fwd.example", now: Self.now)
            let hashA = a.split(separator: "=")[1]
            guard hashA.contains("+") || hashA.contains("/") else { continue }
            found = true
            let hashB = b.split(separator: "=")[1]
            #expect(hashB == String(hashA).replacingOccurrences("+", "-").replacingOccurrences("/", "_"))
            #expect(try standard.reverse(b, now: Self.now) == sender)
            #expect(try url.reverse(a, now: Self.now) == sender)
        }
        #expect(found)
    }

    @Test("timestamps: the window, expiry, the future, the 1024-day cycle")
    func timestamps() throws {
        let scheme = Self.scheme()
        let address = try scheme.forward("dave@orig.example", domain: "fwd.example", now: Self.now)
        #expect(try scheme.reverse(address, now: Self.now + 21 * Self.day) == "dave@orig.example")
        #expect(throws: SRSError.expired(address: address, ageDays: 22, maximumAgeDays: 21)) {
            try scheme.reverse(address, now: Self.now + 22 * Self.day)
        }
        #expect(throws: SRSError.futureTimestamp(address: address, daysAhead: 1)) {
            try scheme.reverse(address, now: Self.now - Self.day)
        }
        // The stamp is the day mod 1024: valid again a whole cycle later, as in Mail::SRS.
        #expect(try scheme.reverse(address, now: Self.now + 1024 * Self.day) == "dave@orig.example")
        let short = Self.scheme { $0.maximumAgeDays = 3 }
        #expect(throws: SRSError.expired(address: address, ageDays: 4, maximumAgeDays: 3)) {
            try short.reverse(address, now: Self.now + 4 * Self.day)
        }
        // The hash is checked before the timestamp (Mail::SRS order): a forged old address is a bad hash.
        let forged = address.replacingOccurrences("=G3=", "=A3=")
        #expect(throws: SRSError.invalidHash(address: forged)) { try scheme.reverse(forged, now: Self.now) }
        // A lower-cased stamp still verifies (the hash is over lower case) and decodes as base32.
        #expect(try scheme.reverse(address.replacingOccurrences("=G3=", "=g3="), now: Self.now) == "dave@orig.example")
    }

    @Test("local parts with =, dots, plus, quotes keep their bytes")
    func oddLocalParts() throws {
        let scheme = Self.scheme()
        for sender in [
            "a=b=c@orig.example", "\"john smith\"@orig.example", "\"a=b\"@orig.example",
            "first.last+tag@sub.orig.example",
            "MiXeD.CaSe@Orig.EXAMPLE", "x@" + String(repeating: "long-label.", count: 20) + "example",
            "SRS0look@orig.example", "srs1=only-two@orig.example", "ünï@orig.example",
        ] {
            let address = try scheme.forward(sender, domain: "fwd.example", now: Self.now)
            #expect(try scheme.reverse(address, now: Self.now) == sender, "\(sender) → \(address)")
        }
    }

    @Test("bad input: clear errors, never a crash")
    func badInput() throws {
        let scheme = try SRSScheme(secrets: ["test-secret-1"])
        #expect(throws: SRSError.malformed(address: "no-at-sign", reason: "no @domain")) {
            try scheme.forward("no-at-sign", domain: "fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.malformed(address: "\"a@b\"@orig.example", reason: "the local part contains @")) {
            try scheme.forward("\"a@b\"@orig.example", domain: "fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.malformed(address: "@orig.example", reason: "empty local part")) {
            try scheme.forward("@orig.example", domain: "fwd.example", now: Self.now)
        }
        // An "=" in the domain would make the SRS address unreadable (SRSFuzzer found the forward that could not
        // be reversed).
        #expect(throws: SRSError.malformed(address: "t=dave@fwdT=example.net", reason: "the domain contains '='")) {
            try scheme.forward("t=dave@fwdT=example.net", domain: "fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.self) {
            try scheme.forward("a\r\nb@orig.example", domain: "fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.self) { try scheme.forward("a@orig.example", domain: "", now: Self.now) }
        #expect(throws: SRSError.notSRS(address: "alice@fwd.example")) {
            try scheme.reverse("alice@fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.notSRS(address: "SRS2=x@fwd.example")) {
            try scheme.reverse("SRS2=x@fwd.example", now: Self.now)
        }
        #expect(throws: SRSError.notSRS(address: "")) { try scheme.reverse("", now: Self.now) }
        for lookalike in [
            "SRS0=@fwd.example", "SRS0=abcd@fwd.example", "SRS0=abcd=G3@fwd.example", "SRS0=abcd=G3=host@fwd.example",
            "SRS0=abcd=G3==user@fwd.example", "SRS1=abcd@fwd.example", "SRS1=abcd=host@fwd.example",
            "SRS1=a.b=host=x@fwd.example", "SRS0=uvFg=G3=orig.example=alice", "SRS0=uvFg=!!=orig.example=alice@x",
        ] {
            #expect(throws: SRSError.self, "\(lookalike)") { try scheme.reverse(lookalike, now: Self.now) }
        }
        #expect(throws: SRSError.noSecret) { try SRSScheme(secrets: []) }
        #expect(throws: SRSError.noSecret) { try SRSScheme(secrets: ["ok", ""]) }
    }

    @Test("the 64-octet local-part limit is reported with what the rewrite would have been")
    func localPartLimit() throws {
        let scheme = try SRSScheme(secrets: ["test-secret-1"])
        let sender = "someone.with.a.long.name@" + String(repeating: "sub.", count: 8) + "example.org"
        do {
            _ = try scheme.forward(sender, domain: "fwd.example", now: Self.now)
            Issue.record("no error")
        } catch {
            guard case .localPartTooLong(let address, let rewritten, let length, let limit) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(address == sender && limit == 64 && length > 64)
            #expect(try Self.scheme().reverse(rewritten, now: Self.now) == sender)
        }
        #expect(try scheme.forward("short@orig.example", domain: "fwd.example", now: Self.now).hasPrefix("SRS0="))
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        replacingOccurrences(of: target, with: replacement)
    }
}
