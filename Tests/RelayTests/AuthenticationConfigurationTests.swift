import ARC
import DKIM
import Keys
import Testing

@testable import Relay

@Suite("Configuration: dns, authentication and arc sections; sealing rule matching")
struct AuthenticationConfigurationTests {
    static let yaml = """
        hostname: relay.example.net
        dns: {forwarders: [192.0.2.53, "2001:db8::53", "127.0.0.1@5353"], timeout: 3}
        authentication: {add_results: true, authserv_id: mx.example.net, max_signatures: 4, time_budget: 7}
        signing:
          keys:
            list: {domain: lists.example.org, selector: arc1, key_file: /k/arc.pem}
        arc:
          headers: [from, to, subject]
          rules:
            - {list_id: dev.lists.example.org, key: list, trust_results: true}
            - {recipient_domain: example.com, sender_domain: lists.example.org, key: list, authserv_id: arc.example.org}
            - {listener: "0.0.0.0:2526", key: list, headers: [from, subject, date]}
        """

    @Test func readsEveryKey() throws {
        let configuration = try ConfigurationLoader.load(yaml: Self.yaml)
        #expect(configuration.dns.forwarders == ["192.0.2.53", "2001:db8::53", "127.0.0.1@5353"])
        #expect(configuration.dns.timeout == 3)
        #expect(configuration.dns.zoneFile == nil)
        #expect(configuration.authentication.addResults)
        #expect(configuration.authentication.authservID == "mx.example.net")
        #expect(configuration.authentication.maxSignatures == 4)
        #expect(configuration.authentication.timeBudget == 7)
        #expect(configuration.arc.headers == ["from", "to", "subject"])
        let rules = configuration.arc.rules
        #expect(rules.count == 3)
        #expect(rules[0].listID == "dev.lists.example.org" && rules[0].trustResults && rules[0].key == "list")
        #expect(rules[1].recipientDomain == "example.com" && rules[1].senderDomain == "lists.example.org")
        #expect(rules[1].authservID == "arc.example.org" && !rules[1].trustResults)
        #expect(rules[2].listener == HostPort(host: "0.0.0.0", port: 2526))
        #expect(rules[2].headers == ["from", "subject", "date"])
        let json = configuration.redactedJSON()
        #expect(json.contains("\"list_id\" : \"dev.lists.example.org\""), "\(json)")
        #expect(json.contains("\"time_budget\" : 7"))
    }

    @Test func defaults() throws {
        let configuration = try ConfigurationLoader.load(yaml: "hostname: h.example")
        #expect(configuration.dns == RelayConfiguration.DNS())
        #expect(configuration.dns.timeout == 5 && configuration.dns.forwarders.isEmpty)
        #expect(!configuration.authentication.addResults)
        #expect(configuration.authentication.maxSignatures == 10 && configuration.authentication.timeBudget == 10)
        #expect(configuration.arc.rules.isEmpty)
    }

