import ARC
import ArgumentParser
import DKIM
import Foundation
import Keys
import MailAuth
import MailMessage

/// `signet seal`: add an ARC set to one message offline (RFC 8617 §5.1).
struct SealCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seal",
        abstract: "ARC-seal a message and print it with the new ARC set prepended.",
        discussion: """
            The incoming ARC chain is validated against the key records in --dns-file (a zone file, as for
            StaticZone: `name TXT "v=DKIM1; ..."` lines), on the message as this hop received it (--received, for
            a list that changed the message before sealing it; else the input itself). The result becomes the
            seal's cv= and, unless the results already have one, an arc= entry of the ARC-Authentication-Results.
            Without --dns-file, cv= comes from an arc= entry of the results (a verdict made on receipt), or is
            none for a message without a chain. The results are this hop's own Authentication-Results fields with
            --authserv-id, copied, and/or --results. A chain that already failed is not continued: the message
            is printed unchanged and the reason goes to standard error.
            Example: signet seal --domain lists.example.org --selector arc --key arc.pem \\
                       --authserv-id mx.lists.example.org --dns-file keys.zone < in.eml > out.eml
            """
    )

    @Option(help: "The sealing domain (d=).")
    var domain: String

    @Option(help: "Selector (s=).")
    var selector: String

    @Option(help: "Private key file (PEM); rsa-sha256, or ed25519-sha256 for an Ed25519 key.")
    var key: String

    @Option(help: "This hop's authserv-id, written in the ARC-Authentication-Results.")
    var authservId: String

    @Option(help: "Zone file with the key records of the incoming chain (TXT records).")
    var dnsFile: String?

    @Option(help: "The message as this hop received it, before any change; its ARC chain is the one validated.")
    var received: String?

    @Option(help: "Authentication results of this hop for the AAR, e.g. \"spf=pass smtp.mailfrom=example.com\".")
    var results: String?

    @Flag(help: "Do not copy this hop's Authentication-Results fields (those with --authserv-id) into the AAR.")
    var noCopyResults = false

    @Option(help: "Colon-separated header names for the ARC-Message-Signature (h=). Default: as for DKIM.")
    var headers: String?

    @Option(help: "Sealing time (t=) as a Unix timestamp. Default: now.")
    var timestamp: Int?

    @Option(help: "Write the sealed message here instead of standard output.")
    var output: String?

    @Argument(help: "The message file; standard input when absent or '-'.")
    var input: String?

    func run() async throws {
        var options = ARCSealer.defaultOptions
        if let headers {
            let names = headers.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard names.contains("from") else { throw CLIError("--headers must include from") }
            options.signedHeaders = names
        }
        let sealer: ARCSealer
        do {
            sealer = try ARCSealer(domain: domain, selector: selector, key: try loadKey(key), options: options)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(error)")
        }
        let message: WholeMessage
        do {
            message = try WholeMessage(try IO.readInput(input))
        } catch let error as MailMessageError {
            throw CLIError("cannot read this message: \(error)")
        }

        let receivedMessage: WholeMessage
        if let received {
            do {
                receivedMessage = try WholeMessage(try IO.readInput(received))
            } catch let error as MailMessageError {
                throw CLIError("cannot read \(received): \(error)")
            }
        } else {
            receivedMessage = message
        }

        var entries: [String] = []
        if !noCopyResults, let copied = ARCSealer.results(in: receivedMessage.header, authservID: authservId) {
            entries.append(copied)
        }
        if let results, !results.isEmpty { entries.append(results) }
        var text = entries.joined(separator: "; ")

        let chainStatus: ARCChainStatus
        if let dnsFile {
            let zone = try CommandLineDNS.zone(dnsFile)
            let validation = await ARCValidator().validate(receivedMessage, resolver: zone)
            chainStatus = validation.status
            if ARCSealer.arcResult(in: text) == nil {
                text = validation.description + (text.isEmpty ? "" : "; " + text)
            }
        } else if let stated = ARCSealer.arcResult(in: text) {
            chainStatus = stated
        } else {
            guard ARCChain(header: receivedMessage.header).isEmpty else {
                throw CLIError(
                    "the message has an ARC chain: give --dns-file with its key records, or an arc= result")
            }
            chainStatus = .none
            text = "arc=none" + (text.isEmpty ? "" : "; " + text)
        }

        let now = timestamp ?? Int(Date().timeIntervalSince1970)
        let outcome = try sealer.seal(
            message, chainStatus: chainStatus, authservID: authservId, results: text, now: now)
        if case .notSealed(let reason) = outcome {
            FileHandle.standardError.write(Data("signet seal: not sealed: \(reason)\n".utf8))
        }
        try IO.writeOutput(message.bytes(prepending: outcome.fields), to: output)
    }
}

/// The ARC line `signet verify` prints, such as `arc=pass (i=2 oldest-pass=1)` or `arc=fail (reason)`.
public func arcVerificationLine(for message: WholeMessage, resolver: some DNSResolver) async -> String {
    await ARCValidator().validate(message, resolver: resolver).description
}
