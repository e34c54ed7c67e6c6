import ARC
import DKIM
import DKIMCore
import Keys
import MailMessage

/// Picks the signers for a message by its From domain, from the configured keys and rules.
///
/// Lookup order for `a.b.example.com`: the domain itself, `*.b.example.com`, `b.example.com`, `*.example.com`,
/// `example.com`, ... and finally `*`. A plain domain rule therefore also covers its subdomains unless a closer
/// rule exists; `*.domain` covers only subdomains.
public struct SigningTable: Sendable {
    private let rules: [String: [DKIMSigner]]
    /// Every key of `signing.keys` as loaded, for ARC sealers (which name keys, not table rules).
    private let loadedKeys: [String: (entry: RelayConfiguration.KeyEntry, key: Loaded)]

    /// Every distinct `d=`/`s=` pair the table can sign as.
    public let identities: Set<SigningIdentity>

    /// Builds the signers of every rule, each key from its backend: a PEM file read here (`loadKey`; tests may pass
    /// keys in memory), a PKCS#11 token (`openPKCS11`), or, for keys with the agent backend when `agentKeys` is
    /// given, the public keys a signer agent reported (this process never reads those key files). Without
    /// `agentKeys` the agent's key files are read here too, which is how `signet check-config` checks them.
    public init(
        _ signing: RelayConfiguration.Signing,
        agentKeys: [SignerAgentProtocol.KeyDescription]? = nil,
        loadKey: (String) throws -> PrivateKey = { try PrivateKey(contentsOfFile: $0, requirePrivatePermissions: true) },
        openPKCS11: (PKCS11KeyLocation) throws -> any DigestSigningKey = { try PKCS11Key($0) }
    ) throws(ConfigurationError) {
        let byName = Dictionary((agentKeys ?? []).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        try self.init(signing) { name, entry in
            switch signing.backend(of: entry) {
            case .pkcs11:
                guard let location = entry.pkcs11 else { throw ConfigurationError(["no pkcs11 section"]) }
                return .local(try openPKCS11(location))
            case .agent where agentKeys != nil:
                guard let description = byName[name] else {
                    throw ConfigurationError(["the signer agent holds no key named \(name)"])
                }
                return .agent(
                    try PublicKey(dkimKeyData: description.publicKeyData, algorithm: description.algorithm),
                    reference: name)
            case .agent, .inProcess:
                return .local(try loadKey(entry.keyFile))
            }
        }
    }

    /// A key as the table sees it: one this process signs with (in memory or in a token), or the public half and
    /// the agent's name for it.
    private enum Loaded {
        case local(any DigestSigningKey)
        case agent(PublicKey, reference: String)

        var algorithm: KeyAlgorithm {
            switch self {
            case .local(let key): key.algorithm
            case .agent(let key, _): key.algorithm
            }
        }
    }

    private init(
        _ signing: RelayConfiguration.Signing, load: (String, RelayConfiguration.KeyEntry) throws -> Loaded
    ) throws(ConfigurationError) {
        var problems: [String] = []
        var loaded: [String: Loaded] = [:]
        for (name, entry) in signing.keys.sorted(by: { $0.key < $1.key }) {
            do {
                let key = try load(name, entry)
                if let algorithm = entry.algorithm, algorithm.keyAlgorithm != key.algorithm {
                    problems.append(
                        "signing.keys.\(name): \(entry.pkcs11.map { "PKCS#11 key \($0)" } ?? entry.keyFile) is a \(key.algorithm.rawValue) key, not for \(algorithm.rawValue)"
                    )
                    continue
                }
                loaded[name] = key
            } catch {
                problems.append("signing.keys.\(name): cannot use \(entry.source): \(error)")
            }
        }
        var rules: [String: [DKIMSigner]] = [:]
        var identities = Set<SigningIdentity>()
        for (index, rule) in signing.table.enumerated() {
            var options = DKIMSignerOptions()
            options.canonicalization = rule.canonicalization ?? signing.canonicalization
            options.signedHeaders = rule.headers ?? signing.headers
            options.oversign = signing.oversign
            options.includeTimestamp = signing.timestamp
            options.expiration = signing.expiration > 0 ? signing.expiration : nil
            var signers: [DKIMSigner] = []
            for name in rule.keys {
                guard let entry = signing.keys[name], let key = loaded[name] else { continue }
                do {
                    let signer: DKIMSigner
                    switch key {
                    case .local(let signingKey):
                        signer = try DKIMSigner(
                            signingKey: signingKey, domain: entry.domain, selector: entry.selector, options: options)
                    case .agent(let publicKey, let reference):
                        signer = try DKIMSigner(
                            domain: entry.domain, selector: entry.selector, publicKey: publicKey, keyReference: reference,
                            options: options)
                    }
                    signers.append(signer)
                    identities.insert(SigningIdentity(domain: signer.domain, selector: signer.selector))
                } catch {
                    problems.append("signing.table[\(index)] key \(name): \(error)")
                }
            }
            let pattern: String
            if rule.from == "*" {
                pattern = "*"
            } else if rule.from.hasPrefix("*.") {
                pattern = "*." + (Self.normalizedDomain(String(rule.from.dropFirst(2))) ?? rule.from)
            } else {
                pattern = Self.normalizedDomain(rule.from) ?? rule.from
            }
            guard rules[pattern] == nil else {
                problems.append("signing.table[\(index)].from: '\(rule.from)' has more than one rule")
                continue
            }
            rules[pattern] = signers
        }
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        self.rules = rules
        self.identities = identities
        self.loadedKeys = loaded.reduce(into: [:]) { result, item in
            if let entry = signing.keys[item.key] { result[item.key] = (entry, item.value) }
        }
    }

    /// An ARC sealer with the key named `name` in `signing.keys` (its private key, or the agent's reference).
    func sealer(forKey name: String, options: DKIMSignerOptions) throws -> ARCSealer {
        guard let (entry, key) = loadedKeys[name] else {
            throw ConfigurationError(["no key named '\(name)' in signing.keys"])
        }
        switch key {
        case .local(let privateKey):
            return try ARCSealer(domain: entry.domain, selector: entry.selector, key: privateKey, options: options)
        case .agent(let publicKey, let reference):
            return try ARCSealer(
                domain: entry.domain, selector: entry.selector, publicKey: publicKey, keyReference: reference,
                options: options)
        }
    }

    /// Whether any rule exists: with none, every message is relayed unsigned.
    public var isEmpty: Bool { rules.isEmpty }

    /// The signers for mail from `domain`; empty when no rule matches.
    public func signers(forFromDomain domain: String) -> [DKIMSigner] {
        guard let domain = Self.normalizedDomain(domain) else { return rules["*"] ?? [] }
        if let exact = rules[domain] { return exact }
        var rest = Substring(domain)
        while let dot = rest.firstIndex(of: ".") {
            let parent = rest[rest.index(after: dot)...]
            if let wildcard = rules["*." + parent] { return wildcard }
            if let plain = rules[String(parent)] { return plain }
            rest = parent
        }
        return rules["*"] ?? []
    }

    /// Lowercase ASCII (A-label) form of a domain, or nil when it is not one.
    static func normalizedDomain(_ text: String) -> String? {
        guard !text.isEmpty, let ascii = DomainName.asciiLowercased(text.hasSuffix(".") ? String(text.dropLast()) : text)
        else { return nil }
        return ascii
    }
}

/// A `d=` and `s=` pair.
public struct SigningIdentity: Sendable, Hashable {
    public var domain: String
    public var selector: String
    public init(domain: String, selector: String) {
        self.domain = domain.lowercased()
        self.selector = selector.lowercased()
    }
}
