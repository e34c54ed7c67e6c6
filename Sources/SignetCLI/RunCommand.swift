import ArgumentParser
import DKIM
import DKIMCore
import Foundation
import Keys
import Logging
import NIOCore
import NIOPosix
import Relay
import ServiceLifecycle
import UnixSignals

/// `signet run`: the relay.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the signing relay: accept SMTP, sign, relay to the next hop.",
        discussion: """
            Quick start without a configuration file (dkimproxy.out style):
              signet run --listen 127.0.0.1:10027 --next-hop 127.0.0.1:10028 \\
                         --domain example.com --selector s1 --key s1.pem
            signs all mail from example.com (and its subdomains) and relays everything.
            With no configuration and no key at all, signet listens on 127.0.0.1:10025, makes a development
            key once in the state folder, and captures each message as an .eml file there (no next hop needed).
            Every configuration key can also be set by environment variable (SIGNET_NEXT_HOP, ...); the keys,
            their defaults and their variables are in docs/configuration.md. Check a file first with
            signet check-config FILE. SIGHUP reloads the configuration; SIGTERM drains (idle sessions get 421,
            transactions in flight finish, at most timeouts.shutdown_grace seconds).
            """
    )

    @Option(help: "YAML configuration file.")
    var config: String?

    @Option(help: "Listen on host:port (repeatable); overrides the configuration.")
    var listen: [String] = []

    @Option(help: "Relay to host:port; overrides the configuration.")
    var nextHop: String?

    @Option(help: "Sign mail from this domain (quick start).")
    var domain: String?

    @Option(help: "Selector (s=) for --domain; repeat with --key for dual signing.")
    var selector: [String] = []

    @Option(help: "Private key (PEM file, or a pkcs11: URI) for the selector in the same position.")
    var key: [String] = []

    @Option(help: "rsa-sha256 or ed25519-sha256 for the selector in the same position (checked against the key).")
    var algorithm: [String] = []

    @Option(help: "Folder for the development key and captured mail.")
    var stateDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "Log format: text, or json (one object per line).")
    var logFormat: String = "text"

    @Option(help: "Serve /metrics, /healthz, /readyz, /debug/config on host:port (127.0.0.1:9025); \"\" for none.")
    var metricsListen: String?

    func run() async throws {
        let logger = try ObservabilityWiring.logger(format: logFormat, level: logLevel)
        // Before any key is read: locked secure heap for key material, no core dumps, no same-user ptrace.
        let protection = KeyMemoryProtection.enable()
        logger.info("key memory protection: \(protection)")
        logger.info("allocator: \(ProcessAllocator.describe())")
        var configuration = try Self.resolve(
            file: config, listen: listen, nextHop: nextHop, domain: domain, selectors: selector, keys: key,
            algorithms: algorithm, stateDirectory: stateDir, logger: logger)
        try ObservabilityWiring.apply(metricsListen: metricsListen, to: &configuration)
        let group = MultiThreadedEventLoopGroup(
            numberOfThreads: configuration.threads.eventLoopCount(cores: System.coreCount))
        let registry = ObservabilityWiring.makeRegistry()
        let metrics = ObservabilityWiring.relayMetrics(registry, for: configuration)
        var agent: SignerAgentSupervisor?
        if configuration.signing.usesAgent {
            let supervisor = SignerAgentSupervisor(
                group: group, timeout: .seconds(configuration.signing.agentTimeout), metrics: metrics, logger: logger)
            do {
                try await supervisor.start(Self.agentLaunch(configuration))
            } catch {
                throw CLIError("cannot start: \(error)")
            }
            agent = supervisor
        }
        let server: RelayServer
        do {
            server = try RelayServer(
                configuration: configuration, group: group, logger: logger, metrics: metrics, signerAgent: agent)
        } catch {
            throw CLIError("cannot start: \(error)")
        }
        if configuration.nextHop == nil {
            logger.notice("no next hop configured: messages are captured in \(configuration.effectiveCaptureDirectory)")
        }
        let arguments = self
        let reloadLogger = logger
        let reloader = ReloadOnHangup(server: server, agent: agent, logger: logger) {
            var reloaded = try Self.resolve(
                file: arguments.config, listen: arguments.listen, nextHop: arguments.nextHop, domain: arguments.domain,
                selectors: arguments.selector, keys: arguments.key, algorithms: arguments.algorithm,
                stateDirectory: arguments.stateDir, logger: reloadLogger)
            try ObservabilityWiring.apply(metricsListen: arguments.metricsListen, to: &reloaded)
            return reloaded
        }
        // The agent first: ServiceGroup stops services in reverse order, so it outlives the server's drain.
        var running: [ServiceGroupConfiguration.ServiceConfiguration] = agent.map { [.init(service: $0)] } ?? []
        running += [.init(service: server), .init(service: reloader)]
        if let observability = ObservabilityWiring.server(
            for: server, registry: registry, group: group, eventLoops: System.coreCount, logger: logger)
        {
            running.append(.init(service: observability))
        }
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: running,
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await services.run()
        try await group.shutdownGracefully()
    }

    /// How `signet run` starts its signer agent for `configuration`: this executable, the key files of the keys
    /// with the agent backend by name, and the configured user when running as root.
    static func agentLaunch(_ configuration: RelayConfiguration) -> SignerAgentSupervisor.Launch {
        SignerAgentSupervisor.Launch(
            executable: "/proc/self/exe",
            keyFiles: configuration.signing.keys.filter { configuration.signing.backend(of: $0.value) == .agent }
                .mapValues(\.keyFile),
            user: getuid() == 0 ? configuration.signing.agentUser : nil,
            socketPath: configuration.signing.agentSocket)
    }

    /// The configuration in effect: file, then environment, then flags; a development key when nothing signs.
    static func resolve(
        file: String?, listen: [String], nextHop: String?, domain: String?, selectors: [String], keys: [String],
        algorithms: [String], stateDirectory: String?, logger: Logger
    ) throws -> RelayConfiguration {
        var yaml: String?
        if let file {
            do {
                yaml = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw CLIError("cannot read configuration \(file): \(error.localizedDescription)")
            }
        }
        var configuration: RelayConfiguration
        do {
            configuration = try ConfigurationLoader.load(yaml: yaml, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw CLIError("invalid configuration\(file.map { " in \($0)" } ?? ""):\n\(error)")
        }
        if !listen.isEmpty {
            configuration.listen = try listen.map { text in
                guard let address = HostPort(text) else { throw CLIError("--listen \(text): expected host:port") }
                return address
            }
        }
        if let nextHop {
            guard let address = HostPort(nextHop) else { throw CLIError("--next-hop \(nextHop): expected host:port") }
            configuration.nextHop = address
        }
        if let stateDirectory { configuration.stateDirectory = stateDirectory }
        if let domain {
            guard !selectors.isEmpty, selectors.count == keys.count else {
                throw CLIError("--domain needs one --key per --selector (got \(selectors.count) selectors, \(keys.count) keys)")
            }
            guard algorithms.isEmpty || algorithms.count == selectors.count else {
                throw CLIError("give --algorithm for every --selector or for none")
            }
            var names: [String] = []
            for (index, selector) in selectors.enumerated() {
                let name = "cli-\(index)-\(selector)"
                var entry: RelayConfiguration.KeyEntry
                if PKCS11KeyLocation.isURI(keys[index]) {
                    do {
                        entry = .init(domain: domain, selector: selector, pkcs11: try PKCS11KeyLocation(uri: keys[index]))
                    } catch {
                        throw CLIError("--key \(keys[index]): \(error)")
                    }
                } else {
                    entry = .init(domain: domain, selector: selector, keyFile: keys[index])
                }
                if !algorithms.isEmpty {
                    guard let algorithm = DKIMAlgorithm(rawValue: algorithms[index].lowercased()) else {
                        throw CLIError("--algorithm \(algorithms[index]): expected rsa-sha256 or ed25519-sha256")
                    }
                    entry.algorithm = algorithm
                }
                configuration.signing.keys[name] = entry
                names.append(name)
            }
            configuration.signing.table.removeAll { $0.from == domain.lowercased() }
            configuration.signing.table.insert(RelayConfiguration.TableEntry(from: domain.lowercased(), keys: names), at: 0)
        } else if !selectors.isEmpty || !keys.isEmpty {
            throw CLIError("--selector and --key need --domain")
        }
        // A relay set up only to verify (inbound mode) signs nothing: the first-run key would sign every message
        // it passes on as d=signet.test.
        if configuration.signing.table.isEmpty && configuration.signing.keys.isEmpty
            && !configuration.authentication.addResults
        {
            try addDevelopmentKey(to: &configuration, logger: logger)
        }
        return configuration
    }

    /// First run: one RSA key in the state folder, made once, signing everything as d=signet.test.
    static func addDevelopmentKey(to configuration: inout RelayConfiguration, logger: Logger) throws {
        let directory = configuration.stateDirectory
        let path = directory + "/dev-rsa.pem"
        let domain = "signet.test"
        let selector = "dev"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: path) {
            let key = try PrivateKey.generateRSA(bits: 2048)
            try IO.writePrivateFile(try key.pemRepresentation(), to: path, overwrite: false)
            let record = DKIMKeyRecord(keyType: "rsa", publicKeyData: key.publicKey.dkimKeyData)
            try (record.zoneFileLine(selector: selector, domain: domain) + "\n")
                .write(toFile: directory + "/dev-rsa.dns.txt", atomically: true, encoding: .utf8)
            logger.notice("made a development key", metadata: ["key": "\(path)", "dns": "\(directory)/dev-rsa.dns.txt"])
        }
        configuration.signing.keys["development"] = RelayConfiguration.KeyEntry(domain: domain, selector: selector, keyFile: path)
        configuration.signing.table = [RelayConfiguration.TableEntry(from: "*", keys: ["development"])]
        logger.notice("no signing keys configured: signing all mail as d=\(domain) s=\(selector) (development key)")
    }
}

