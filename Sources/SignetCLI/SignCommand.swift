import ArgumentParser
import DKIM
import DKIMCore
import Foundation
import Keys
import MailAuth
import MailMessage

/// `signet sign`: DKIM-sign one message offline.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "DKIM-sign a message and print it with the DKIM-Signature field(s) prepended.",
        discussion: """
            Repeat --selector/--key (and optionally --algorithm) to sign twice, for example with an RSA and an
            Ed25519 key. The algorithm follows from each key unless given. Bare LF line endings are converted
            to CRLF, and the output is exactly the message that was signed.
            Example: signet sign --domain example.com --selector s1 --key s1.pem < in.eml > out.eml
            A key in a PKCS#11 token (RFC 7512 URI; the PIN comes from a file or, with env:NAME, a variable):
              --key 'pkcs11:token=signet;object=dkim?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signet/pin'
            """
    )

    @Option(help: "The signing domain (d=).")
    var domain: String

    @Option(help: "Selector (s=); repeat for several signatures.")
    var selector: [String]

    @Option(
        help: "Private key file (PEM), or a pkcs11: URI for a key in a token, for the selector in the same position.")
    var key: [String]

    @Option(help: "rsa-sha256 or ed25519-sha256 for the selector in the same position (default: from the key).")
    var algorithm: [String] = []

    @Option(help: "Header/body canonicalization (c=): simple or relaxed, e.g. relaxed/relaxed.")
    var canonicalization: String = "relaxed/relaxed"

    @Option(
        help: "Colon-separated header names to sign (h=). Default: From, To, Cc, Subject, Date, MIME and List-* fields."
    )
    var headers: String?

    @Flag(help: "Do not oversign (by default each signed name gets one extra, empty instance).")
    var noOversign = false

    @Option(help: "Signing time (t=) as a Unix timestamp. Default: now.")
    var timestamp: Int?

    @Option(help: "Seconds until the signature expires (x= = t= + this); 0 writes no x=.")
    var expiration: Int = DKIMSignerOptions.defaultExpiration

    @Option(help: "Agent or user identifier (i=), e.g. @example.com.")
    var identity: String?

    @Flag(help: "Write l= (body length). Not recommended: it lets others append to the body.")
    var bodyLength = false

    @Option(help: "Write the signed message here instead of standard output.")
    var output: String?

    @Argument(help: "The message file; standard input when absent or '-'.")
    var input: String?

    func validate() throws {
        guard !selector.isEmpty else { throw ValidationError("give at least one --selector and --key") }
        guard selector.count == key.count else {
            throw ValidationError(
                "each --selector needs one --key (got \(selector.count) selectors, \(key.count) keys)")
        }
        guard algorithm.count <= selector.count else {
            throw ValidationError("more --algorithm options than --selector options")
        }
        guard expiration >= 0 else { throw ValidationError("--expiration must be 0 or more seconds") }
    }

    func run() throws {
        guard let pair = CanonicalizationPair(tagValue: canonicalization) else {
            throw CLIError(
                "unknown canonicalization '\(canonicalization)': use simple or relaxed, e.g. relaxed/relaxed")
        }
        var options = DKIMSignerOptions()
        options.canonicalization = pair
        options.oversign = !noOversign
        options.expiration = expiration == 0 ? nil : expiration
        options.identity = identity
        options.includeBodyLength = bodyLength
        if let headers {
            let names = headers.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard names.contains("from") else {
                throw CLIError("--headers must include from: RFC 6376 requires the From field to be signed")
            }
            options.signedHeaders = names
        }

        var signers: [DKIMSigner] = []
        for (index, selector) in selector.enumerated() {
            let signingKey = try loadSigningKey(key[index])
            let algorithm = index < self.algorithm.count ? try parseAlgorithm(self.algorithm[index]) : nil
            do {
                signers.append(
                    try DKIMSigner(
                        signingKey: signingKey, domain: domain, selector: selector, algorithm: algorithm,
                        options: options)
                )
            } catch {
                throw CLIError("\(error)")
            }
        }

        let message: WholeMessage
        do {
            message = try WholeMessage(try IO.readInput(input))
            _ = try message.header.authorMailbox()
        } catch let error as MailMessageError {
            throw CLIError("cannot sign this message: \(error)")
        }
        let now = timestamp ?? Int(Date().timeIntervalSince1970)
        let fields = try message.sign(with: signers, now: now)
        try IO.writeOutput(message.bytes(prepending: fields), to: output)
    }
}

