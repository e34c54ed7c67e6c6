import ArgumentParser

/// The `signet` command: the relay and its offline tools.
public struct SignetCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "signet",
        abstract: "A DKIM signing SMTP relay, and the tools to run it.",
        discussion: """
            The relay:
              signet run           accept SMTP, sign, relay to the next hop (see signet run --help)
              signet check-config  validate a configuration file and its keys
              signet signer        the signer agent that holds the keys (started by run with signing.backend: agent)
            Offline tools:
              signet keygen      make a signing key and print its DNS record
              signet dns-record  print the DNS record of an existing key
              signet sign        DKIM-sign a message (file or stdin) and print it
              signet verify      check a message's DKIM signatures against given keys
              signet seal        add an ARC set (RFC 8617) to a message (file or stdin)
              signet srs         SRS forward/reverse of envelope senders, and a Postfix look-up service
            See README.md for a walk-through.
            """,
        subcommands: [RunCommand.self, CheckConfigCommand.self, SignerCommand.self, KeygenCommand.self, DNSRecordCommand.self, SignCommand.self, VerifyCommand.self, SealCommand.self, SRSCommand.self, KeysCommand.self]
    )

    public init() {}
}

/// An error the command line reports as one clear sentence.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
