import ArgumentParser
import DKIM
import DKIMCore
import Foundation
import Keys
import Logging
import MailAuth
import Relay

/// `signet keys`: what the configuration's keys are and whether DNS publishes them.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List the configured signing keys, or check them against DNS.",
        subcommands: [KeysListCommand.self, KeysCheckCommand.self]
    )
}

/// One configured key, with its public half when this process can see it.
struct ConfiguredKey {
    var name: String
    var entry: RelayConfiguration.KeyEntry
    var backend: RelayConfiguration.SigningBackend
    /// Nil for an agent key whose file is in the agent's container, not here.
    var publicKey: PublicKey?

    var recordName: String { "\(entry.selector)._domainkey.\(entry.domain)" }

    /// `SHA256:` and the base64 SHA-256 of the key as DNS publishes it (`p=`), like ssh-keygen's fingerprints.
    var fingerprint: String {
        guard let publicKey else { return "-" }
        return "SHA256:" + Base64.encode(SHA256.hash(publicKey.dkimKeyData))
    }

    /// The keys of the configuration in FILE (with the SIGNET_* environment applied), by name.
    static func load(file: String) throws -> [ConfiguredKey] {
        let configuration = try RunCommand.resolve(
            file: file, listen: [], nextHop: nil, domain: nil, selectors: [], keys: [], algorithms: [],
            stateDirectory: nil, logger: Logger(label: "signet", factory: { _ in SwiftLogNoOpLogHandler() }))
        let signing = configuration.signing
        var keys: [ConfiguredKey] = []
        for (name, entry) in signing.keys.sorted(by: { $0.key < $1.key }) {
            let backend = signing.backend(of: entry)
            var key = ConfiguredKey(name: name, entry: entry, backend: backend, publicKey: nil)
            do {
                switch backend {
                case .pkcs11:
                    guard let location = entry.pkcs11 else { throw CLIError("no pkcs11 section") }
                    key.publicKey = try PKCS11Key(location).publicKey
                case .agent where signing.agentSocket != nil && !FileManager.default.fileExists(atPath: entry.keyFile):
                    break  // the agent's own container holds it
                case .agent, .inProcess:
                    key.publicKey = try PrivateKey(contentsOfFile: entry.keyFile, requirePrivatePermissions: true)
                        .publicKey
                }
            } catch {
                throw CLIError("signing.keys.\(name): cannot use \(entry.source): \(error)")
            }
            keys.append(key)
        }
        return keys
    }
}

/// `signet keys list`.
struct KeysListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show each key: name, d= and s=, algorithm, backend, fingerprint, expiry and its DNS record.",
        discussion: """
            The fingerprint is SHA256: and the base64 SHA-256 of the key bytes DNS publishes in p=. Keys of a
            signer agent in another container (signing.agent_socket, key file absent here) are listed without one.
            """
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        for key in try ConfiguredKey.load(file: file) {
            let algorithm = key.publicKey.map { $0.algorithm == .rsa ? "rsa-\($0.bits)" : "ed25519" } ?? "?"
            var line = "\(key.name)  d=\(key.entry.domain) s=\(key.entry.selector)  \(algorithm)  "
            line += "backend=\(key.backend.rawValue)  \(key.fingerprint)"
            if let expires = key.entry.expires {
                line +=
                    "  expires=\(Date(timeIntervalSince1970: TimeInterval(expires)).formatted(.iso8601.year().month().day()))"
            }
            print(line)
            if let publicKey = key.publicKey {
                print("  " + dnsRecordText(for: publicKey, selector: key.entry.selector, domain: key.entry.domain))
            } else {
                print("  (held by the signer agent at its socket: run `signet dns-record` where the key file is)")
            }
        }
    }
}

/// `signet keys check`.
struct KeysCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Look each key's selector up in DNS and report a missing, revoked or different record.",
        discussion: """
            One line per key: OK, MISSING (no record: publish the one `signet keys list` prints), REVOKED (p= is
            empty), MISMATCH (a record with another key: signatures with this key would fail), TEMPERROR (DNS did
            not answer) or UNKNOWN (the key is in another container). Exit status 1 when any key is not OK.
            """
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    @Option(help: "Zone file to answer DNS questions from, instead of DNS.")
    var dnsFile: String?

    @Option(
        help: "A recursive DNS server to ask (address or address@port; repeat for more). Default: /etc/resolv.conf.")
    var dnsServer: [String] = []

    @Option(help: "Seconds one DNS question may take.")
    var dnsTimeout: Int = 5

    func run() async throws {
        let keys = try ConfiguredKey.load(file: file)
        let resolver = try CommandLineDNS.resolver(dnsFile: dnsFile, servers: dnsServer, timeoutSeconds: dnsTimeout)
        var allOK = true
        for key in keys {
            let verdict = await Self.check(key, resolver: resolver)
            if !verdict.hasPrefix("OK") { allOK = false }
            print("\(key.name)  \(key.recordName)  \(verdict)")
        }
        if !allOK { throw ExitCode(1) }
    }

    static func check(_ key: ConfiguredKey, resolver: any DNSResolver) async -> String {
        guard let publicKey = key.publicKey else {
            return "UNKNOWN (key held by the signer agent in another container)"
        }
        let answer: DNSAnswer<String>
        do {
            answer = try await resolver.txt(key.recordName)
        } catch {
            return "TEMPERROR (\(error))"
        }
        let texts = answer.records
        guard !texts.isEmpty else { return "MISSING (no TXT record; publish the one `signet keys list` prints)" }
        var published: [String] = []
        for text in texts {
            guard let record = try? DKIMKeyRecord(parsing: text) else { continue }
            if record.publicKeyData.isEmpty { return "REVOKED (the record has an empty p=)" }
            if record.keyType.lowercased() == publicKey.algorithm.rawValue
                && record.publicKeyData == publicKey.dkimKeyData
            {
                return "OK"
            }
            published.append("SHA256:" + Base64.encode(SHA256.hash(record.publicKeyData)))
        }
        guard !published.isEmpty else { return "MISMATCH (no record there parses as a DKIM key record)" }
        return "MISMATCH (DNS publishes \(published.joined(separator: ", ")), this key is \(key.fingerprint))"
    }
}
