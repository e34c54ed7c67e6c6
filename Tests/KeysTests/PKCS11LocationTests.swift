import Testing

@testable import Keys

/// PKCS#11 key locations as the command line names them (RFC 7512 URIs), and the DER the PKCS#11 key builds its
/// RSA public key from. The token itself is exercised against SoftHSM2 in InteropTests (PKCS11Tests).
@Suite("PKCS#11 key locations and URIs")
struct PKCS11LocationTests {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"

    @Test func uriWithLabelIdAndPINFile() throws {
        let location = try PKCS11KeyLocation(
            uri: "pkcs11:token=signet%20test;object=dkim-rsa;id=%01%a2;type=private"
                + "?module-path=\(Self.module)&pin-source=file:/run/pin")
        #expect(location.module == Self.module)
        #expect(location.token == .label("signet test"))
        #expect(location.keyLabel == "dkim-rsa")
        #expect(location.keyID == [0x01, 0xA2])
        #expect(location.pin == .file("/run/pin"))
        #expect(location.description == "token 'signet test' key 'dkim-rsa' id 01a2 (module \(Self.module))")
    }

    @Test func uriWithSlotAndEnvironment() throws {
        let location = try PKCS11KeyLocation(
            uri: "pkcs11:slot-id=7;id=%02?module-path=\(Self.module)&pin-source=env:HSM_PIN")
        #expect(location.token == .slot(7))
        #expect(location.keyLabel == nil && location.keyID == [2])
        #expect(location.pin == .environment("HSM_PIN"))
        #expect(
            try PKCS11KeyLocation(uri: "pkcs11:token=t;object=k?module-path=/m.so&pin-source=file:///p").pin
                == .file("/p"))
        #expect(
            try PKCS11KeyLocation(uri: "pkcs11:token=t;object=k?module-path=/m.so&pin-source=/p").pin == .file("/p"))
    }

    @Test(arguments: [
        ("pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234", "pin-value"),
        ("pkcs11:token=t;object=k?pin-source=env:P", "module-path"),
        ("pkcs11:object=k?module-path=/m.so&pin-source=env:P", "token=LABEL or slot-id"),
        ("pkcs11:token=t;slot-id=1;object=k?module-path=/m.so&pin-source=env:P", "not both"),
        ("pkcs11:token=t?module-path=/m.so&pin-source=env:P", "label, its id"),
        ("pkcs11:token=t;object=k?module-path=m.so&pin-source=env:P", "absolute path"),
        ("pkcs11:token=t;object=k?module-path=/m.so", "pin-source"),
        ("pkcs11:token=t;object=k?module-path=/m.so&pin-source=https://x", "not file:PATH or env:NAME"),
        ("pkcs11:token=t;object=k;type=public?module-path=/m.so&pin-source=env:P", "type=private"),
        ("pkcs11:token=t;object=%zz?module-path=/m.so&pin-source=env:P", "%-escape"),
        ("pkcs11:token=t;object=k;serial=1?module-path=/m.so&pin-source=env:P", "serial"),
        ("pkcs11:token=t;token=u;object=k?module-path=/m.so&pin-source=env:P", "twice"),
    ])
    func badURIsSayWhy(uri: String, reason: String) {
        #expect {
            try PKCS11KeyLocation(uri: uri)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func hexIDs() {
        #expect(PKCS11KeyLocation.bytes(hex: "01") == [1])
        #expect(PKCS11KeyLocation.bytes(hex: "a1:B2") == [0xA1, 0xB2])
        #expect(PKCS11KeyLocation.bytes(hex: "abc") == nil)
        #expect(PKCS11KeyLocation.bytes(hex: "zz") == nil)
        #expect(PKCS11KeyLocation.bytes(hex: "") == nil)
        #expect(PKCS11KeyLocation.hex([0x00, 0xFF, 0x10]) == "00ff10")
    }

    /// The RSAPublicKey DER built from a token's modulus and exponent imports as the same key: the RFC 8463 test
    /// key's modulus and exponent, taken from its PKCS#1 form, round-trip to the identical SubjectPublicKeyInfo.
    @Test func rsaPublicKeyFromModulusAndExponent() throws {
        let pkcs1 = try PublicKeyTests.rfcPKCS1()
        // 30 81 89 | 02 81 81 00 <128 bytes of modulus> | 02 03 01 00 01
        try #require(pkcs1.count == 140 && pkcs1[3] == 0x02 && pkcs1[6] == 0x00)
        let modulus = Array(pkcs1[7..<135])
        let exponent = Array(pkcs1[137...])
        #expect(exponent == [1, 0, 1])
        // A token may hand the modulus with a leading zero byte; DER wants the minimal form either way.
        for given in [modulus, [0] + modulus] {
            let der = DER.rsaPublicKey(modulus: given, exponent: exponent)
            #expect(der == pkcs1)
            let key = try PublicKey(dkimKeyData: der, algorithm: .rsa)
            #expect(key.dkimKeyData == (try PublicKeyTests.rfcSPKI()))
        }
        #expect(DER.length(0x7F) == [0x7F])
        #expect(DER.length(0x80) == [0x81, 0x80])
        #expect(DER.length(0x1234) == [0x82, 0x12, 0x34])
        #expect(DER.integer([0x00, 0x00, 0x01]) == [0x02, 0x01, 0x01])
        #expect(DER.integer([]) == [0x02, 0x01, 0x00])
    }

    /// The DigestInfo prefix is the one RFC 8017 §9.2 note 1 lists for SHA-256.
    @Test func digestInfoPrefix() {
        let expected: [UInt8] = [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
            0x20,
        ]
        #expect(PKCS11Key.sha256DigestInfoPrefix == expected)
    }

    /// A module that is not there is named, with the system's reason, before anything else is tried.
    @Test func missingModuleIsNamed() {
        let location = PKCS11KeyLocation(
            module: "/nonexistent/libpkcs11.so", token: .label("t"), keyLabel: "k", keyID: nil, pin: .environment("P"))
        #expect {
            try PKCS11Key(location)
        } throws: { error in
            let text = "\(error)"
            return text.contains("cannot load PKCS#11 module /nonexistent/libpkcs11.so")
                && text.contains("No such file")
        }
    }
}
