import ArgumentParser
import DKIM
import DKIMCore
import Keys

/// `signet keygen`: a new signing key and the DNS record that publishes it.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Generate a DKIM signing key and print its DNS TXT record.",
        discussion: """
            Writes the private key as a PKCS#8 PEM file readable by its owner only (mode 0600).
            Publish the printed record at SELECTOR._domainkey.DOMAIN before signing with the key.
            """
    )

    @Option(help: "rsa-sha256 (compatible everywhere) or ed25519-sha256 (RFC 8463; pair it with an RSA key).")
    var algorithm: String = DKIMAlgorithm.rsaSHA256.rawValue

    @Option(help: "RSA key size in bits, 1024 to 4096.")
    var bits: Int = 2048

    @Option(help: "Where to write the private key.")
    var out: String

    @Option(help: "Selector to show in the printed record.")
    var selector: String = "signet"

    @Option(help: "Domain to show in the printed record.")
    var domain: String?

    @Flag(help: "Replace an existing key file.")
    var force = false

    func run() throws {
        let algorithm = try parseAlgorithm(self.algorithm)
        let key: PrivateKey
        switch algorithm {
        case .rsaSHA256:
            guard (1024...4096).contains(bits) else {
                throw CLIError("--bits \(bits) is out of range: RSA keys must be 1024 to 4096 bits (2048 recommended)")
            }
            key = try PrivateKey.generateRSA(bits: bits)
        case .ed25519SHA256:
            key = try PrivateKey.generateEd25519()
        }
        try IO.writePrivateFile(try key.pemRepresentation(), to: out, overwrite: force)
        print(dnsRecordText(for: key.publicKey, selector: selector, domain: domain))
    }
}

/// `signet dns-record`: the TXT record an existing key needs.
struct DNSRecordCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns-record",
        abstract: "Print the DNS TXT record for a signing key.",
        discussion: "The record goes at SELECTOR._domainkey.DOMAIN; long RSA records are split into 255-byte strings."
    )

    @Option(help: "The selector the key signs with (s=).")
    var selector: String

    @Option(help: "The private key: a PEM file, or a pkcs11: URI (RFC 7512) for a key in a token.")
    var key: String

    @Option(help: "The signing domain (d=); without it the name is relative to the zone.")
    var domain: String?

    func run() throws {
        let signingKey = try loadSigningKey(key)
        print(dnsRecordText(for: signingKey.publicKey, selector: selector, domain: domain))
    }
}

func parseAlgorithm(_ text: String) throws -> DKIMAlgorithm {
    guard let algorithm = DKIMAlgorithm(rawValue: text.lowercased()) else {
        throw CLIError("unknown algorithm '\(text)': use rsa-sha256 or ed25519-sha256")
    }
    return algorithm
}

func loadKey(_ path: String) throws -> PrivateKey {
    do {
        return try PrivateKey(contentsOfFile: path)
    } catch {
        throw CLIError("cannot use key \(path): \(error)")
    }
}

/// A PEM key file, or a key in a PKCS#11 token named by a `pkcs11:` URI (RFC 7512), for example
/// `pkcs11:token=signet;object=dkim?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signet/pin`.
func loadSigningKey(_ text: String) throws -> any DigestSigningKey {
    guard PKCS11KeyLocation.isURI(text) else { return try loadKey(text) }
    do {
        return try PKCS11Key(try PKCS11KeyLocation(uri: text))
    } catch {
        throw CLIError("cannot use key \(text): \(error)")
    }
}

func dnsRecordText(for publicKey: PublicKey, selector: String, domain: String?) -> String {
    let record = DKIMKeyRecord(keyType: publicKey.algorithm.rawValue, publicKeyData: publicKey.dkimKeyData)
    if let domain {
        return record.zoneFileLine(selector: selector, domain: domain)
    }
    let strings = record.txtStrings.map { "\"\($0)\"" }.joined(separator: " ")
    return "\(selector)._domainkey IN TXT ( \(strings) )"
}
