import DKIM
import Keys
import Testing

@testable import Relay

/// Backends chosen per key, and the `pkcs11:` section of a key: what is accepted, and what is refused before any
/// token is opened. Opening real tokens is InteropTests' PKCS11Tests (SoftHSM2).
@Suite("PKCS#11 keys and per-key backends in the configuration")
struct PKCS11ConfigurationTests {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"

    static func load(_ keys: String, backend: String? = nil) throws -> RelayConfiguration {
        try ConfigurationLoader.load(
            yaml: """
                signing:
                  \(backend.map { "backend: \($0)" } ?? "")
                  keys:
                \(keys)
                  table: [{from: example.com, keys: [k]}]
                """)
    }

    @Test func pkcs11KeyIsRead() throws {
        let configuration = try Self.load(
            """
                k:
                  domain: example.com
                  selector: hsm1
                  backend: pkcs11
                  pkcs11: {module: \(Self.module), token_label: signet, key_label: dkim-rsa, key_id: "a1:02", pin_file: /run/pin}
            """)
        let entry = try #require(configuration.signing.keys["k"])
        #expect(entry.backend == .pkcs11 && entry.keyFile.isEmpty)
        #expect(configuration.signing.backend(of: entry) == .pkcs11)
        #expect(
            entry.pkcs11
                == PKCS11KeyLocation(
                    module: Self.module, token: .label("signet"), keyLabel: "dkim-rsa", keyID: [0xA1, 0x02],
                    pin: .file("/run/pin")))
        #expect(!configuration.signing.usesAgent)
        // /debug/config shows where the PIN comes from, never a PIN.
        let json = configuration.redactedJSON()
        #expect(json.contains("\"pin_file\" : \"/run/pin\"") && json.contains("\"key_id\" : \"a102\""), "\(json)")
    }

    @Test func defaultBackendAppliesToKeysWithoutOne() throws {
        let configuration = try Self.load(
            """
                k: {domain: example.com, selector: s, pkcs11: {module: \(Self.module), slot: 3, key_id: "01", pin_env: HSM_PIN}}
                a: {domain: example.com, selector: a, key_file: /k.pem, backend: agent}
                p: {domain: example.com, selector: p, key_file: /p.pem, backend: in-process}
            """, backend: "pkcs11")
        let signing = configuration.signing
        #expect(signing.keys["k"]?.pkcs11?.token == .slot(3))
        #expect(signing.keys["k"]?.pkcs11?.pin == .environment("HSM_PIN"))
        #expect(signing.keys["k"].map(signing.backend(of:)) == .pkcs11)
        #expect(signing.keys["a"].map(signing.backend(of:)) == .agent)
        #expect(signing.keys["p"].map(signing.backend(of:)) == .inProcess)
        #expect(signing.usesAgent)
    }

    @Test(arguments: [
        ("k: {domain: example.com, selector: s, backend: pkcs11}", "signing.keys.k.pkcs11: needed"),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, key_file: /k.pem, pkcs11: {module: \(module), token_label: t, key_label: l, pin_file: /p}}",
            "a pkcs11 key has no key file"
        ),
        (
            "k: {domain: example.com, selector: s, key_file: /k.pem, pkcs11: {module: /m.so}}",
            "used only with backend pkcs11"
        ),
        (
            "k: {domain: example.com, selector: s, backend: hsm, key_file: /k.pem}",
            "'hsm' is not in-process, agent or pkcs11"
        ),
        ("k: {domain: example.com, selector: s, backend: agent}", "key_file: needed with backend agent"),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {token_label: t, key_label: l, pin_file: /p}}",
            "module: the PKCS#11 module's path is needed"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: m.so, token_label: t, key_label: l, pin_file: /p}}",
            "absolute path"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, key_label: l, pin_file: /p}}",
            "token_label or slot is needed"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, slot: 1, key_label: l, pin_file: /p}}",
            "not both"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, slot: x, key_label: l, pin_file: /p}}",
            "'x' is not a slot number"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, pin_file: /p}}",
            "key_label or key_id is needed"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, key_id: xyz, pin_file: /p}}",
            "'xyz' is not hex"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, key_label: l}}",
            "pin_file or pin_env is needed"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, key_label: l, pin_env: SIGNET_PIN}}",
            "starts with SIGNET_"
        ),
        (
            "k: {domain: example.com, selector: s, backend: pkcs11, pkcs11: {module: /m.so, token_label: t, key_label: l, pin: 1234}}",
            "signing.keys.k.pkcs11.pin: unknown key"
        ),
    ])
    func badKeysAreRefused(entry: String, reason: String) {
        #expect {
            try Self.load("    " + entry)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    /// The table opens each key with its own backend; a token that cannot be opened names the key.
    @Test func signingTableOpensTokensPerKey() throws {
        var signing = RelayConfiguration.Signing()
        let location = PKCS11KeyLocation(
            module: Self.module, token: .label("t"), keyLabel: "k", keyID: nil, pin: .environment("HSM_PIN"))
        signing.keys["hsm"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "hsm", pkcs11: location)
        signing.keys["mem"] = RelayConfiguration.KeyEntry(domain: "example.com", selector: "mem", keyFile: "mem")
        signing.table = [RelayConfiguration.TableEntry(from: "example.com", keys: ["hsm", "mem"])]
        let token = try PrivateKey.generateEd25519()
        let memory = try PrivateKey.generateRSA(bits: 1024)
        var opened: [PKCS11KeyLocation] = []
        let table = try SigningTable(
            signing, loadKey: { _ in memory },
            openPKCS11: {
                opened.append($0); return token
            })
        #expect(opened == [location])
        let signers = table.signers(forFromDomain: "example.com")
        #expect(Set(signers.map(\.selector)) == ["hsm", "mem"])
        #expect(signers.first { $0.selector == "hsm" }?.algorithm == .ed25519SHA256)

        #expect {
            try SigningTable(
                signing, loadKey: { _ in memory },
                openPKCS11: { _ in
                    throw KeysError(.pkcs11LoginFailed, "token 't' refused the PIN (CKR_PIN_INCORRECT): wrong PIN")
                })
        } throws: { error in
            let text = "\(error)"
            return text.contains("signing.keys.hsm: cannot use PKCS#11 key token 't' key 'k'")
                && text.contains("wrong PIN")
        }
    }
}
