import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Relay
import SRS

/// `signet srs`: the Sender Rewriting Scheme on the command line and as a Postfix look-up service.
struct SRSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srs",
        abstract:
            "Rewrite envelope senders with SRS (Mail::SRS / postsrsd compatible), reverse them, or serve Postfix.",
        discussion: """
              signet srs forward --secret S --domain fwd.example alice@orig.example
              signet srs reverse --secret S SRS0=HHHH=TT=orig.example=alice@fwd.example
              signet srs serve --secrets-file /etc/signet/srs-secrets --domain fwd.example
            The first secret signs, every secret verifies (rotation). Secrets files hold one secret a line.
            """,
        subcommands: [SRSForwardCommand.self, SRSReverseCommand.self, SRSServeCommand.self]
    )
}

/// Options every `signet srs` command shares.
struct SRSOptionGroup: ParsableArguments {
    @Option(help: "A secret; repeat for rotation: the first signs, all verify.")
    var secret: [String] = []

    @Option(help: "File with one secret a line (the first signs), instead of --secret.")
    var secretsFile: String?

    @Option(help: "The forwarder's domain written into SRS addresses.")
    var domain: String?

    @Option(help: "Unix time to use instead of the clock (for tests and reproducible output).")
    var now: Int?

    @Option(
        help: "Hash alphabet written: base64 (Mail::SRS, postsrsd 1.x) or base64url (postsrsd 2.2.6+); both are read.")
    var hashEncoding: String = "base64"

    @Option(help: "Days an SRS address stays valid.")
    var maxAge: Int = 21

    @Option(help: "Separator after SRS0/SRS1: =, + or -.")
    var separator: String = "="

    func scheme(localPartLimit: Int?) throws -> SRSScheme {
        var secrets = secret
        if let secretsFile {
            guard secrets.isEmpty else { throw CLIError("give --secret or --secrets-file, not both") }
            let text = try IO.readText(secretsFile, what: "secrets file")
            secrets = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).map(String.init)
        }
        guard !secrets.isEmpty else { throw CLIError("no secret: give --secret or --secrets-file") }
        var options = SRSOptions()
        guard let encoding = SRSHashEncoding(rawValue: hashEncoding.lowercased()) else {
            throw CLIError("--hash-encoding: '\(hashEncoding)' is not base64 or base64url")
        }
        options.hashEncoding = encoding
        guard (1...1000).contains(maxAge) else { throw CLIError("--max-age: days from 1 to 1000, not \(maxAge)") }
        options.maximumAgeDays = maxAge
        guard separator.utf8.count == 1, let byte = separator.utf8.first, SRSOptions.allowedSeparators.contains(byte)
        else { throw CLIError("--separator: '\(separator)' is not =, + or -") }
        options.separator = byte
        options.maximumLocalPartLength = localPartLimit
        do {
            return try SRSScheme(secrets: secrets, options: options)
        } catch {
            throw CLIError("\(error)")
        }
    }

    var time: Int { now ?? Int(Date().timeIntervalSince1970) }
}

/// `signet srs forward`: print the SRS address of a sender.
struct SRSForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward", abstract: "Print the SRS address that forwarding ADDRESS through --domain gives.")

    @OptionGroup var options: SRSOptionGroup

    @Flag(help: "Write local parts over 64 octets too (as Mail::SRS does) instead of failing.")
    var allowLong = false

    @Argument(help: "The envelope sender to rewrite.")
    var address: String

    func run() throws {
        guard let domain = options.domain else { throw CLIError("--domain is needed: the forwarder's domain") }
        let scheme = try options.scheme(localPartLimit: allowLong ? nil : 64)
        do {
            print(try scheme.forward(address, domain: domain, now: options.time))
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// `signet srs reverse`: print the address an SRS address stands for.
struct SRSReverseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reverse",
        abstract: "Print the original address of an SRS address, or fail with the reason (hash, timestamp, not SRS).")

    @OptionGroup var options: SRSOptionGroup

    @Argument(help: "The SRS address (a bounce's recipient).")
    var address: String

    func run() throws {
        let scheme = try options.scheme(localPartLimit: nil)
        if let domain = options.domain, let at = address.lastIndex(of: "@"),
            address[address.index(after: at)...].lowercased() != domain.lowercased()
        {
            throw CLIError("not an SRS address of \(domain): <\(address)>")
        }
        do {
            print(try scheme.reverse(address, now: options.time))
        } catch {
            throw CLIError("\(error)")
        }
    }
}

