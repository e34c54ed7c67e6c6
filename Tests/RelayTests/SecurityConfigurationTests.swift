import Foundation
import Testing

@testable import Relay

@Suite("Configuration: tls, next_hop_tls, auth")
struct SecurityConfigurationTests {
    @Test func readsTLSAndAuth() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: """
                tls:
                  certificate_chain: /etc/signet/chain.pem
                  private_key: /etc/signet/key.pem
                  minimum_version: "1.3"
                  require: true
                next_hop_tls: {mode: required, ca_file: /etc/ssl/ca.pem, server_name: mx.example.com}
                auth: {password_file: /etc/signet/passwd, required: yes}
                """)
        let tls = try #require(configuration.tls)
        #expect(tls.certificateChain == "/etc/signet/chain.pem")
        #expect(tls.privateKey == "/etc/signet/key.pem")
        #expect(tls.minimumVersion == .tls13)
        #expect(tls.require)
        #expect(configuration.nextHopTLS.mode == .required)
        #expect(configuration.nextHopTLS.caFile == "/etc/ssl/ca.pem")
        #expect(configuration.nextHopTLS.serverName == "mx.example.com")
        #expect(configuration.nextHopTLS.verify == nil)
        #expect(configuration.nextHopTLS.effectiveVerify, "required verifies unless told otherwise")
        #expect(
            configuration.auth
                == {
                    var auth = RelayConfiguration.Auth(passwordFile: "/etc/signet/passwd")
                    auth.required = true
                    return auth
                }())
    }

    @Test func defaults() throws {
        let configuration = try ConfigurationLoader.load(yaml: nil)
        #expect(configuration.tls == nil)
        #expect(configuration.auth == nil)
        #expect(configuration.nextHopTLS.mode == .opportunistic)
        #expect(!configuration.nextHopTLS.effectiveVerify, "opportunistic does not verify, like Postfix's may")
        let tls = try #require(
            try ConfigurationLoader.load(yaml: "tls: {certificate_chain: c.pem, private_key: k.pem}").tls)
        #expect(tls.minimumVersion == .tls12)
        #expect(!tls.require)
    }

    @Test func environmentOverridesEveryKey() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: "auth: {password_file: /a, allow_plaintext: true}",
            environment: [
                "SIGNET_TLS_CERTIFICATE_CHAIN": "/env/chain.pem", "SIGNET_TLS_PRIVATE_KEY": "/env/key.pem",
                "SIGNET_TLS_MINIMUM_VERSION": "TLSv1.2", "SIGNET_TLS_REQUIRE": "true",
                "SIGNET_NEXT_HOP_TLS_MODE": "none", "SIGNET_NEXT_HOP_TLS_VERIFY": "false",
                "SIGNET_NEXT_HOP_TLS_CA_FILE": "/env/ca.pem", "SIGNET_NEXT_HOP_TLS_SERVER_NAME": "mx",
                "SIGNET_AUTH_PASSWORD_FILE": "/env/passwd", "SIGNET_AUTH_REQUIRED": "on",
                "SIGNET_AUTH_ALLOW_PLAINTEXT": "false",
            ])
        #expect(configuration.tls?.certificateChain == "/env/chain.pem")
        #expect(configuration.tls?.privateKey == "/env/key.pem")
        #expect(configuration.tls?.minimumVersion == .tls12)
        #expect(configuration.tls?.require == true)
        #expect(configuration.nextHopTLS.mode == RelayConfiguration.NextHopTLSMode.none)
        #expect(configuration.nextHopTLS.verify == false)
        #expect(configuration.nextHopTLS.caFile == "/env/ca.pem")
        #expect(configuration.nextHopTLS.serverName == "mx")
        #expect(configuration.auth?.passwordFile == "/env/passwd")
        #expect(configuration.auth?.required == true)
        #expect(configuration.auth?.allowPlaintext == false)
    }

    @Test(arguments: [
        ("tls: {certificate_chain: c.pem}", "tls: certificate_chain and private_key are both needed"),
        ("tls: {certificate_chain: c.pem, private_key: k.pem, minimum_version: '1.1'}", "tls.minimum_version"),
        ("tls: {certificate_chain: c.pem, private_key: k.pem, requires: true}", "tls.requires: unknown key"),
        ("next_hop_tls: {mode: always}", "next_hop_tls.mode: 'always'"),
        ("next_hop_tls: {mode: none, verify: true}", "next_hop_tls.verify"),
        ("auth: {required: true}", "auth: password_file is needed"),
        ("auth: {password_file: /p}", "auth: AUTH is offered only after STARTTLS"),
        ("auth: {password_file: /p, allow_plaintext: maybe}", "auth.allow_plaintext: expected true or false"),
    ])
    func refusesMistakes(yaml: String, problem: String) {
        do {
            _ = try ConfigurationLoader.load(yaml: yaml)
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.problems.contains { $0.hasPrefix(problem) }, "\(error.problems)")
        }
    }

    @Test func unknownEnvironmentKeyIsAnError() {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(yaml: nil, environment: ["SIGNET_TLS_CERT": "/x"])
        }
    }

    @Test func unreadableCertificateIsNamed() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: "tls: {certificate_chain: /nonexistent/chain.pem, private_key: /nonexistent/key.pem}")
        do {
            _ = try configuration.checkSecurityFiles()
            Issue.record("a missing certificate was accepted")
        } catch {
            #expect(
                error.problems.first?.hasPrefix("tls.certificate_chain: cannot read /nonexistent/chain.pem") == true)
        }
    }

    /// A certificate and key made by openssl load into a server context; a key of another certificate does not.
    @Test func loadsAnOpenSSLCertificate() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("signet-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["a", "b"] {
            let status = try run(
                "/usr/bin/openssl",
                [
                    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", dir.path + "/\(name).key", "-out", dir.path + "/\(name).pem",
                ])
            try #require(status == 0)
        }
        var tls = RelayConfiguration.TLS(certificateChain: dir.path + "/a.pem", privateKey: dir.path + "/a.key")
        _ = try TLSContexts.server(tls)
        tls.privateKey = dir.path + "/b.key"
        #expect(throws: ConfigurationError.self) { try TLSContexts.server(tls) }
        var client = RelayConfiguration.NextHopTLS()
        client.caFile = dir.path + "/a.pem"
        #expect(try TLSContexts.client(client) != nil)
        client.mode = .none
        #expect(try TLSContexts.client(client) == nil)
    }
}

/// Runs a program with its output discarded; its exit status.
func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return process.terminationStatus
}

/// Runs a program; its standard output.
func output(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
