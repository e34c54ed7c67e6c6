import DKIM
import DKIMCore
import NIOCore
import Testing

@testable import Relay

@Suite("Configuration: YAML, environment overrides, validation")
struct ConfigurationTests {
    static let yaml = """
        listen: ["127.0.0.1:2525", "[::1]:2525"]
        hostname: relay.example.com
        next_hop: 127.0.0.1:10028
        client_networks: [10.0.0.0/8, 127.0.0.1]
        limits:
          max_message_size: 10MiB
          max_recipients: 50
        timeouts:
          command: 60
        signing:
          canonicalization: relaxed/simple
          keys:
            ex-rsa: {domain: example.com, selector: rsa1, key_file: /k/rsa.pem}
            ex-ed: {domain: example.com, selector: ed1, key_file: /k/ed.pem, algorithm: ed25519-sha256}
          table:
            - from: example.com
              keys: [ex-rsa, ex-ed]
            - from: "*"
              keys: [ex-rsa]
              headers: [from, subject]
        """

    @Test func readsEveryKey() throws {
        let configuration = try ConfigurationLoader.load(yaml: Self.yaml)
        #expect(configuration.listen == [HostPort(host: "127.0.0.1", port: 2525), HostPort(host: "::1", port: 2525)])
        #expect(configuration.hostname == "relay.example.com")
        #expect(configuration.nextHop == HostPort(host: "127.0.0.1", port: 10028))
        #expect(configuration.clientNetworks.map(\.description) == ["10.0.0.0/8", "127.0.0.1/32"])
        #expect(configuration.limits.maxMessageSize == 10 * 1024 * 1024)
        #expect(configuration.limits.maxRecipients == 50)
        #expect(configuration.limits.maxConnections == 1000)
        #expect(configuration.timeouts.command == 60)
        #expect(configuration.signing.canonicalization == CanonicalizationPair(header: .relaxed, body: .simple))
        #expect(configuration.signing.keys["ex-ed"]?.algorithm == .ed25519SHA256)
        #expect(configuration.signing.table.map(\.from) == ["example.com", "*"])
        #expect(configuration.signing.table[1].headers == ["from", "subject"])
    }

    @Test func defaultsWithoutAFile() throws {
        let configuration = try ConfigurationLoader.load(yaml: nil)
        #expect(configuration == RelayConfiguration())
        #expect(configuration.listen == [HostPort(host: "127.0.0.1", port: 10025)])
        #expect(configuration.nextHop == nil)
    }

    @Test func environmentOverridesAnyKey() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: Self.yaml,
            environment: [
                "SIGNET_NEXT_HOP": "mx.example.net:25",
                "SIGNET_LIMITS_MAX_RECIPIENTS": "7",
                "SIGNET_CLIENT_NETWORKS": "192.0.2.0/24, 198.51.100.7",
                "SIGNET_SIGNING_TABLE": "[{from: other.org, keys: [ex-ed]}]",
                "HOME": "/root",
            ]
        )
        #expect(configuration.nextHop == HostPort(host: "mx.example.net", port: 25))
        #expect(configuration.limits.maxRecipients == 7)
        #expect(configuration.limits.maxMessageSize == 10 * 1024 * 1024)
        #expect(configuration.clientNetworks.map(\.description) == ["192.0.2.0/24", "198.51.100.7/32"])
        #expect(configuration.signing.table == [RelayConfiguration.TableEntry(from: "other.org", keys: ["ex-ed"])])
    }

    @Test func problemsNameTheirKeys() {
        let bad = """
            lisen: 127.0.0.1:25
            next_hop: nowhere
            limits: {max_connections: lots}
            client_networks: [300.1.1.1/8]
            signing:
              keys: {k: {domain: example.com, selector: s}}
              table: [{from: example.com, keys: [missing]}]
            """
        do {
            _ = try ConfigurationLoader.load(yaml: bad, environment: ["SIGNET_NO_SUCH_KEY": "1"])
            Issue.record("accepted a bad configuration")
        } catch {
            let text = error.description
            for expected in [
                "lisen: unknown key", "next_hop: 'nowhere' is not host:port",
                "limits.max_connections: expected a whole number, not 'lots'",
                "client_networks: '300.1.1.1/8'", "signing.keys.k.key_file: needed with backend in-process",
                "no key named 'missing'", "SIGNET_NO_SUCH_KEY does not name a configuration key",
            ] {
                #expect(text.contains(expected), "missing '\(expected)' in:\n\(text)")
            }
        }
    }

    @Test func threadCountsDefaultToTheCores() throws {
        let automatic = try ConfigurationLoader.load(yaml: nil).threads
        #expect(automatic.eventLoopCount(cores: 8) == 8 && automatic.signerCount(cores: 8) == 8)
        let sidecar = try ConfigurationLoader.load(
            yaml: "threads: {event_loops: 1}", environment: ["SIGNET_THREADS_SIGNERS": "2"]
        ).threads
        #expect(sidecar.eventLoopCount(cores: 8) == 1 && sidecar.signerCount(cores: 8) == 2)
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(yaml: "threads: {signers: -1}") }
        do {
            _ = try ConfigurationLoader.load(yaml: "threads: {event_loops: -2}")
            Issue.record("accepted a negative thread count")
        } catch {
            #expect(error.description.contains("threads.event_loops: must be 0 (one per core) or positive, not -2"))
        }
    }

    @Test func clientIdentityForwarding() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: "forward_client_identity: xclient\nxclient_networks: [10.1.0.0/16]",
            environment: ["SIGNET_FORWARD_CLIENT_IDENTITY": "XFORWARD"])
        #expect(configuration.forwardClientIdentity == .xforward)
        #expect(configuration.xclientNetworks.map(\.description) == ["10.1.0.0/16"])
        #expect(try ConfigurationLoader.load(yaml: nil).forwardClientIdentity == .none)
        #expect(try ConfigurationLoader.load(yaml: nil).xclientNetworks.isEmpty)
        do {
            _ = try ConfigurationLoader.load(yaml: "forward_client_identity: proxy\nxclient_networks: [nonsense]")
            Issue.record("accepted forward_client_identity: proxy")
        } catch {
            #expect(error.description.contains("forward_client_identity: 'proxy' is not none, xforward or xclient"))
            #expect(error.description.contains("xclient_networks: 'nonsense'"))
        }
    }

    @Test func invalidYAMLIsReported() {
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(yaml: "listen: [unclosed") }
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(yaml: "- just\n- a list") }
    }

    @Test func networkPrefixes() throws {
        let loopback = try #require(NetworkPrefix("127.0.0.0/8"))
        #expect(loopback.contains(try .init(ipAddress: "127.1.2.3", port: 1)))
        #expect(!loopback.contains(try .init(ipAddress: "128.0.0.1", port: 1)))
        #expect(loopback.contains(try .init(ipAddress: "::ffff:127.0.0.1", port: 1)))
        let v6 = try #require(NetworkPrefix("2001:db8::/33"))
        #expect(v6.contains(try .init(ipAddress: "2001:db8:7fff::1", port: 1)))
        #expect(!v6.contains(try .init(ipAddress: "2001:db8:8000::1", port: 1)))
        #expect(NetworkPrefix("10.0.0.0/33") == nil)
        #expect(NetworkPrefix("10.0.0.1/31")?.description == "10.0.0.0/31")
        #expect(HostPort("localhost") == nil)
        #expect(HostPort("host:0") == nil)
    }
}