/// `signet srs serve`: Postfix look-up tables, as postsrsd offers them.
struct SRSServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve SRS look-ups to Postfix (socketmap, and tcp_table like postsrsd 1.x).",
        discussion: """
            Postfix main.cf, socketmap (postsrsd 2.x style):
              sender_canonical_maps = socketmap:inet:127.0.0.1:10003:forward
              sender_canonical_classes = envelope_sender
              recipient_canonical_maps = socketmap:inet:127.0.0.1:10003:reverse
              recipient_canonical_classes = envelope_recipient, header_recipient
            or tcp_table (postsrsd 1.x style) with --tcp-forward 127.0.0.1:10001 --tcp-reverse 127.0.0.1:10002:
              sender_canonical_maps = tcp:127.0.0.1:10001
              recipient_canonical_maps = tcp:127.0.0.1:10002
            """
    )

    @OptionGroup var options: SRSOptionGroup

    @Option(help: "Serve the socketmap protocol (maps forward and reverse) on host:port.")
    var socketmap: String?

    @Option(help: "Serve forward look-ups over tcp_table on host:port.")
    var tcpForward: String?

    @Option(help: "Serve reverse look-ups over tcp_table on host:port.")
    var tcpReverse: String?

    @Option(help: "A sender domain never rewritten (repeatable); .example.com covers subdomains.")
    var localDomain: [String] = []

    @Option(help: "A rewrite over 64 octets of local part: pass (not found: Postfix keeps the sender) or tempfail.")
    var tooLong: String = "pass"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        guard let domain = options.domain else { throw CLIError("--domain is needed: the forwarder's domain") }
        guard let fallback = RelayConfiguration.SRSSettings.TooLongFallback(rawValue: tooLong.lowercased()) else {
            throw CLIError("--too-long: '\(tooLong)' is not pass or tempfail")
        }
        let lookup = SRSLookup(
            scheme: try options.scheme(localPartLimit: 64), domain: domain, localDomains: localDomain, tooLong: fallback
        )
        var listeners: [(HostPort, SRSLookupServer.WireProtocol)] = []
        for (text, wire) in [
            (socketmap, SRSLookupServer.WireProtocol.socketmap), (tcpForward, .tcpTable(forward: true)),
            (tcpReverse, .tcpTable(forward: false)),
        ] {
            guard let text else { continue }
            guard let address = HostPort(text) else { throw CLIError("'\(text)' is not host:port") }
            listeners.append((address, wire))
        }
        if listeners.isEmpty { listeners = [(HostPort(host: "127.0.0.1", port: 10003), .socketmap)] }
        var logger = Logger(label: "signet-srs")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let group = MultiThreadedEventLoopGroup(numberOfThreads: min(2, System.coreCount))
        var channels: [any Channel] = []
        for (address, wire) in listeners {
            do {
                let channel = try await SRSLookupServer.bind(
                    address, protocol: wire, lookup: lookup, group: group, logger: logger)
                logger.info("serving SRS look-ups", metadata: ["address": "\(address)", "protocol": "\(wire)"])
                channels.append(channel)
            } catch {
                throw CLIError("cannot listen on \(address): \(error)")
            }
        }
        // Stateless: SIGTERM's default action (exit) loses nothing, so the channels simply run until then.
        for channel in channels { try await channel.closeFuture.get() }
        try await group.shutdownGracefully()
    }
}
