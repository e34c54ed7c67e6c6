import Foundation
import MetricsTestKit
import SMTPProtocol
import Testing

@testable import Relay

@Suite("Relay metrics: configuration keys, classification, key expiry")
struct RelayMetricsTests {
    @Test func metricsListenDefaultsToLoopbackAndCanBeTurnedOff() throws {
        #expect(try ConfigurationLoader.load(yaml: nil).metricsListen == HostPort(host: "127.0.0.1", port: 9025))
        #expect(
            try ConfigurationLoader.load(yaml: "metrics_listen: 0.0.0.0:9100").metricsListen
                == HostPort(host: "0.0.0.0", port: 9100))
        #expect(try ConfigurationLoader.load(yaml: "metrics_listen: \"\"").metricsListen == nil)
        // Environment values are YAML like the file's, so an IPv6 literal is quoted as it would be there.
        let fromEnvironment = try ConfigurationLoader.load(
            yaml: "metrics_listen: 127.0.0.1:1", environment: ["SIGNET_METRICS_LISTEN": "'[::1]:9025'"])
        #expect(fromEnvironment.metricsListen == HostPort(host: "::1", port: 9025))
        #expect(
            try ConfigurationLoader.load(yaml: nil, environment: ["SIGNET_METRICS_LISTEN": ""]).metricsListen == nil)
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(yaml: "metrics_listen: nowhere") }
    }

    @Test func keyExpiryReadsDatesTimesAndUnixSeconds() throws {
        let yaml = """
            signing:
              keys:
                a: {domain: example.com, selector: a, key_file: /k/a.pem, expires: 2030-01-01}
                b: {domain: example.com, selector: b, key_file: /k/b.pem, expires: "2030-01-01T12:00:00Z"}
                c: {domain: example.com, selector: c, key_file: /k/c.pem, expires: 1893456000}
                d: {domain: example.com, selector: d, key_file: /k/d.pem}
              table: [{from: example.com, keys: [a]}]
            """
        let keys = try ConfigurationLoader.load(yaml: yaml).signing.keys
        #expect(keys["a"]?.expires == 1_893_456_000)
        #expect(keys["b"]?.expires == 1_893_456_000 + 12 * 3600)
        #expect(keys["c"]?.expires == 1_893_456_000)
        #expect(keys["d"]?.expires == nil)
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(
                yaml: "signing: {keys: {a: {domain: x.com, selector: a, key_file: /a, expires: soon}}}")
        }
    }

    @Test func debugConfigurationShowsPathsAndNothingElseOfKeys() throws {
        var configuration = try ConfigurationLoader.load(
            yaml:
                "signing: {keys: {a: {domain: example.com, selector: s1, key_file: /k/a.pem, expires: 2030-01-01}}, table: [{from: example.com, keys: [a]}]}"
        )
        configuration.nextHop = HostPort(host: "127.0.0.1", port: 10026)
        let json = configuration.redactedJSON()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["next_hop"] as? String == "127.0.0.1:10026")
        #expect(object["metrics_listen"] as? String == "127.0.0.1:9025")
        let signing = try #require(object["signing"] as? [String: Any])
        let key = try #require((signing["keys"] as? [String: Any])?["a"] as? [String: Any])
        #expect(Set(key.keys) == ["domain", "selector", "key_file", "expires", "backend"])
        #expect(key["key_file"] as? String == "/k/a.pem")
        #expect(key["backend"] as? String == "in-process")
    }

    @Test func retiredKeysLoseTheirExpiryGauge() throws {
        let recorder = TestMetrics()
        let metrics = RelayMetrics(factory: recorder)
        metrics.setKeyExpiries([("example.com", "old", 1_800_000_000), ("example.com", "new", 1_900_000_000)])
        #expect(
            try recorder.expectMeter(
                "signet_key_expiry_timestamp_seconds", [("domain", "example.com"), ("selector", "old")]
            ).values == [1_800_000_000])
        metrics.setKeyExpiries([("example.com", "new", 1_900_000_000)])
        #expect(recorder.meters(label: "signet_key_expiry_timestamp_seconds").map { $0.dimensions.last?.1 } == ["new"])
    }

    @Test func srsCountsFeedTheRewriteCounter() throws {
        let recorder = TestMetrics()
        let statistics = SRSStatistics(metrics: RelayMetrics(factory: recorder))
        statistics.sendersRewritten.increment()
        statistics.sendersRewritten.increment()
        statistics.recipientsForged.increment()
        #expect(statistics.sendersRewritten.count == 2)
        #expect(
            recorder.counterTotal(
                label: "signet_srs_rewrites_total", dimensions: [("direction", "forward"), ("result", "rewritten")])
                == 2)
        #expect(
            recorder.counterTotal(
                label: "signet_srs_rewrites_total", dimensions: [("direction", "reverse"), ("result", "forged")]) == 1)
    }

    @Test func repliesAreClassifiedByWhoMadeThem() throws {
        let recorder = TestMetrics()
        let metrics = RelayMetrics(factory: recorder)
        // The next hop's own refusals, by command and class.
        metrics.passedBack(
            SMTPReply(code: 550, EnhancedStatusCode(5, 1, 1), "no such user"), command: "rcpt", nextHopUsable: true)
        metrics.passedBack(SMTPReply(code: 452, nil, "later"), command: "rcpt", nextHopUsable: true)
        // A 4xx on a session that broke was made up by Signet: the connection was lost.
        metrics.passedBack(NextHopReplies.lost("MAIL"), command: "mail", nextHopUsable: false)
        metrics.passedBack(.ok(), command: "mail", nextHopUsable: true)
        #expect(
            recorder.counterTotal(
                label: "signet_next_hop_refused_total", dimensions: [("class", "5xx"), ("command", "rcpt")]) == 1)
        #expect(
            recorder.counterTotal(
                label: "signet_next_hop_refused_total", dimensions: [("class", "4xx"), ("command", "rcpt")]) == 1)
        #expect(
            recorder.counterTotal(
                label: "signet_next_hop_refused_total", dimensions: [("class", "4xx"), ("command", "mail")]) == 0)
        #expect(
            recorder.counterTotal(label: "signet_messages_tempfailed_total", dimensions: [("reason", "next_hop_lost")])
                == 1)
        // Signet's own refusals at end of data.
        metrics.refusedLocally(SMTPReply(code: 552, EnhancedStatusCode(5, 3, 4), "too large"))
        metrics.refusedLocally(SMTPReply(code: 554, EnhancedStatusCode(5, 6, 0), "NUL"))
        metrics.refusedLocally(SMTPReply(code: 451, EnhancedStatusCode(4, 3, 0), "spool"))
        #expect(
            recorder.counterTotal(label: "signet_messages_rejected_total", dimensions: [("reason", "too_large")]) == 1)
        #expect(
            recorder.counterTotal(label: "signet_messages_rejected_total", dimensions: [("reason", "malformed")]) == 1)
        #expect(
            recorder.counterTotal(label: "signet_messages_tempfailed_total", dimensions: [("reason", "local_error")])
                == 1)
        // Delivery: accepted, refused by the next hop, or lost on the way.
        #expect(
            metrics.delivered(.ok(), nextHopUsable: true, bytes: 100, nextHopDuration: .milliseconds(3)) == "relayed")
        #expect(
            metrics.delivered(SMTPReply(code: 554, nil, "no"), nextHopUsable: true, bytes: 100, nextHopDuration: nil)
                == "refused")
        #expect(
            metrics.delivered(NextHopReplies.lost("DATA"), nextHopUsable: false, bytes: 100, nextHopDuration: nil)
                == "tempfailed")
        #expect(recorder.counterTotal(label: "signet_messages_relayed_total") == 1)
        #expect(recorder.counterTotal(label: "signet_relayed_bytes_total") == 100)
        #expect(try recorder.expectTimer("signet_next_hop_reply_seconds").values == [3_000_000])
    }

    @Test func everyMetricFollowsTheNamingRules() {
        for description in RelayMetrics.descriptions {
            #expect(description.name.hasPrefix("signet_"), "\(description.name)")
            #expect(!description.help.isEmpty)
            if description.buckets != nil { #expect(description.name.hasSuffix("_seconds"), "\(description.name)") }
        }
        #expect(Set(RelayMetrics.descriptions.map(\.name)).count == RelayMetrics.descriptions.count)
    }
}