/// `signet verify`: check DKIM signatures against key records from a file.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a message: one result line per DKIM signature, then SPF, DMARC and ARC.",
        discussion: """
            DNS: real DNS through libunbound (the system's resolvers from /etc/resolv.conf, or --dns-server),
            or --dns-file, a zone file (`name [ttl] [IN] TYPE data` lines with TXT, A, AAAA, MX, PTR; TIMEOUT and
            SERVFAIL entries make a name fail, to try temperror), or --key-file, one DKIM key record per line:
            `selector._domainkey.domain<TAB>TXT value` (the format of OpenDKIM's TestPublicKeys).
            Each line of output is in Authentication-Results style:
              dkim=pass header.d=example.com header.s=s1 header.a=rsa-sha256
              spf=pass smtp.mailfrom=example.com (...)          (only with --client-ip)
              dmarc=pass (p=reject dis=none) header.from=example.com
              arc=pass (i=2 oldest-pass=0)                      (only when the message has ARC fields)
            Exit status: 0 when there is at least one DKIM signature and every one passes, 1 otherwise.
            """
    )

    @Option(help: "Zone file to answer DNS questions from, instead of DNS.")
    var dnsFile: String?

    @Option(help: "Key table file: lines of `selector._domainkey.domain<TAB>TXT value`, instead of DNS.")
    var keyFile: String?

    @Option(
        help: "A recursive DNS server to ask (address or address@port; repeat for more). Default: /etc/resolv.conf.")
    var dnsServer: [String] = []

    @Option(
        help:
            "DNSSEC trust anchor file (for example /usr/share/dns/root.key): answers that fail validation are temperror."
    )
    var trustAnchor: String?

    @Option(help: "Seconds one DNS question may take.")
    var dnsTimeout: Int = 5

    @Option(help: "The SMTP client's address, for SPF (with --helo and --mail-from). Without it SPF is not checked.")
    var clientIp: String?

    @Option(help: "The HELO/EHLO name the client gave, for SPF.")
    var helo: String = "unknown"

    @Option(help: "The envelope sender (MAIL FROM), for SPF and DMARC; empty for a bounce.")
    var mailFrom: String = ""

    @Option(help: "Verify as if at this Unix time (for x= expiry). Default: now.")
    var now: Int?

    @Option(help: "Check at most this many signatures; the rest are reported as policy.")
    var maxSignatures: Int = 10

    @Flag(help: "Accept rsa-sha1 signatures (RFC 8301 forbids them; refused by default).")
    var acceptSHA1 = false

    @Argument(help: "The message file; standard input when absent or '-'.")
    var input: String?

    func validate() throws {
        guard dnsFile == nil || keyFile == nil else {
            throw ValidationError("give at most one of --dns-file and --key-file")
        }
        guard maxSignatures >= 1 else { throw ValidationError("--max-signatures must be at least 1") }
        guard dnsTimeout >= 1 else { throw ValidationError("--dns-timeout must be at least 1 second") }
        if let clientIp, IPAddress(clientIp) == nil {
            throw ValidationError("--client-ip \(clientIp) is not an IPv4 or IPv6 address")
        }
    }

    /// Where DNS answers come from: the one place a resolver is chosen.
    func makeResolver() throws -> any DNSResolver {
        guard let keyFile else {
            return try CommandLineDNS.resolver(
                dnsFile: dnsFile, servers: dnsServer, trustAnchor: trustAnchor, timeoutSeconds: dnsTimeout)
        }
        do {
            let table = try DKIMKeyTable(parsing: try IO.readText(keyFile, what: "key file"))
            var zone = StaticZone()
            for (name, value) in table.records { zone.addTXT(name, value) }
            return zone
        } catch let error as DKIMError {
            throw CLIError("key file \(keyFile): \(error)")
        }
    }

    func run() async throws {
        let resolver = try makeResolver()
        let message: WholeMessage
        do {
            message = try WholeMessage(try IO.readInput(input))
        } catch let error as MailMessageError {
            throw CLIError("cannot read this message: \(error)")
        }
        var verifier = DKIMVerifier(maximumSignatures: maxSignatures, keyLookup: { _ in .noRecord })
        verifier.acceptSHA1 = acceptSHA1
        let verification = DKIMVerification(resolver: resolver, verifier: verifier)
        let results = await verification.verify(message, now: now ?? Int(Date().timeIntervalSince1970))
        if results.isEmpty {
            print("dkim=none (no DKIM-Signature field)")
        }
        for result in results {
            print(result)
        }

        var spf: SPFResult?
        if let clientIp, let address = IPAddress(clientIp) {
            let result = await SPFVerifier(resolver: resolver).checkMailFrom(
                clientIP: address, mailFrom: mailFrom, helo: helo)
            print(result)
            spf = result
        }
        if let author = try? message.header.authorMailbox() {
            let input = DMARCInput(
                fromDomain: author.domain,
                dkim: results.compactMap { result in
                    result.domain.map { DMARCInput.DKIM(domain: $0, result: result.status.rawValue) }
                },
                spf: spf.map { DMARCInput.SPF(domain: $0.domain, result: $0.status.rawValue) })
            print(await DMARCEvaluator(resolver: resolver).evaluate(input).authenticationResult.text)
        } else {
            print("dmarc=none (no single From address to check)")
        }
        if message.header.count(named: "arc-seal") + message.header.count(named: "arc-message-signature") > 0 {
            print(await arcVerificationLine(for: message, resolver: resolver))
        }

        if results.isEmpty || !results.allSatisfy({ $0.status == .pass }) {
            throw ExitCode(1)
        }
    }
}
