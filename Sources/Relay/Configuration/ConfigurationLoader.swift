import DKIM
import DKIMCore
import Keys
import MailAuth
import SRS
import Yams

/// Reads a `RelayConfiguration` from YAML, then lets `SIGNET_*` environment variables override any key.
///
/// Every key has an environment name: the path in upper case joined by `_` (`limits.max_connections` is
/// `SIGNET_LIMITS_MAX_CONNECTIONS`). Values are YAML too, so `SIGNET_SIGNING_TABLE='[{from: a.com, keys: [k]}]'`
/// works, and lists also accept comma-separated text. Unknown keys are errors, not silently ignored: a typo must
/// not turn into an open relay or unsigned mail.
public enum ConfigurationLoader {
    /// Prefix of the environment variables that override keys.
    public static let environmentPrefix = "SIGNET_"

    /// Loads `yaml` (nil or empty: all defaults) with `environment` applied on top.
    public static func load(
        yaml: String?, environment: [String: String] = [:]
    ) throws(ConfigurationError)
        -> RelayConfiguration
    {
        var root: Node
        do {
            root = try Yams.compose(yaml: yaml ?? "") ?? Node.mapping([:])
        } catch {
            throw ConfigurationError(["the configuration is not valid YAML: \(error)"])
        }
        if case .scalar(let scalar) = root, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" {
            root = Node.mapping([:])
        }
        guard root.mapping != nil else { throw ConfigurationError(["the configuration must be a mapping of keys"]) }

