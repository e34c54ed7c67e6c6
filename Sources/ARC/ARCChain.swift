import DKIM
import DKIMCore
import MailMessage
import NIOCore

/// The chain validation state an ARC-Seal records in `cv=` and a validator computes (RFC 8617 §4.4, §5.2).
public enum ARCChainStatus: String, Sendable, Hashable {
    case none, pass, fail
}

/// One ARC set (RFC 8617 §4.1): the three fields of one instance.
public struct ARCSet: Sendable {
    public var instance: Int
    public var authenticationResults: HeaderField
    public var messageSignature: HeaderField
    public var seal: HeaderField
}

/// The parsed tags of an ARC-Message-Signature or ARC-Seal; `b=` and, for the AMS, `bh=` decoded.
struct ARCSignatureTags: Sendable {
    var instance: Int
    var algorithm: DKIMAlgorithm
    var signature: [UInt8]
    var domain: String
    var selector: String
    /// AMS only.
    var bodyHash: [UInt8] = []
    var canonicalization = CanonicalizationPair(header: .relaxed, body: .relaxed)
    var signedHeaders: [String] = []
    /// AS only.
    var chainStatus: ARCChainStatus = .none

    var keyName: String { "\(selector)._domainkey.\(domain)" }
    var bodyHasherKey: BodyHasher.Key { BodyHasher.Key(canonicalization: canonicalization.body) }

    enum Kind { case messageSignature, seal }

    /// Parses and checks the tags RFC 8617 §4.1.2 and §4.1.3 require; unknown tags are ignored.
    init(parsing value: String, kind: Kind) throws(ARCError) {
        let tags: TagList
        do {
            tags = try TagList(parsing: value)
        } catch {
            throw ARCError("malformed tag list: \(error.message)")
        }
        func required(_ name: String) throws(ARCError) -> String {
            guard let value = tags[name] else { throw ARCError("missing \(name)= tag") }
            return value
        }
        instance = try ARCChain.instanceNumber(try required("i"))
        let algorithmName = try required("a").lowercased()
        switch algorithmName {
        case "rsa-sha256": algorithm = .rsaSHA256
        case "ed25519-sha256": algorithm = .ed25519SHA256
        default: throw ARCError("unsupported algorithm a=\(algorithmName)")
        }
        guard let signature = Base64.decode(try required("b")), !signature.isEmpty else {
            throw ARCError("b= is not base64")
        }
        self.signature = signature
        domain = try required("d")
        guard !domain.isEmpty, !domain.hasPrefix("."), !domain.hasSuffix("."),
            domain.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !Array("()<>[]:;@\\,".utf8).contains($0) })
        else { throw ARCError("invalid d=\(domain)") }
        selector = try required("s")
        guard !selector.isEmpty, !selector.contains(where: \.isWhitespace) else {
            throw ARCError("invalid s=\(selector)")
        }
        if let timestamp = tags["t"] {
            guard !timestamp.isEmpty, timestamp.utf8.count <= 18,
                timestamp.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
            else { throw ARCError("t=\(timestamp) is not a decimal number") }
        }
        switch kind {
        case .messageSignature:
            guard let bodyHash = Base64.decode(try required("bh")), !bodyHash.isEmpty else {
                throw ARCError("bh= is not base64")
            }
            self.bodyHash = bodyHash
            if let c = tags["c"] {
                guard let pair = CanonicalizationPair(tagValue: c) else { throw ARCError("invalid c=\(c)") }
                canonicalization = pair
            }
            signedHeaders = try required("h").split(separator: ":", omittingEmptySubsequences: false).map {
                $0.arcTrimmed.lowercased()
            }
            // An empty h= or an empty name in it signs nothing more, which the ARC test suite accepts.
            // RFC 8617 §4.1.2: the AMS must not sign ARC-Seal fields.
            guard !signedHeaders.contains("arc-seal") else { throw ARCError("h= includes ARC-Seal") }
        case .seal:
            guard tags["h"] == nil else { throw ARCError("h= is not allowed in an ARC-Seal") }
            let cv = try required("cv").lowercased()
            guard let status = ARCChainStatus(rawValue: cv) else { throw ARCError("invalid cv=\(cv)") }
            chainStatus = status
        }
    }
}

/// A problem with an ARC chain, in words.
public struct ARCError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The ARC fields of a message grouped by instance, with the structure of RFC 8617 §5.2 steps 1–4 checked.
public struct ARCChain: Sendable {
    /// The highest instance limit RFC 8617 §4.2.1 allows.
    public static let maximumInstance = 50

    /// The sets, instance 1 first; empty when the message has no ARC fields or the structure is broken.
    public let sets: [ARCSet]
    /// The highest `i=` seen on any ARC field (0 when there are none), even when the structure is broken.
    public let highestInstance: Int
    /// Why the chain's structure is invalid; nil when it is sound (or absent).
    public let structureError: String?
    /// The newest ARC-Seal's `cv=`, when it could be read.
    public let newestSealStatus: ARCChainStatus?

    let sealTags: [ARCSignatureTags]
    let signatureTags: [ARCSignatureTags]

    /// True when the message carries no ARC field at all.
    public var isEmpty: Bool { highestInstance == 0 && structureError == nil }

