import DKIM
import DKIMCore
import Foundation
import Keys

extension RelayConfiguration {
    /// The configuration in effect as JSON, for `/debug/config`. Fields are listed one by one rather than
    /// reflected, so a secret added to the configuration later (an AUTH password, an SRS secret) stays out until
    /// someone decides it may be shown. Key files appear as paths; their contents never do.
    public func redactedJSON() -> String {
        let signingKeys = signing.keys.mapValues { key -> [String: Any] in
            var entry: [String: Any] = ["domain": key.domain, "selector": key.selector, "key_file": key.keyFile]
            entry["backend"] = signing.backend(of: key).rawValue
            if let location = key.pkcs11 {
                // Where the PIN comes from, never the PIN.
                var pkcs11: [String: Any] = ["module": location.module]
                switch location.token {
                case .label(let label): pkcs11["token_label"] = label
                case .slot(let slot): pkcs11["slot"] = slot
                }
                if let label = location.keyLabel { pkcs11["key_label"] = label }
                if let id = location.keyID { pkcs11["key_id"] = PKCS11KeyLocation.hex(id) }
                switch location.pin {
                case .file(let path): pkcs11["pin_file"] = path
                case .environment(let name): pkcs11["pin_env"] = name
                }
                entry["pkcs11"] = pkcs11
            }
            if let algorithm = key.algorithm { entry["algorithm"] = algorithm.rawValue }
            if let expires = key.expires { entry["expires"] = expires }
            return entry
        }
        let table = signing.table.map { rule -> [String: Any] in
            var entry: [String: Any] = ["from": rule.from, "keys": rule.keys]
            if let canonicalization = rule.canonicalization { entry["canonicalization"] = canonicalization.tagValue }
            if let headers = rule.headers { entry["headers"] = headers }
            return entry
        }
        let document: [String: Any] = [
            "listen": listen.map(\.description),
            "hostname": hostname,
            "next_hop": nextHop?.description ?? NSNull(),
            "metrics_listen": metricsListen?.description ?? NSNull(),
            "state_directory": stateDirectory,
            "capture_directory": effectiveCaptureDirectory,
            "client_networks": clientNetworks.map(\.description),
            "xclient_networks": xclientNetworks.map(\.description),
            "forward_client_identity": forwardClientIdentity.rawValue,
            "threads": ["event_loops": threads.eventLoops, "signers": threads.signers],
            "limits": [
                "max_connections": limits.maxConnections, "max_message_size": limits.maxMessageSize,
                "max_recipients": limits.maxRecipients, "spool_threshold": limits.spoolThreshold,
                "max_connections_per_client": limits.maxConnectionsPerClient,
                "max_header_size": limits.maxHeaderSize, "max_header_fields": limits.maxHeaderFields,
                "max_idle_next_hop_connections": limits.maxIdleNextHopConnections,
            ],
            "timeouts": [
                "command": timeouts.command, "data_block": timeouts.dataBlock,
                "next_hop_connect": timeouts.nextHopConnect, "next_hop_command": timeouts.nextHopCommand,
                "next_hop_data_end": timeouts.nextHopDataEnd, "next_hop_keepalive": timeouts.nextHopKeepalive,
                "shutdown_grace": timeouts.shutdownGrace,
                "min_data_rate": timeouts.minDataRate, "next_hop_idle": timeouts.nextHopIdle,
                "next_hop_reuse": timeouts.nextHopReuse,
            ],
            "signing": [
                "keys": signingKeys, "table": table, "canonicalization": signing.canonicalization.tagValue,
                "headers": signing.headers, "oversign": signing.oversign, "timestamp": signing.timestamp,
                "expiration": signing.expiration, "backend": signing.backend.rawValue,
                "agent_user": signing.agentUser, "agent_timeout": signing.agentTimeout,
                "agent_socket": signing.agentSocket ?? "",
            ] as [String: Any],
            "dns": [
                "forwarders": dns.forwarders, "trust_anchor_file": dns.trustAnchorFile ?? NSNull(),
                "timeout": dns.timeout, "zone_file": dns.zoneFile ?? NSNull(),
            ] as [String: Any],
            "authentication": [
                "add_results": authentication.addResults, "authserv_id": authentication.authservID ?? hostname,
                "max_signatures": authentication.maxSignatures, "time_budget": authentication.timeBudget,
            ] as [String: Any],
            "arc": [
                "headers": arc.headers ?? signing.headers,
                "rules": arc.rules.map { rule -> [String: Any] in
                    var entry: [String: Any] = ["key": rule.key, "trust_results": rule.trustResults]
                    if let listener = rule.listener { entry["listener"] = listener.description }
                    if let domain = rule.recipientDomain { entry["recipient_domain"] = domain }
                    if let domain = rule.senderDomain { entry["sender_domain"] = domain }
                    if let listID = rule.listID { entry["list_id"] = listID }
                    if let id = rule.authservID { entry["authserv_id"] = id }
                    if let headers = rule.headers { entry["headers"] = headers }
                    return entry
                },
            ] as [String: Any],
        ]
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}
