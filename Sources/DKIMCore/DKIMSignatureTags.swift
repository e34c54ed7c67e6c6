/// A parsed and validated DKIM-Signature value (RFC 6376 §3.5).
public struct DKIMSignatureTags: Sendable {
    /// `v=`, always "1".
    public var version: String
    /// `a=`, lowercased, such as "rsa-sha256".
    public var algorithm: String
    /// `b=`, decoded.
    public var signature: [UInt8]
    /// `bh=`, decoded.
    public var bodyHash: [UInt8]
    /// `c=`; simple/simple when absent.
    public var canonicalization: CanonicalizationPair
    /// `d=`.
    public var domain: String
    /// `h=`, lowercased, in order, repeats kept.
    public var signedHeaders: [String]
    /// `i=`, if present, with its dkim-quoted-printable escapes (RFC 6376 §2.11) decoded.
    public var identity: String?
    /// `l=`, if present.
    public var bodyLength: Int?
    /// `q=`, if present.
    public var queryMethods: String?
    /// `s=`.
    public var selector: String
    /// `t=`, if present.
    public var timestamp: Int?
    /// `x=`, if present.
    public var expiration: Int?
    /// Every tag, including ones this type does not interpret.
    public var tagList: TagList

    /// Parses and checks a DKIM-Signature field value (unfolded or not).
    public init(parsing value: String) throws(DKIMCoreError) {
        let tags = try TagList(parsing: value)
        func required(_ name: String) throws(DKIMCoreError) -> String {
            guard let value = tags[name] else {
                throw DKIMCoreError(.missingTag, tag: name, "signature has no \(name)= tag")
            }
            return value
        }
        func invalid(_ name: String, _ why: String) -> DKIMCoreError {
            DKIMCoreError(.invalidTagValue, tag: name, "invalid \(name)= tag: \(why)")
        }
        func decimal(_ name: String) throws(DKIMCoreError) -> Int? {
            guard let text = tags[name] else { return nil }
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let number = Int(text)
            else { throw invalid(name, "\"\(text)\" is not a decimal number") }
            return number
        }

        version = try required("v")
        guard version == "1" else {
            throw DKIMCoreError(.unsupportedVersion, tag: "v", "unsupported signature version v=\(version)")
        }
        algorithm = try required("a").lowercased()
        guard algorithm.split(separator: "-").count == 2 else { throw invalid("a", "\"\(algorithm)\"") }
        guard let signature = Base64.decode(try required("b")), !signature.isEmpty else {
            throw invalid("b", "not base64")
        }
        self.signature = signature
        guard let bodyHash = Base64.decode(try required("bh")), !bodyHash.isEmpty else {
            throw invalid("bh", "not base64")
        }
        self.bodyHash = bodyHash
        if let c = tags["c"] {
            guard let pair = CanonicalizationPair(tagValue: c) else { throw invalid("c", "\"\(c)\"") }
            canonicalization = pair
        } else {
            canonicalization = CanonicalizationPair(header: .simple, body: .simple)
        }
        domain = try required("d")
        guard !domain.isEmpty, !domain.hasPrefix("."), !domain.hasSuffix(".") else {
            throw invalid("d", "\"\(domain)\"")
        }
        let headerList = try required("h")
        signedHeaders = headerList.split(separator: ":", omittingEmptySubsequences: false).map {
            String(TagList.trimmed(Substring($0).utf8)).map { $0.lowercased() } ?? ""
        }
        guard signedHeaders.allSatisfy({ !$0.isEmpty }) else { throw invalid("h", "empty header name") }
        guard signedHeaders.contains("from") else { throw invalid("h", "From is not signed") }
        selector = try required("s")
        guard !selector.isEmpty else { throw invalid("s", "empty selector") }
        identity = tags["i"].map(Self.decodeQuotedPrintable)
        if let identity {
            guard let at = identity.lastIndex(of: "@") else { throw invalid("i", "\"\(identity)\" has no '@'") }
            let identityDomain = identity[identity.index(after: at)...].lowercased()
            let signingDomain = domain.lowercased()
            guard identityDomain == signingDomain || identityDomain.hasSuffix("." + signingDomain) else {
                throw invalid("i", "\(identityDomain) is not d=\(domain) or a subdomain of it")
            }
        }
        bodyLength = try decimal("l")
        queryMethods = tags["q"]
        if let queryMethods, !queryMethods.split(separator: ":").contains(where: { $0.lowercased() == "dns/txt" }) {
            throw invalid("q", "no dns/txt in \"\(queryMethods)\"")
        }
        timestamp = try decimal("t")
        expiration = try decimal("x")
        if let timestamp, let expiration, expiration < timestamp {
            throw invalid("x", "x=\(expiration) is before t=\(timestamp)")
        }
        tagList = tags
    }

    /// `=XX` hex escapes to bytes; anything else (a stray '=') stays as written.
    static func decodeQuotedPrintable(_ text: String) -> String {
        guard text.contains("=") else { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        var index = 0
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: return byte - 0x30
            case 0x41...0x46: return byte - 0x41 + 10
            case 0x61...0x66: return byte - 0x61 + 10
            default: return nil
            }
        }
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "="), index + 2 < bytes.count,
                let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2])
            {
                out.append(high << 4 | low)
                index += 3
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