    /// Collects the ARC fields of `header` and checks their structure.
    public init(header: MessageHeader) {
        var results: [Int: [HeaderField]] = [:]
        var signatures: [Int: [HeaderField]] = [:]
        var seals: [Int: [HeaderField]] = [:]
        var structureProblem: String?
        var highest = 0
        var count = 0
        for field in header.fields {
            let isResults = field.hasName("arc-authentication-results")
            guard isResults || field.hasName("arc-message-signature") || field.hasName("arc-seal") else { continue }
            count += 1
            do {
                let instance = try Self.instance(of: field, isResults: isResults)
                highest = max(highest, instance)
                if isResults {
                    results[instance, default: []].append(field)
                } else if field.hasName("arc-seal") {
                    seals[instance, default: []].append(field)
                } else {
                    signatures[instance, default: []].append(field)
                }
            } catch {
                if structureProblem == nil { structureProblem = "\(field.name): \(error)" }
            }
        }
        highestInstance = highest
        var sets: [ARCSet] = []
        var sealTags: [ARCSignatureTags] = []
        var signatureTags: [ARCSignatureTags] = []
        var newest: ARCChainStatus?
        if let newestSeal = seals[highest]?.last,
            let tags = try? ARCSignatureTags(parsing: newestSeal.unfoldedValue, kind: .seal)
        {
            newest = tags.chainStatus
        }
        if structureProblem == nil && count > 0 {
            structureProblem = Self.checkStructure(
                highest: highest, results: results, signatures: signatures, seals: seals,
                sets: &sets, sealTags: &sealTags, signatureTags: &signatureTags)
        }
        if structureProblem != nil {
            sets = []
            sealTags = []
            signatureTags = []
        }
        self.sets = sets
        self.sealTags = sealTags
        self.signatureTags = signatureTags
        self.structureError = structureProblem
        self.newestSealStatus = newest
    }

    private static func checkStructure(
        highest: Int,
        results: [Int: [HeaderField]],
        signatures: [Int: [HeaderField]],
        seals: [Int: [HeaderField]],
        sets: inout [ARCSet],
        sealTags: inout [ARCSignatureTags],
        signatureTags: inout [ARCSignatureTags]
    ) -> String? {
        guard highest <= maximumInstance else { return "instance \(highest) is above \(maximumInstance)" }
        let present = Set(results.keys).union(signatures.keys).union(seals.keys)
        guard present == Set(1...highest) else {
            let missing = Set(1...highest).subtracting(present).sorted()
            return "ARC sets are not numbered 1 to \(highest) without gaps (missing \(missing))"
        }
        for instance in 1...highest {
            let sets3 = (results[instance] ?? [], signatures[instance] ?? [], seals[instance] ?? [])
            for (name, fields) in [
                ("ARC-Authentication-Results", sets3.0), ("ARC-Message-Signature", sets3.1), ("ARC-Seal", sets3.2),
            ] where fields.count != 1 {
                return fields.isEmpty
                    ? "instance \(instance) has no \(name)" : "instance \(instance) has \(fields.count) \(name) fields"
            }
            let set = ARCSet(
                instance: instance, authenticationResults: sets3.0[0], messageSignature: sets3.1[0], seal: sets3.2[0])
            do {
                signatureTags.append(
                    try ARCSignatureTags(parsing: set.messageSignature.unfoldedValue, kind: .messageSignature))
            } catch {
                return "ARC-Message-Signature i=\(instance): \(error)"
            }
            do {
                sealTags.append(try ARCSignatureTags(parsing: set.seal.unfoldedValue, kind: .seal))
            } catch {
                return "ARC-Seal i=\(instance): \(error)"
            }
            sets.append(set)
        }
        return nil
    }

    /// `i=` of an ARC field: a tag of the AMS and AS, the first element of the AAR (RFC 8617 §4.1.1).
    private static func instance(of field: HeaderField, isResults: Bool) throws(ARCError) -> Int {
        let value = field.unfoldedValue
        if isResults {
            guard let semicolon = value.firstIndex(of: ";") else { throw ARCError("no \"i=N;\" at the start") }
            let first = value[..<semicolon].arcTrimmed
            guard first.hasPrefix("i"), let equals = first.firstIndex(of: "="),
                first[..<equals].arcTrimmed == "i"
            else { throw ARCError("no \"i=N;\" at the start") }
            return try instanceNumber(first[first.index(after: equals)...].arcTrimmed)
        }
        let tags: TagList
        do {
            tags = try TagList(parsing: value)
        } catch {
            throw ARCError("malformed tag list: \(error.message)")
        }
        guard let text = tags["i"] else { throw ARCError("missing i= tag") }
        return try instanceNumber(text)
    }

    /// A decimal instance number, 1 or more.
    static func instanceNumber(_ text: String) throws(ARCError) -> Int {
        guard !text.isEmpty, text.utf8.count <= 9, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            let number = Int(text), number >= 1
        else { throw ARCError("invalid instance i=\(text)") }
        return number
    }
}

extension StringProtocol {
    /// Without white space (SP, HTAB, CR, LF) at either end.
    var arcTrimmed: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