    @Test func environmentOverrides() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: Self.yaml,
            environment: [
                "SIGNET_DNS_ZONE_FILE": "/etc/test.zone", "SIGNET_DNS_FORWARDERS": "",
                "SIGNET_AUTHENTICATION_ADD_RESULTS": "false", "SIGNET_AUTHENTICATION_TIME_BUDGET": "2",
                "SIGNET_ARC_RULES": "[{sender_domain: example.com, key: list}]",
            ])
        #expect(configuration.dns.zoneFile == "/etc/test.zone")
        #expect(!configuration.authentication.addResults)
        #expect(configuration.authentication.timeBudget == 2)
        #expect(configuration.arc.rules.map(\.senderDomain) == ["example.com"])
    }

    @Test func refusesBadValues() {
        let cases: [(String, String)] = [
            ("arc: {rules: [{key: nokey}]}", "no key named 'nokey'"),
            ("arc: {rules: [{list_id: x}]}", "arc.rules[0].key"),
            ("arc: {rules: [{key: k, colour: red}]}", "arc.rules[0].colour: unknown key"),
            ("arc: {rules: [{key: k, headers: [subject]}]}", "must include from"),
            ("arc: {rules: [{key: k, recipient_domain: 'not a domain'}]}", "recipient_domain"),
            ("arc: {rules: [{key: k, authserv_id: 'a;b'}]}", "authserv_id"),
            ("authentication: {time_budget: 0}", "authentication.time_budget"),
            ("authentication: {max_signatures: 1000}", "authentication.max_signatures"),
            ("authentication: {authserv_id: 'has space'}", "authentication.authserv_id"),
            ("dns: {timeout: 0}", "dns.timeout"),
            ("dns: {forwarders: [resolver.example]}", "not an IP address"),
            ("dns: {forwarders: [192.0.2.1@x]}", "not an IP address"),
            ("dns: {zone_file: /z, forwarders: [192.0.2.1]}", "zone_file answers everything"),
        ]
        let keys = "signing: {keys: {k: {domain: example.org, selector: s, key_file: /k}}}\n"
        for (yaml, expected) in cases {
            do {
                _ = try ConfigurationLoader.load(yaml: keys + yaml)
                Issue.record("accepted: \(yaml)")
            } catch {
                #expect(error.description.contains(expected), "\(yaml): \(error)")
            }
        }
    }

    // MARK: Rule matching

    static func policy(_ rules: [RelayConfiguration.ARCRule]) throws -> SealingPolicy {
        let key = try PrivateKey.generateEd25519()
        let sealer = try ARCSealer(domain: "lists.example.org", selector: "arc1", key: key)
        return SealingPolicy(rules: rules.map { SealingPolicy.Rule(rule: $0, sealer: sealer, authservID: "a.example") })
    }

    static func rule(_ change: (inout RelayConfiguration.ARCRule) -> Void) -> RelayConfiguration.ARCRule {
        var rule = RelayConfiguration.ARCRule(key: "list")
        change(&rule)
        return rule
    }

    static func request(
        listener: HostPort? = HostPort(host: "127.0.0.1", port: 2525), recipients: [String] = ["a@example.com"],
        sender: String = "owner@lists.example.org", listID: String? = nil
    ) -> SealingPolicy.Request {
        SealingPolicy.Request(listener: listener, recipients: recipients, sender: sender, listID: listID)
    }

    @Test func firstMatchingRuleWins() throws {
        let policy = try Self.policy([
            Self.rule { $0.listID = "<Dev.Lists.Example.org>" },
            Self.rule { $0.recipientDomain = "example.com" },
            Self.rule { _ in },
        ])
        #expect(policy.match(Self.request(listID: "Developers <dev.lists.example.org>"))?.index == 0)
        #expect(policy.match(Self.request(listID: "dev.lists.example.org"))?.index == 0)
        #expect(policy.match(Self.request(listID: "<other.lists.example.org>"))?.index == 1)
        #expect(policy.match(Self.request(recipients: ["b@sub.example.com"]))?.index == 1)
        #expect(policy.match(Self.request(recipients: ["b@notexample.com"]))?.index == 2)
        #expect(try Self.policy([]).match(Self.request()) == nil)
    }

    @Test func everyConditionMustHold() throws {
        let policy = try Self.policy([
            Self.rule {
                $0.senderDomain = "lists.example.org"
                $0.recipientDomain = "example.com"
                $0.listener = HostPort(host: "127.0.0.1", port: 2525)
            }
        ])
        #expect(policy.match(Self.request()) != nil)
        #expect(policy.match(Self.request(sender: "<x@a.lists.example.org>")) != nil)
        #expect(policy.match(Self.request(sender: "x@example.org")) == nil)
        #expect(policy.match(Self.request(sender: "")) == nil)  // the null path has no domain
        #expect(policy.match(Self.request(recipients: ["a@example.net", "b@example.com"])) != nil)
        #expect(policy.match(Self.request(recipients: ["a@example.net"])) == nil)
        #expect(policy.match(Self.request(listener: HostPort(host: "127.0.0.1", port: 2526))) == nil)
        #expect(policy.match(Self.request(listener: HostPort(host: "10.0.0.1", port: 2525))) == nil)
        #expect(policy.match(Self.request(listener: nil)) == nil)
    }

    @Test func wildcardListenerMatchesAnyHostOnItsPort() throws {
        let policy = try Self.policy([Self.rule { $0.listener = HostPort(host: "0.0.0.0", port: 2526) }])
        #expect(policy.match(Self.request(listener: HostPort(host: "192.0.2.7", port: 2526))) != nil)
        #expect(policy.match(Self.request(listener: HostPort(host: "192.0.2.7", port: 2525))) == nil)
    }

    @Test func authservIDs() {
        #expect(MessageAuthenticator.isValidAuthservID("mx.example.net"))
        #expect(MessageAuthenticator.isValidAuthservID("example.net.1"))
        #expect(!MessageAuthenticator.isValidAuthservID(""))
        #expect(!MessageAuthenticator.isValidAuthservID("a b"))
        #expect(!MessageAuthenticator.isValidAuthservID("a;b"))
        #expect(!MessageAuthenticator.isValidAuthservID("a(b)"))
    }
}
