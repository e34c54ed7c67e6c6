import ArgumentParser
import Foundation
import LoadGenerator

/// `signet-load`: an SMTP load generator for benchmarks, and (`signet-load sink`) the sink it sends to.
@main
struct SignetLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signet-load",
        abstract: "SMTP load generator: sends N messages over C connections and reports throughput and latency.",
        subcommands: [Send.self, Sink.self],
        defaultSubcommand: Send.self
    )
}

/// The generator (the default subcommand).
struct Send: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "Send messages and report.")

    @Option(help: "Server to send to, host:port.") var server = "127.0.0.1:10025"
    @Option(name: [.customShort("n"), .customLong("count")], help: "Number of messages.") var count = 1000
    @Option(name: [.short, .customLong("connections")], help: "Concurrent connections.") var connections = 10
    @Option(name: .customLong("per-connection"), help: "Messages per connection before QUIT and a new connection.")
    var perConnection = 100
    @Option(help: "Message size in bytes, or a comma-separated list used in turn.") var size = "4096"
    @Flag(inversion: .prefixedNo, help: "Pipeline MAIL, RCPT and DATA when the server offers PIPELINING.")
    var pipelining = true
    @Flag(help: "Use STARTTLS (required).") var starttls = false
    @Flag(help: "With --starttls: accept any server certificate. For load tests only.")
    var insecureAcceptAnyCertificate = false
    @Option(help: "Envelope sender and From.") var from = "load@example.com"
    @Option(help: "Envelope recipient and To.") var to = "sink@example.org"
    @Option(
        help:
            "Messages per second over the run (0: as fast as the server answers); latency counts from when each was due."
    )
    var rate = 0.0
    @Option(help: "Give up after this many seconds.") var timeout = 600.0
    @Option(help: "Event-loop threads (default: one per core).") var threads = ProcessInfo.processInfo
        .activeProcessorCount
    @Flag(help: "Print the report as JSON.") var json = false

    func run() async throws {
        var options = LoadOptions()
        (options.host, options.port) = try parseAddress(server)
        let sizes = size.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.count == size.split(separator: ",").count, sizes.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--size: positive byte counts, comma-separated")
        }
        guard count > 0, connections > 0, perConnection > 0 else {
            throw ValidationError("--count, --connections and --per-connection must be positive")
        }
        options.messages = count
        options.connections = connections
        options.messagesPerConnection = perConnection
        options.sizes = sizes
        options.pipelining = pipelining
        options.startTLS = starttls
        options.insecureAcceptAnyCertificate = insecureAcceptAnyCertificate
        options.from = from
        options.to = to
        options.timeoutSeconds = timeout
        options.threads = threads
        options.rate = max(0, rate)
        let report = try await LoadGenerator.run(options)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        // Scripts see at a glance whether every message was accepted.
        if report.acknowledged != count { throw ExitCode(1) }
    }
}

/// The sink.
struct Sink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A fast SMTP sink: accepts (or refuses) and discards, counts, optionally verifies a sample.",
        discussion: "Prints its summary on SIGTERM or SIGINT, or after --exit-after messages."
    )

    @Option(help: "Address to listen on, host:port.") var listen = "127.0.0.1:10026"
    @Option(help: "Refuse every n-th message at the end of data (0: none).") var refuseEvery = 0
    @Option(help: "Reply code of a refusal.") var refusalCode = 554
    @Option(help: "Exit after this many messages were answered (0: run until a signal).") var exitAfter = 0
    @Option(help: "Exit when --exit-after is not reached within this many seconds (0: never).") var timeout = 0.0
    @Option(help: "Keep every n-th message and verify its DKIM signatures with dkimpy at exit (0: none).")
    var verifyEvery = 0
    @Option(help: "With --verify-every: public keys, lines `selector._domainkey.domain<TAB>TXT value`.")
    var keyFile: String?
    @Option(help: "Event-loop threads (default: one per core).") var threads = ProcessInfo.processInfo
        .activeProcessorCount
    @Flag(help: "Print the summary as JSON.") var json = false
    @Flag(inversion: .prefixedNo, help: "Offer CHUNKING (BDAT), as Postfix's smtpd does.") var chunking = true

    func run() async throws {
        if verifyEvery > 0 && keyFile == nil { throw ValidationError("--verify-every needs --key-file") }
        var options = SinkOptions()
        (options.host, options.port) = try parseAddress(listen)
        options.refuseEvery = refuseEvery
        options.refusalCode = refusalCode
        options.sampleEvery = verifyEvery
        options.threads = threads
        options.chunking = chunking
        // A parent may have blocked these (test runners do); the sink must see them to print its summary.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        signal(SIGTERM, { _ in stopRequested = 1 })
        signal(SIGINT, { _ in stopRequested = 1 })

        let server = try await SinkServer.start(options)
        FileHandle.standardError.write(Data("signet-load sink listening on \(options.host):\(server.port)\n".utf8))
        let start = Date()
        var timedOut = false
        while stopRequested == 0 {
            if exitAfter > 0 && server.counters.answered >= exitAfter { break }
            if timeout > 0 && Date().timeIntervalSince(start) > timeout {
                timedOut = true
                break
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        await server.stop()
        var verification: SinkSummary.Verification?
        if verifyEvery > 0, let keyFile {
            verification = try SampleVerifier.verify(server.counters.sampledMessages, keyFile: keyFile)
        }
        let summary = server.counters.summary(verification: verification)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(summary.text)
        }
        if timedOut || (verification.map { $0.failed > 0 } ?? false) { throw ExitCode(1) }
    }
}

/// Set by the signal handlers; polled by the sink's wait loop.
nonisolated(unsafe) private var stopRequested: sig_atomic_t = 0

private func parseAddress(_ text: String) throws -> (String, Int) {
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
        (0...65535).contains(port)
    else {
        throw ValidationError("expected host:port, got \(text)")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    return (host, port)
}