/// SIGHUP: read the configuration again (file, environment, flags, as at start) and hand it to the server. A
/// configuration that does not load, or names a key that does not, is refused with a log line; the running one
/// stays.
struct ReloadOnHangup: Service {
    let server: RelayServer
    /// With the agent backend: a new agent is started for the new key set and put in service only if the new
    /// table is accepted; otherwise it is stopped and the running agent stays.
    let agent: SignerAgentSupervisor?
    let logger: Logger
    let load: @Sendable () throws -> RelayConfiguration

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            do {
                let configuration = try load()
                guard configuration.signing.usesAgent == (agent != nil) else {
                    throw CLIError(
                        agent == nil
                            ? "no signer agent is running: keys with the agent backend are added only on restart"
                            : "the signer agent is running: removing every key with the agent backend needs a restart")
                }
                if let agent {
                    let fresh = try await agent.prepare(RunCommand.agentLaunch(configuration))
                    do {
                        try server.reload(configuration, agentKeys: fresh.keys)
                    } catch {
                        agent.discard(fresh)
                        throw error
                    }
                    agent.activate(fresh)
                } else {
                    try server.reload(configuration)
                }
                logger.notice(
                    "configuration reloaded",
                    metadata: [
                        "signing_rules": "\(configuration.signing.table.count)",
                        "next_hop": "\(configuration.nextHop.map { "\($0)" } ?? "capture")",
                    ])
            } catch {
                logger.error("reload refused, the running configuration stays: \(error)")
            }
        }
    }
}