        var problems: [String] = []
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix(environmentPrefix) {
            guard let path = environmentPaths[name] else {
                problems.append("environment variable \(name) does not name a configuration key")
                continue
            }
            let node: Node
            do {
                node = try Yams.compose(yaml: value) ?? Node("")
            } catch {
                problems.append("\(name): not a valid YAML value: \(error)")
                continue
            }
            root = setting(root, path[...], to: node)
        }
        var reader = Reader()
        let configuration = reader.configuration(root)
        problems += reader.problems
        problems += validate(configuration)
        guard problems.isEmpty else { throw ConfigurationError(problems) }
        return configuration
    }

    /// Checks that need the whole configuration: table entries name defined keys, and so on.
    static func validate(_ configuration: RelayConfiguration) -> [String] {
        var problems: [String] = []
        if configuration.listen.isEmpty { problems.append("listen: at least one address is needed") }
        if configuration.clientNetworks.isEmpty {
            problems.append("client_networks: empty; no client could connect (use 127.0.0.0/8 for local senders)")
        }
        for (index, entry) in configuration.signing.table.enumerated() {
            if entry.keys.isEmpty { problems.append("signing.table[\(index)].keys: no key named") }
            for key in entry.keys where configuration.signing.keys[key] == nil {
                problems.append("signing.table[\(index)].keys: no key named '\(key)' in signing.keys")
            }
            if entry.from == "*" || entry.from.hasPrefix("*.") || SigningTable.normalizedDomain(entry.from) != nil {
                continue
            }
            problems.append("signing.table[\(index)].from: '\(entry.from)' is not a domain, *.domain or *")
        }
        problems += validate(configuration.srs)
        problems += validateAuthentication(configuration)
        if let auth = configuration.auth, configuration.tls == nil, !auth.allowPlaintext {
            problems.append(
                "auth: AUTH is offered only after STARTTLS; configure tls, or set auth.allow_plaintext for loopback use"
            )
        }
        if configuration.nextHopTLS.mode == .none && configuration.nextHopTLS.verify == true {
            problems.append("next_hop_tls.verify: nothing to verify with mode none")
        }
        let limits = configuration.limits
        for (name, value) in [
            ("limits.max_connections", limits.maxConnections), ("limits.max_message_size", limits.maxMessageSize),
            ("limits.max_recipients", limits.maxRecipients), ("limits.spool_threshold", limits.spoolThreshold),
            ("limits.max_header_size", limits.maxHeaderSize), ("limits.max_header_fields", limits.maxHeaderFields),
        ] where value <= 0 {
            problems.append("\(name): must be positive, not \(value)")
        }
        for (name, value) in [
            ("threads.event_loops", configuration.threads.eventLoops),
            ("threads.signers", configuration.threads.signers),
        ] where value < 0 {
            problems.append("\(name): must be 0 (one per core) or positive, not \(value)")
        }
        if limits.maxConnectionsPerClient < 0 {
            problems.append("limits.max_connections_per_client: must be 0 (no limit) or positive")
        }
        if limits.maxIdleNextHopConnections < 0 {
            problems.append("limits.max_idle_next_hop_connections: must be 0 (none kept) or positive")
        }
        if configuration.timeouts.nextHopIdle < 0 {
            problems.append("timeouts.next_hop_idle: must be 0 (no reuse) or positive")
        }
        if configuration.timeouts.nextHopReuse <= 0 {
            problems.append("timeouts.next_hop_reuse: must be positive, not \(configuration.timeouts.nextHopReuse)")
        }
        return problems
    }

    /// The `dns:`, `authentication:` and `arc:` sections: limits in range, sealing keys defined, ids writable.
    static func validateAuthentication(_ configuration: RelayConfiguration) -> [String] {
        var problems: [String] = []
        if configuration.dns.timeout < 1 || configuration.dns.timeout > 300 {
            problems.append("dns.timeout: seconds from 1 to 300, not \(configuration.dns.timeout)")
        }
        if configuration.dns.zoneFile != nil
            && (!configuration.dns.forwarders.isEmpty || configuration.dns.trustAnchorFile != nil)
        {
            problems.append("dns: zone_file answers everything itself; forwarders and trust_anchor_file do not apply")
        }
        for forwarder in configuration.dns.forwarders {
            // `address` or `address@port`, as unbound writes forwarders.
            let parts = forwarder.split(separator: "@", omittingEmptySubsequences: false)
            let portOK = parts.count == 1 || (parts.count == 2 && UInt16(parts[1]) != nil)
            if parts.count > 2 || !portOK || IPAddress(parts[0]) == nil {
                problems.append("dns.forwarders: '\(forwarder)' is not an IP address or address@port")
            }
        }
        let authentication = configuration.authentication
        if authentication.maxSignatures < 1 || authentication.maxSignatures > 100 {
            problems.append("authentication.max_signatures: from 1 to 100, not \(authentication.maxSignatures)")
        }
        if authentication.timeBudget < 1 || authentication.timeBudget > 300 {
            problems.append("authentication.time_budget: seconds from 1 to 300, not \(authentication.timeBudget)")
        }
        if let id = authentication.authservID, !MessageAuthenticator.isValidAuthservID(id) {
            problems.append("authentication.authserv_id: '\(id)' is not a token or domain")
        }
        for (index, rule) in configuration.arc.rules.enumerated() {
            let path = "arc.rules[\(index)]"
            if configuration.signing.keys[rule.key] == nil {
                problems.append("\(path).key: no key named '\(rule.key)' in signing.keys")
            }
            if let id = rule.authservID, !MessageAuthenticator.isValidAuthservID(id) {
                problems.append("\(path).authserv_id: '\(id)' is not a token or domain")
            }
            for (name, domain) in [("recipient_domain", rule.recipientDomain), ("sender_domain", rule.senderDomain)] {
                if let domain, SigningTable.normalizedDomain(domain) == nil {
                    problems.append("\(path).\(name): '\(domain)' is not a domain")
                }
            }
            if let headers = rule.headers ?? configuration.arc.headers, !headers.contains("from") {
                problems.append("\(path).headers: the list must include from (RFC 6376 §5.4)")
            }
        }
        return problems
    }

    /// The `srs:` section is complete when SRS is on; its secrets file is read only when the relay starts.
    static func validate(_ srs: RelayConfiguration.SRSSettings) -> [String] {
        guard srs.mode != .off else { return [] }
        var problems: [String] = []
        if let domain = srs.domain {
            if SigningTable.normalizedDomain(domain) == nil {
                problems.append("srs.domain: '\(domain)' is not a domain")
            }
        } else {
            problems.append("srs.domain: needed when srs.mode is \(srs.mode.rawValue)")
        }
        switch (srs.secrets.isEmpty, srs.secretsFile) {
        case (true, nil):
            problems.append("srs: secrets or secrets_file is needed when srs.mode is \(srs.mode.rawValue)")
        case (false, .some): problems.append("srs: give secrets or secrets_file, not both")
        default: break
        }
        if srs.secrets.contains(where: \.isEmpty) { problems.append("srs.secrets: an empty secret is not allowed") }
        if srs.maxAge <= 0 || srs.maxAge > 1000 {
            problems.append("srs.max_age: days from 1 to 1000, not \(srs.maxAge)")
        }
        if !["=", "+", "-"].contains(srs.separator) {
            problems.append("srs.separator: '\(srs.separator)' is not =, + or -")
        }
        for domain in srs.localDomains
        where SigningTable.normalizedDomain(domain.hasPrefix(".") ? String(domain.dropFirst()) : domain) == nil {
            problems.append("srs.local_domains: '\(domain)' is not a domain or .domain")
        }
        return problems
    }

    // MARK: Schema

    private indirect enum Schema: Sendable {
        case scalar
        case list
        case map([String: Schema])
        /// Free-form keys (names chosen by the user), each value shaped like the inner schema.
        case dictionary(Schema)
        case listOf(Schema)
    }

    private static let schema: [String: Schema] = [
        "listen": .list, "hostname": .scalar, "next_hop": .scalar, "state_directory": .scalar,
        "capture_directory": .scalar, "client_networks": .list, "forward_client_identity": .scalar,
        "xclient_networks": .list, "metrics_listen": .scalar,
        "limits": .map([
            "max_connections": .scalar, "max_message_size": .scalar, "max_recipients": .scalar,
            "spool_threshold": .scalar, "max_connections_per_client": .scalar, "max_header_size": .scalar,
            "max_header_fields": .scalar, "max_idle_next_hop_connections": .scalar,
        ]),
        "threads": .map(["event_loops": .scalar, "signers": .scalar]),
        "timeouts": .map([
            "command": .scalar, "data_block": .scalar, "next_hop_connect": .scalar, "next_hop_command": .scalar,
            "next_hop_data_end": .scalar, "next_hop_keepalive": .scalar, "shutdown_grace": .scalar,
            "min_data_rate": .scalar, "next_hop_idle": .scalar, "next_hop_reuse": .scalar,
        ]),
        "signing": .map([
            "keys": .dictionary(.map(keyEntrySchema)),
            "table": .listOf(.map(["from": .scalar, "keys": .list, "canonicalization": .scalar, "headers": .list])),
            "canonicalization": .scalar, "headers": .list, "oversign": .scalar, "timestamp": .scalar,
            "expiration": .scalar, "backend": .scalar, "agent_user": .scalar, "agent_timeout": .scalar,
            "agent_socket": .scalar,
        ]),
        "srs": .map([
            "mode": .scalar, "domain": .scalar, "secrets": .list, "secrets_file": .scalar, "local_domains": .list,
            "hash_encoding": .scalar, "max_age": .scalar, "separator": .scalar, "too_long": .scalar,
        ]),
        "tls": .map([
            "certificate_chain": .scalar, "private_key": .scalar, "minimum_version": .scalar, "require": .scalar,
        ]),
        "next_hop_tls": .map(["mode": .scalar, "ca_file": .scalar, "verify": .scalar, "server_name": .scalar]),
        "auth": .map(["password_file": .scalar, "required": .scalar, "allow_plaintext": .scalar]),
        "dns": .map(["forwarders": .list, "trust_anchor_file": .scalar, "timeout": .scalar, "zone_file": .scalar]),
        "authentication": .map([
            "add_results": .scalar, "authserv_id": .scalar, "max_signatures": .scalar, "time_budget": .scalar,
        ]),
        "arc": .map([
            "rules": .listOf(.map(arcRuleSchema)), "headers": .list,
        ]),
    ]

    private static let arcRuleSchema: [String: Schema] = [
        "listener": .scalar, "recipient_domain": .scalar, "sender_domain": .scalar, "list_id": .scalar,
        "key": .scalar, "authserv_id": .scalar, "headers": .list, "trust_results": .scalar,
    ]

    /// One entry of `signing.keys`.
    private static let keyEntrySchema: [String: Schema] = [
        "domain": .scalar, "selector": .scalar, "key_file": .scalar, "algorithm": .scalar, "expires": .scalar,
        "backend": .scalar,
        "pkcs11": .map([
            "module": .scalar, "token_label": .scalar, "slot": .scalar, "key_label": .scalar, "key_id": .scalar,
            "pin_file": .scalar, "pin_env": .scalar,
        ]),
    ]

    /// Environment variable name → key path, for every key that is not a fixed-key mapping.
    static let environmentPaths: [String: [String]] = {
        var result: [String: [String]] = [:]
        func walk(_ keys: [String: Schema], _ prefix: [String]) {
            for (key, inner) in keys {
                let path = prefix + [key]
                if case .map(let nested) = inner {
                    walk(nested, path)
                } else {
                    result[environmentPrefix + path.joined(separator: "_").uppercased()] = path
                }
            }
        }
        walk(schema, [])
        return result
    }()

    /// Every key path the schema accepts, nested ones written `signing.keys.NAME.domain` (NAME chosen by the user)
    /// and `signing.table[].from` (one per list item). The reference in docs/configuration.md is checked against it.
    static let keyPaths: [String] = {
        var result: [String] = []
        func walk(_ schema: Schema, _ path: String) {
            switch schema {
            case .scalar, .list: break
            case .map(let keys):
                for (key, inner) in keys {
                    let full = path.isEmpty ? key : path + "." + key
                    result.append(full)
                    walk(inner, full)
                }
            case .dictionary(let inner): walk(inner, path + ".NAME")
            case .listOf(let inner): walk(inner, path + "[]")
            }
        }
        walk(.map(schema), "")
        return result.sorted()
    }()

    private static func setting(_ node: Node, _ path: ArraySlice<String>, to value: Node) -> Node {
        guard let key = path.first else { return value }
        var mapping = node.mapping ?? Node.Mapping([])
        mapping[key] = setting(mapping[key] ?? Node.mapping([:]), path.dropFirst(), to: value)
        return .mapping(mapping)
    }

    // MARK: Reading

    private struct Reader {
        var problems: [String] = []

        mutating func configuration(_ root: Node) -> RelayConfiguration {
            var configuration = RelayConfiguration()
            let top = keys(root, "", ConfigurationLoader.schema)
            if let node = top["listen"] {
                configuration.listen = strings(node, "listen").compactMap { hostPort($0, "listen") }
            }
            if let node = top["hostname"], let value = string(node, "hostname") { configuration.hostname = value }
            if let node = top["next_hop"], let value = string(node, "next_hop") {
                configuration.nextHop = value.isEmpty ? nil : hostPort(value, "next_hop")
            }
            if let node = top["metrics_listen"], let value = string(node, "metrics_listen") {
                configuration.metricsListen = value.isEmpty ? nil : hostPort(value, "metrics_listen")
            }
            if let node = top["state_directory"], let value = string(node, "state_directory") {
                configuration.stateDirectory = value
            }
            if let node = top["capture_directory"], let value = string(node, "capture_directory") {
                configuration.captureDirectory = value
            }
            if let node = top["client_networks"] { configuration.clientNetworks = networks(node, "client_networks") }
            if let node = top["xclient_networks"] { configuration.xclientNetworks = networks(node, "xclient_networks") }
            if let node = top["forward_client_identity"], let text = string(node, "forward_client_identity") {
                if let mode = RelayConfiguration.ClientIdentityForwarding(rawValue: text.lowercased()) {
                    configuration.forwardClientIdentity = mode
                } else {
                    problems.append("forward_client_identity: '\(text)' is not none, xforward or xclient")
                }
            }
            if let node = top["threads"], case .map(let schema) = ConfigurationLoader.schema["threads"]! {
                let threads = keys(node, "threads", schema)
                int(threads["event_loops"], "threads.event_loops", &configuration.threads.eventLoops)
                int(threads["signers"], "threads.signers", &configuration.threads.signers)
            }
            if let node = top["limits"], case .map(let schema) = ConfigurationLoader.schema["limits"]! {
                let limits = keys(node, "limits", schema)
                int(limits["max_connections"], "limits.max_connections", &configuration.limits.maxConnections)
                int(limits["max_message_size"], "limits.max_message_size", &configuration.limits.maxMessageSize)
                int(limits["max_recipients"], "limits.max_recipients", &configuration.limits.maxRecipients)
                int(limits["spool_threshold"], "limits.spool_threshold", &configuration.limits.spoolThreshold)
                int(
                    limits["max_connections_per_client"], "limits.max_connections_per_client",
                    &configuration.limits.maxConnectionsPerClient)
                int(limits["max_header_size"], "limits.max_header_size", &configuration.limits.maxHeaderSize)
                int(limits["max_header_fields"], "limits.max_header_fields", &configuration.limits.maxHeaderFields)
                int(
                    limits["max_idle_next_hop_connections"], "limits.max_idle_next_hop_connections",
                    &configuration.limits.maxIdleNextHopConnections)
            }
            if let node = top["timeouts"], case .map(let schema) = ConfigurationLoader.schema["timeouts"]! {
                let timeouts = keys(node, "timeouts", schema)
                int(timeouts["command"], "timeouts.command", &configuration.timeouts.command)
                int(timeouts["data_block"], "timeouts.data_block", &configuration.timeouts.dataBlock)
                int(timeouts["next_hop_connect"], "timeouts.next_hop_connect", &configuration.timeouts.nextHopConnect)
                int(timeouts["next_hop_command"], "timeouts.next_hop_command", &configuration.timeouts.nextHopCommand)
                int(timeouts["next_hop_data_end"], "timeouts.next_hop_data_end", &configuration.timeouts.nextHopDataEnd)
                int(
                    timeouts["next_hop_keepalive"], "timeouts.next_hop_keepalive",
                    &configuration.timeouts.nextHopKeepalive)
                int(timeouts["shutdown_grace"], "timeouts.shutdown_grace", &configuration.timeouts.shutdownGrace)
                int(timeouts["min_data_rate"], "timeouts.min_data_rate", &configuration.timeouts.minDataRate)
                int(timeouts["next_hop_idle"], "timeouts.next_hop_idle", &configuration.timeouts.nextHopIdle)
                int(timeouts["next_hop_reuse"], "timeouts.next_hop_reuse", &configuration.timeouts.nextHopReuse)
            }
            if let node = top["signing"], case .map(let schema) = ConfigurationLoader.schema["signing"]! {
                configuration.signing = signing(keys(node, "signing", schema))
            }
            if let node = top["srs"], case .map(let schema) = ConfigurationLoader.schema["srs"]! {
                configuration.srs = srs(keys(node, "srs", schema))
            }
            if let node = top["tls"], case .map(let schema) = ConfigurationLoader.schema["tls"]! {
                configuration.tls = tls(keys(node, "tls", schema))
            }
            if let node = top["next_hop_tls"], case .map(let schema) = ConfigurationLoader.schema["next_hop_tls"]! {
                configuration.nextHopTLS = nextHopTLS(keys(node, "next_hop_tls", schema))
            }
            if let node = top["auth"], case .map(let schema) = ConfigurationLoader.schema["auth"]! {
                configuration.auth = auth(keys(node, "auth", schema))
            }
            if let node = top["dns"], case .map(let schema) = ConfigurationLoader.schema["dns"]! {
                configuration.dns = dns(keys(node, "dns", schema))
            }
            if let node = top["authentication"], case .map(let schema) = ConfigurationLoader.schema["authentication"]! {
                configuration.authentication = authentication(keys(node, "authentication", schema))
            }
            if let node = top["arc"], case .map(let schema) = ConfigurationLoader.schema["arc"]! {
                configuration.arc = arc(keys(node, "arc", schema))
            }
            return configuration
        }

        /// An empty value ("" or ~, as an environment variable may give) counts as absent.
        mutating func optionalString(_ node: Node?, _ path: String) -> String? {
            guard let node, let text = string(node, path), !text.isEmpty, text != "~", text != "null" else {
                return nil
            }
            return text
        }

        /// nil when the section is empty: no STARTTLS.
        mutating func tls(_ node: [String: Node]) -> RelayConfiguration.TLS? {
            let chain = optionalString(node["certificate_chain"], "tls.certificate_chain")
            let key = optionalString(node["private_key"], "tls.private_key")
            guard let chain, let key else {
                if chain != nil || key != nil || node["require"] != nil || node["minimum_version"] != nil {
                    problems.append("tls: certificate_chain and private_key are both needed")
                }
                return nil
            }
            var tls = RelayConfiguration.TLS(certificateChain: chain, privateKey: key)
            if let text = optionalString(node["minimum_version"], "tls.minimum_version") {
                let lowered = text.lowercased()
                let normalized = lowered.hasPrefix("tlsv") ? String(lowered.dropFirst(4)) : lowered
                if let version = RelayConfiguration.TLSMinimumVersion(rawValue: normalized) {
                    tls.minimumVersion = version
                } else {
                    problems.append("tls.minimum_version: '\(text)' is not 1.2 or 1.3")
                }
            }
            bool(node["require"], "tls.require", &tls.require)
            return tls
        }

        mutating func nextHopTLS(_ node: [String: Node]) -> RelayConfiguration.NextHopTLS {
            var result = RelayConfiguration.NextHopTLS()
            if let text = optionalString(node["mode"], "next_hop_tls.mode") {
                if let mode = RelayConfiguration.NextHopTLSMode(rawValue: text.lowercased()) {
                    result.mode = mode
                } else {
                    problems.append("next_hop_tls.mode: '\(text)' is not none, opportunistic or required")
                }
            }
            result.caFile = optionalString(node["ca_file"], "next_hop_tls.ca_file")
            if node["verify"] != nil, optionalString(node["verify"], "next_hop_tls.verify") != nil {
                var verify = false
                bool(node["verify"], "next_hop_tls.verify", &verify)
                result.verify = verify
            }
            result.serverName = optionalString(node["server_name"], "next_hop_tls.server_name")
            return result
        }

        /// nil when the section is empty: no AUTH.
        mutating func auth(_ node: [String: Node]) -> RelayConfiguration.Auth? {
            guard let file = optionalString(node["password_file"], "auth.password_file") else {
                if node["required"] != nil || node["allow_plaintext"] != nil {
                    problems.append("auth: password_file is needed")
                }
                return nil
            }
            var auth = RelayConfiguration.Auth(passwordFile: file)
            bool(node["required"], "auth.required", &auth.required)
            bool(node["allow_plaintext"], "auth.allow_plaintext", &auth.allowPlaintext)
            return auth
        }

        mutating func signing(_ node: [String: Node]) -> RelayConfiguration.Signing {
            var signing = RelayConfiguration.Signing()
            if let value = node["canonicalization"].flatMap({ canonicalization($0, "signing.canonicalization") }) {
                signing.canonicalization = value
            }
            if let headers = node["headers"] {
                signing.headers = strings(headers, "signing.headers").map { $0.lowercased() }
            }
            bool(node["oversign"], "signing.oversign", &signing.oversign)
            bool(node["timestamp"], "signing.timestamp", &signing.timestamp)
            int(node["expiration"], "signing.expiration", &signing.expiration)
            if let text = node["backend"].flatMap({ string($0, "signing.backend") }) {
                if let backend = RelayConfiguration.SigningBackend(rawValue: text.lowercased()) {
                    signing.backend = backend
                } else {
                    problems.append("signing.backend: '\(text)' is not in-process, agent or pkcs11")
                }
            }
            if let user = node["agent_user"].flatMap({ string($0, "signing.agent_user") }) { signing.agentUser = user }
            int(node["agent_timeout"], "signing.agent_timeout", &signing.agentTimeout)
            if let path = node["agent_socket"].flatMap({ string($0, "signing.agent_socket") }), !path.isEmpty {
                signing.agentSocket = path
            }
            if signing.agentTimeout < 1 { problems.append("signing.agent_timeout: at least 1 second") }
            if let keysNode = node["keys"] {
                if let mapping = keysNode.mapping {
                    for (nameNode, entryNode) in mapping {
                        let name = nameNode.string ?? ""
                        let path = "signing.keys.\(name)"
                        let entry = keys(entryNode, path, ConfigurationLoader.keyEntrySchema)
                        var backend: RelayConfiguration.SigningBackend?
                        if let text = entry["backend"].flatMap({ string($0, path + ".backend") }) {
                            backend = RelayConfiguration.SigningBackend(rawValue: text.lowercased())
                            if backend == nil {
                                problems.append("\(path).backend: '\(text)' is not in-process, agent or pkcs11")
                            }
                        }
                        let effective = backend ?? signing.backend
                        guard let domain = entry["domain"].flatMap({ string($0, path + ".domain") }),
                            let selector = entry["selector"].flatMap({ string($0, path + ".selector") })
                        else {
                            problems.append("\(path): domain and selector are both needed")
                            continue
                        }
                        let keyFile = optionalString(entry["key_file"], path + ".key_file")
                        var key: RelayConfiguration.KeyEntry
                        if effective == .pkcs11 {
                            if keyFile != nil {
                                problems.append("\(path).key_file: a pkcs11 key has no key file (see \(path).pkcs11)")
                            }
                            guard let section = entry["pkcs11"],
                                case .map(let schema)? = ConfigurationLoader.keyEntrySchema["pkcs11"],
                                let location = pkcs11(keys(section, path + ".pkcs11", schema), path + ".pkcs11")
                            else {
                                if entry["pkcs11"] == nil {
                                    problems.append(
                                        "\(path).pkcs11: needed with backend pkcs11 (module, token, key, PIN)")
                                }
                                continue
                            }
                            key = RelayConfiguration.KeyEntry(domain: domain, selector: selector, pkcs11: location)
                            key.backend = backend
                        } else {
                            if entry["pkcs11"] != nil {
                                problems.append(
                                    "\(path).pkcs11: used only with backend pkcs11, and this key's backend is \(effective.rawValue)"
                                )
                            }
                            guard let keyFile else {
                                problems.append("\(path).key_file: needed with backend \(effective.rawValue)")
                                continue
                            }
                            key = RelayConfiguration.KeyEntry(domain: domain, selector: selector, keyFile: keyFile)
                            key.backend = backend
                        }
                        if let text = entry["algorithm"].flatMap({ string($0, path + ".algorithm") }) {
                            if let algorithm = DKIMAlgorithm(rawValue: text.lowercased()) {
                                key.algorithm = algorithm
                            } else {
                                problems.append("\(path).algorithm: '\(text)' is not rsa-sha256 or ed25519-sha256")
                            }
                        }
                        if let text = entry["expires"].flatMap({ string($0, path + ".expires") }) {
                            key.expires = KeyExpiry.unixTime(text)
                            if key.expires == nil {
                                problems.append("\(path).expires: '\(text)' is not YYYY-MM-DD or Unix time")
                            }
                        }
                        signing.keys[name] = key
                    }
                } else {
                    problems.append("signing.keys: expected a mapping of key names")
                }
            }
            if let tableNode = node["table"] {
                if let sequence = tableNode.sequence {
                    for (index, entryNode) in sequence.enumerated() {
                        let path = "signing.table[\(index)]"
                        let entry = keys(
                            entryNode, path,
                            ["from": .scalar, "keys": .list, "canonicalization": .scalar, "headers": .list])
                        guard let from = entry["from"].flatMap({ string($0, path + ".from") }), let keys = entry["keys"]
                        else {
                            problems.append("\(path): from and keys are both needed")
                            continue
                        }
                        var rule = RelayConfiguration.TableEntry(
                            from: from.lowercased(), keys: strings(keys, path + ".keys"))
                        rule.canonicalization = entry["canonicalization"].flatMap {
                            canonicalization($0, path + ".canonicalization")
                        }
                        rule.headers = entry["headers"].map { strings($0, path + ".headers").map { $0.lowercased() } }
                        signing.table.append(rule)
                    }
                } else {
                    problems.append("signing.table: expected a list of rules")
                }
            }
            return signing
        }

        /// A key's `pkcs11:` section; nil (with the problems recorded) when it is incomplete.
        mutating func pkcs11(_ node: [String: Node], _ path: String) -> PKCS11KeyLocation? {
            let before = problems.count
            let module = optionalString(node["module"], path + ".module")
            if module == nil { problems.append("\(path).module: the PKCS#11 module's path is needed") }
            var token: PKCS11KeyLocation.Token?
            switch (
                optionalString(node["token_label"], path + ".token_label"), optionalString(node["slot"], path + ".slot")
            ) {
            case (let label?, nil): token = .label(label)
            case (nil, let slot?):
                if let number = UInt(slot) {
                    token = .slot(number)
                } else {
                    problems.append("\(path).slot: '\(slot)' is not a slot number")
                }
            case (nil, nil): problems.append("\(path): token_label or slot is needed")
            case (.some, .some): problems.append("\(path): give token_label or slot, not both")
            }
            let label = optionalString(node["key_label"], path + ".key_label")
            var id: [UInt8]?
            if let text = optionalString(node["key_id"], path + ".key_id") {
                id = PKCS11KeyLocation.bytes(hex: text)
                if id == nil { problems.append("\(path).key_id: '\(text)' is not hex (CKA_ID, e.g. 01 or a1:b2)") }
            }
            if label == nil && node["key_id"] == nil { problems.append("\(path): key_label or key_id is needed") }
            var pin: PKCS11KeyLocation.PINSource?
            switch (
                optionalString(node["pin_file"], path + ".pin_file"), optionalString(node["pin_env"], path + ".pin_env")
            ) {
            case (let file?, nil): pin = .file(file)
            case (nil, let name?):
                // SIGNET_* variables are configuration overrides; the loader would refuse this one as unknown.
                if name.hasPrefix(ConfigurationLoader.environmentPrefix) {
                    problems.append(
                        "\(path).pin_env: \(name) starts with \(ConfigurationLoader.environmentPrefix), which is for configuration keys; use another name"
                    )
                } else {
                    pin = .environment(name)
                }
            case (nil, nil):
                problems.append(
                    "\(path): pin_file or pin_env is needed (the PIN itself is never written in the configuration)")
            case (.some, .some): problems.append("\(path): give pin_file or pin_env, not both")
            }
            guard problems.count == before, let module, let token, let pin else { return nil }
            let location = PKCS11KeyLocation(module: module, token: token, keyLabel: label, keyID: id, pin: pin)
            problems += location.problems.map { "\(path): \($0)" }
            return problems.count == before ? location : nil
        }

        mutating func dns(_ node: [String: Node]) -> RelayConfiguration.DNS {
            var dns = RelayConfiguration.DNS()
            if let list = node["forwarders"] { dns.forwarders = strings(list, "dns.forwarders") }
            dns.trustAnchorFile = optionalString(node["trust_anchor_file"], "dns.trust_anchor_file")
            int(node["timeout"], "dns.timeout", &dns.timeout)
            dns.zoneFile = optionalString(node["zone_file"], "dns.zone_file")
            return dns
        }

        mutating func authentication(_ node: [String: Node]) -> RelayConfiguration.Authentication {
            var result = RelayConfiguration.Authentication()
            bool(node["add_results"], "authentication.add_results", &result.addResults)
            result.authservID = optionalString(node["authserv_id"], "authentication.authserv_id")
            int(node["max_signatures"], "authentication.max_signatures", &result.maxSignatures)
            int(node["time_budget"], "authentication.time_budget", &result.timeBudget)
            return result
        }

        mutating func arc(_ node: [String: Node]) -> RelayConfiguration.ARCSettings {
            var result = RelayConfiguration.ARCSettings()
            if let list = node["headers"] { result.headers = strings(list, "arc.headers").map { $0.lowercased() } }
            guard let rulesNode = node["rules"] else { return result }
            guard let sequence = rulesNode.sequence else {
                problems.append("arc.rules: expected a list of rules")
                return result
            }
            for (index, entryNode) in sequence.enumerated() {
                let path = "arc.rules[\(index)]"
                let entry = keys(entryNode, path, ConfigurationLoader.arcRuleSchema)
                guard let key = optionalString(entry["key"], path + ".key") else {
                    problems.append("\(path).key: the name of a key in signing.keys is needed")
                    continue
                }
                var rule = RelayConfiguration.ARCRule(key: key)
                if let text = optionalString(entry["listener"], path + ".listener") {
                    rule.listener = hostPort(text, path + ".listener")
                }
                rule.recipientDomain = optionalString(entry["recipient_domain"], path + ".recipient_domain")?
                    .lowercased()
                rule.senderDomain = optionalString(entry["sender_domain"], path + ".sender_domain")?.lowercased()
                rule.listID = optionalString(entry["list_id"], path + ".list_id")
                rule.authservID = optionalString(entry["authserv_id"], path + ".authserv_id")
                rule.headers = entry["headers"].map { strings($0, path + ".headers").map { $0.lowercased() } }
                bool(entry["trust_results"], path + ".trust_results", &rule.trustResults)
                result.rules.append(rule)
            }
            return result
        }

        mutating func srs(_ node: [String: Node]) -> RelayConfiguration.SRSSettings {
            var srs = RelayConfiguration.SRSSettings()
            if let text = node["mode"].flatMap({ string($0, "srs.mode") }) {
                if let mode = RelayConfiguration.SRSSettings.Mode(rawValue: text.lowercased()) {
                    srs.mode = mode
                } else {
                    problems.append("srs.mode: '\(text)' is not off, forward, reverse or both")
                }
            }
            if let text = node["domain"].flatMap({ string($0, "srs.domain") }), !text.isEmpty {
                srs.domain = text.lowercased()
            }
            // Secrets are kept exactly as written: the HMAC key is their bytes.
            if let list = node["secrets"] { srs.secrets = strings(list, "srs.secrets") }
            if let text = node["secrets_file"].flatMap({ string($0, "srs.secrets_file") }), !text.isEmpty {
                srs.secretsFile = text
            }
            if let list = node["local_domains"] {
                srs.localDomains = strings(list, "srs.local_domains").map { $0.lowercased() }
            }
            if let text = node["hash_encoding"].flatMap({ string($0, "srs.hash_encoding") }) {
                if let encoding = SRSHashEncoding(rawValue: text.lowercased()) {
                    srs.hashEncoding = encoding
                } else {
                    problems.append("srs.hash_encoding: '\(text)' is not base64 or base64url")
                }
            }
            int(node["max_age"], "srs.max_age", &srs.maxAge)
            if let text = node["separator"].flatMap({ string($0, "srs.separator") }) { srs.separator = text }
            if let text = node["too_long"].flatMap({ string($0, "srs.too_long") }) {
                if let fallback = RelayConfiguration.SRSSettings.TooLongFallback(rawValue: text.lowercased()) {
                    srs.tooLong = fallback
                } else {
                    problems.append("srs.too_long: '\(text)' is not pass or tempfail")
                }
            }
            return srs
        }

        /// The mapping's values by key; unknown keys are reported.
        mutating func keys(_ node: Node, _ path: String, _ schema: [String: Schema]) -> [String: Node] {
            guard let mapping = node.mapping else {
                if !(node.scalar?.string.isEmpty ?? false) {
                    problems.append("\(path.isEmpty ? "configuration" : path): expected a mapping")
                }
                return [:]
            }
            var result: [String: Node] = [:]
            for (keyNode, value) in mapping {
                let key = keyNode.string ?? ""
                let full = path.isEmpty ? key : path + "." + key
                guard schema[key] != nil else {
                    let known = schema.keys.sorted().joined(separator: ", ")
                    problems.append("\(full): unknown key (known here: \(known))")
                    continue
                }
                result[key] = value
            }
            return result
        }

        mutating func string(_ node: Node, _ path: String) -> String? {
            guard let scalar = node.scalar else {
                problems.append("\(path): expected a single value")
                return nil
            }
            return scalar.string
        }

        /// A YAML list, or one text value split at commas (handy in environment variables).
        mutating func strings(_ node: Node, _ path: String) -> [String] {
            if let sequence = node.sequence {
                return sequence.compactMap { string($0, path) }
            }
            guard let text = string(node, path) else { return [] }
            return text.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
        }

        mutating func int(_ node: Node?, _ path: String, _ target: inout Int) {
            guard let node, let text = string(node, path) else { return }
            let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024)]
            for (suffix, factor) in units where text.hasSuffix(suffix) {
                if let number = Int(text.dropLast(suffix.count).trimmingSpaces()) {
                    target = number * factor
                    return
                }
            }
            guard let number = Int(text) else {
                problems.append("\(path): expected a whole number, not '\(text)'")
                return
            }
            target = number
        }

        mutating func bool(_ node: Node?, _ path: String, _ target: inout Bool) {
            guard let node, let text = string(node, path) else { return }
            switch text.lowercased() {
            case "true", "yes", "on", "1": target = true
            case "false", "no", "off", "0": target = false
            default: problems.append("\(path): expected true or false, not '\(text)'")
            }
        }

        mutating func networks(_ node: Node, _ path: String) -> [NetworkPrefix] {
            strings(node, path).compactMap { text in
                guard let prefix = NetworkPrefix(text) else {
                    problems.append("\(path): '\(text)' is not an address or CIDR network")
                    return nil
                }
                return prefix
            }
        }

        mutating func hostPort(_ text: String, _ path: String) -> HostPort? {
            guard let value = HostPort(text) else {
                problems.append("\(path): '\(text)' is not host:port")
                return nil
            }
            return value
        }

        mutating func canonicalization(_ node: Node, _ path: String) -> CanonicalizationPair? {
            guard let text = string(node, path) else { return nil }
            guard let pair = CanonicalizationPair(tagValue: text) else {
                problems.append("\(path): '\(text)' is not simple or relaxed (header/body)")
                return nil
            }
            return pair
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
