import ArgumentParser
import DKIM
import DKIMCore
import Foundation
import Keys
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

    @Option(help: "Private key file (PEM), or a pkcs11: URI for a key in a token, for the selector in the same position.")
    var key: [String]

    @Option(help: "rsa-sha256 or ed25519-sha256 for the selector in the same position (default: from the key).")
    var algorithm: [String] = []

    @Option(help: "Header/body canonicalization (c=): simple or relaxed, e.g. relaxed/relaxed.")
    var canonicalization: String = "relaxed/relaxed"

    @Option(help: "Colon-separated header names to sign (h=). Default: From, To, Cc, Subject, Date, MIME and List-* fields.")
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
            throw ValidationError("each --selector needs one --key (got \(selector.count) selectors, \(key.count) keys)")
        }
        guard algorithm.count <= selector.count else {
            throw ValidationError("more --algorithm options than --selector options")
        }
        guard expiration >= 0 else { throw ValidationError("--expiration must be 0 or more seconds") }
    }

    func run() throws {
        guard let pair = CanonicalizationPair(tagValue: canonicalization) else {
            throw CLIError("unknown canonicalization '\(canonicalization)': use simple or relaxed, e.g. relaxed/relaxed")
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
                        signingKey: signingKey, domain: domain, selector: selector, algorithm: algorithm, options: options)
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

/// `signet verify`: check DKIM signatures against keys from a file.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a message's DKIM signatures and print one result line per signature.",
        discussion: """
            Keys come from --key-file, one record per line: `selector._domainkey.domain<TAB>TXT value` (the
            format of OpenDKIM's TestPublicKeys; zone-file lines with quoted strings work too).
            Exit status: 0 when there is at least one signature and every one passes, 1 otherwise.
            """
    )

    @Option(help: "File with the key records to verify against.")
    var keyFile: String

    @Option(help: "Verify as if at this Unix time (for x= expiry). Default: now.")
    var now: Int?

    @Argument(help: "The message file; standard input when absent or '-'.")
    var input: String?

    func run() throws {
        let table: DKIMKeyTable
        do {
            table = try DKIMKeyTable(parsing: try IO.readText(keyFile, what: "key file"))
        } catch let error as DKIMError {
            throw CLIError("key file \(keyFile): \(error)")
        }
        let message: WholeMessage
        do {
            message = try WholeMessage(try IO.readInput(input))
        } catch let error as MailMessageError {
            throw CLIError("cannot read this message: \(error)")
        }
        let results = DKIMVerifier(keyTable: table).verify(message, now: now ?? Int(Date().timeIntervalSince1970))
        if results.isEmpty {
            print("dkim=none (no DKIM-Signature field)")
            throw ExitCode(1)
        }
        for result in results {
            print(result)
        }
        if !results.allSatisfy({ $0.status == .pass }) {
            throw ExitCode(1)
        }
    }
}