/// `signet check-config`: validate a configuration (and its keys) without starting.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file, the environment overrides and every key it names.",
        discussion: """
            Reads FILE, applies the SIGNET_* environment variables as signet run would, and loads every key,
            certificate, CA file, password file and SRS secrets file it names. Prints "configuration OK: ..."
            or every problem found, one per line. The keys are described in docs/configuration.md.
            """
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    /// With an agent in its own container (`signing.agent_socket`), the agent's key files are in that container,
    /// not here: such keys (agent backend, file absent) are left to the agent, which checks them when it starts.
    /// A key file that is present is still checked.
    static func withoutExternalAgentKeys(_ signing: RelayConfiguration.Signing) -> (RelayConfiguration.Signing, [String]) {
        guard signing.agentSocket != nil else { return (signing, []) }
        var result = signing
        let external = signing.keys.filter { name, entry in
            signing.backend(of: entry) == .agent && !FileManager.default.fileExists(atPath: entry.keyFile)
        }.keys.sorted()
        for name in external { result.keys.removeValue(forKey: name) }
        result.table = result.table.compactMap { rule in
            var rule = rule
            rule.keys.removeAll { external.contains($0) }
            return rule.keys.isEmpty ? nil : rule
        }
        return (result, external)
    }

    func run() throws {
        let configuration = try RunCommand.resolve(
            file: file, listen: [], nextHop: nil, domain: nil, selectors: [], keys: [], algorithms: [],
            stateDirectory: nil, logger: Logger(label: "signet", factory: { _ in SwiftLogNoOpLogHandler() }))
        do {
            let (signing, external) = Self.withoutExternalAgentKeys(configuration.signing)
            let table = try SigningTable(signing)
            let security = try configuration.checkSecurityFiles()
            if configuration.srs.mode != .off { _ = try configuration.srs.resolvedSecrets() }
            let authentication = try configuration.checkAuthentication(table: table)
            var agent = ""
            if let socket = configuration.signing.agentSocket, !external.isEmpty {
                agent = "; keys held by the signer agent at \(socket), not readable here: \(external.joined(separator: ", "))"
            }
            print("configuration OK: \(configuration.signing.table.count) signing rules, \(table.identities.count) d=/s= identities, next hop \(configuration.nextHop.map { "\($0)" } ?? "none (capture)"); \(security); \(authentication)\(agent)")
        } catch {
            throw CLIError("invalid configuration in \(file):\n\(error)")
        }
    }
}
