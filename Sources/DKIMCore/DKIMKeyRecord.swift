/// A DKIM public key record (RFC 6376 §3.6.1): parser and writer.
public struct DKIMKeyRecord: Sendable, Hashable {
    /// `k=`: "rsa" (the default) or "ed25519" (RFC 8463).
    public var keyType: String
    /// `p=`, decoded; empty means the key was revoked.
    public var publicKeyData: [UInt8]
    /// `h=`: acceptable hash algorithms; nil means all.
    public var hashAlgorithms: [String]?
    /// `s=`: service types; nil means all.
    public var serviceTypes: [String]?
    /// `t=` flags such as "y" (testing) and "s" (strict identity).
    public var flags: [String] = []
    /// `n=`.
    public var notes: String?

    /// A record for a public key.
    public init(keyType: String, publicKeyData: [UInt8]) {
        self.keyType = keyType
        self.publicKeyData = publicKeyData
    }

    /// Parses a TXT record's text (its strings already joined). `v=`, if present, must come first and be DKIM1.
    public init(parsing text: String) throws(DKIMCoreError) {
        let tags: TagList
        do {
            tags = try TagList(parsing: text)
        } catch {
            throw DKIMCoreError(.malformedKeyRecord, tag: error.tag, "malformed key record: \(error.message)")
        }
        if let version = tags["v"] {
            guard tags.tags.first?.name == "v" else {
                throw DKIMCoreError(.malformedKeyRecord, tag: "v", "v= is not the first tag of the key record")
            }
            guard version == "DKIM1" else {
                throw DKIMCoreError(.unsupportedVersion, tag: "v", "unsupported key record version v=\(version)")
            }
        }
        guard let p = tags["p"] else {
            throw DKIMCoreError(.malformedKeyRecord, tag: "p", "key record has no p= tag")
        }
        guard let keyData = Base64.decode(p) else {
            throw DKIMCoreError(.malformedKeyRecord, tag: "p", "p= is not base64")
        }
        self.init(keyType: tags["k"] ?? "rsa", publicKeyData: keyData)
        func list(_ value: String?) -> [String]? {
            value.map { $0.split(separator: ":").map { String(TagList.trimmed(Substring($0).utf8))! } }
        }
        hashAlgorithms = list(tags["h"])
        serviceTypes = list(tags["s"])
        flags = list(tags["t"]) ?? []
        notes = tags["n"]
    }

    /// `v=DKIM1; k=...; [h=; s=; t=; n=;] p=BASE64`.
    public var text: String {
        var parts = ["v=DKIM1", "k=\(keyType)"]
        if let hashAlgorithms { parts.append("h=" + hashAlgorithms.joined(separator: ":")) }
        if let serviceTypes { parts.append("s=" + serviceTypes.joined(separator: ":")) }
        if !flags.isEmpty { parts.append("t=" + flags.joined(separator: ":")) }
        if let notes { parts.append("n=" + notes) }
        parts.append("p=" + Base64.encode(publicKeyData))
        return parts.joined(separator: "; ")
    }

    /// `text` cut into the at most 255-byte character-strings a TXT record is made of (RFC 1035 §3.3.14).
    public var txtStrings: [String] {
        let bytes = Array(text.utf8)
        return stride(from: 0, to: max(bytes.count, 1), by: 255).map {
            String(decoding: bytes[$0..<min($0 + 255, bytes.count)], as: UTF8.self)
        }
    }

    /// A zone file line: `sel._domainkey.example.com. IN TXT ( "..." "..." )`.
    public func zoneFileLine(selector: String, domain: String) -> String {
        let owner = "\(selector)._domainkey.\(domain)" + (domain.hasSuffix(".") ? "" : ".")
        let strings = txtStrings.map { "\"\($0)\"" }.joined(separator: " ")
        return "\(owner) IN TXT ( \(strings) )"
    }
}
