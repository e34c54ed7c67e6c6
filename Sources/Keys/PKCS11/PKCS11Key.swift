import CPKCS11
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A private key held in a PKCS#11 token: this process asks the token to sign and never sees the key.
///
/// Opening it loads the module, finds the token, logs in with the PIN (read, used and zeroed; never kept or
/// logged), finds the private key by label and/or id and reads the public half from the token, then signs a test
/// digest and checks it, so a key that cannot sign is refused when the configuration is loaded, not at the first
/// message. One PKCS#11 session serves one signature at a time, so each signature takes an idle session of the
/// key's pool (or opens one), as `SigningContextPool` does for OpenSSL contexts.
public final class PKCS11Key: DigestSigningKey {
    /// A session and the private key's handle in it.
    private struct Session {
        let handle: CK_SESSION_HANDLE
        let key: CK_OBJECT_HANDLE
    }

    public let location: PKCS11KeyLocation
    public let algorithm: KeyAlgorithm
    /// RSA: the modulus size. Ed25519: 256.
    public let bits: Int
    public let publicKey: PublicKey
    private let module: PKCS11Module
    private let slot: CK_SLOT_ID
    /// Open for the key's whole life: a token logs the application out when its last session closes.
    private let loginSession: CK_SESSION_HANDLE
    private let idle = Mutex<[Session]>([])
    /// The private key's identity, to find it again in sessions opened later.
    private let searchTemplate: [(CK_ATTRIBUTE_TYPE, [UInt8])]

    /// Idle sessions kept for the signing threads; more are opened in bursts and closed afterwards.
    static let maximumIdleSessions = 16

    /// Opens the key; errors name what is missing or refused (module, token, PIN, key) and never contain the PIN.
    public init(_ location: PKCS11KeyLocation) throws {
        if let problem = location.problems.first { throw KeysError(.pkcs11Failed, "PKCS#11 key: \(problem)") }
        let module = try PKCS11Module.load(location.module)
        let slot = try module.slot(for: location.token)
        let session = try module.openSession(slot)
        // From here on the session is closed again if anything fails.
        do {
            try Self.login(module, session, location)
            var template: [(CK_ATTRIBUTE_TYPE, [UInt8])] = [(CKA_CLASS, Self.bytes(of: CKO_PRIVATE_KEY))]
            if let label = location.keyLabel { template.append((CKA_LABEL, Array(label.utf8))) }
            if let id = location.keyID { template.append((CKA_ID, id)) }
            let found = try Self.findObjects(module, session, template)
            let tokenText = Self.tokenText(location.token)
            guard found.count == 1, let key = found.first else {
                if found.isEmpty {
                    throw KeysError(
                        .pkcs11KeyNotFound,
                        "no private key \(location.keyDescription) on \(tokenText) (module \(module.path))")
                }
                throw KeysError(
                    .pkcs11KeyNotFound,
                    "\(found.count) private keys \(location.keyDescription) on \(tokenText): give the key's id as well")
            }
            let keyType = try Self.attribute(module, session, key, CKA_KEY_TYPE).map(Self.unsignedLong)
            let algorithm: KeyAlgorithm
            switch keyType {
            case CKK_RSA: algorithm = .rsa
            case CKK_EC_EDWARDS: algorithm = .ed25519
            default:
                throw KeysError(
                    .unsupportedKeyType,
                    "the private key \(location.keyDescription) on \(tokenText) is of PKCS#11 key type "
                        + "\(keyType.map { "0x" + String($0, radix: 16) } ?? "unknown"), which cannot sign DKIM: "
                        + "use an RSA or Ed25519 (CKK_EC_EDWARDS) key")
            }
            let publicKey = try Self.publicKey(module, session, privateKey: key, algorithm, location)
            if algorithm == .rsa {
                do {
                    try PrivateKey.checkRSASize(publicKey.bits)
                } catch let error as KeysError {
                    throw KeysError(
                        error.code, "the private key \(location.keyDescription) on \(tokenText): \(error.reason)")
                }
            }
            self.location = location
            self.algorithm = algorithm
            self.bits = publicKey.bits
            self.publicKey = publicKey
            self.module = module
            self.slot = slot
            self.loginSession = session
            self.searchTemplate = template
        } catch {
            module.closeSession(session)
            throw error
        }
        try selfTest()
    }

    deinit {
        for session in idle.withLock({ $0 }) { module.closeSession(session.handle) }
        module.closeSession(loginSession)
    }

    // MARK: Signing

    public func signature(forSHA256Digest digest: [UInt8]) throws -> [UInt8] {
        guard digest.count == KeyAlgorithm.sha256DigestBytes else {
            throw KeysError(
                .signingFailed, "a SHA-256 digest is \(KeyAlgorithm.sha256DigestBytes) bytes, got \(digest.count)")
        }
        switch algorithm {
        // The token pads; the DigestInfo around the digest is ours to write (RFC 8017 §9.2).
        case .rsa: return try sign(CKM_RSA_PKCS, Self.sha256DigestInfoPrefix + digest)
        // DKIM's Ed25519 signs the digest itself as the message (RFC 8463 §3).
        case .ed25519: return try sign(CKM_EDDSA, digest)
        }
    }

    /// A signature over `data` itself, hashed by the token: RSA with CKM_SHA256_RSA_PKCS, Ed25519 with CKM_EDDSA.
    public func signature(forData data: [UInt8]) throws -> [UInt8] {
        switch algorithm {
        case .rsa: try sign(CKM_SHA256_RSA_PKCS, data)
        case .ed25519: try sign(CKM_EDDSA, data)
        }
    }

    /// DER of DigestInfo { AlgorithmIdentifier sha256 NULL, OCTET STRING (32 bytes) } up to the digest.
    static let sha256DigestInfoPrefix: [UInt8] = [
        0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ]

    /// Sessions waiting for the next signature (for tests).
    var idleSessionCount: Int { idle.withLock { $0.count } }

    private func sign(_ mechanismType: CK_MECHANISM_TYPE, _ input: [UInt8]) throws -> [UInt8] {
        let session = try takeSession()
        let functions = module.functions.pointee
        var mechanism = CK_MECHANISM(mechanism: mechanismType, pParameter: nil, ulParameterLen: 0)
        var input = input
        let capacity = algorithm == .rsa ? (bits + 7) / 8 : 64
        var length = CK_ULONG(capacity)
        var signature = [UInt8](repeating: 0, count: capacity)
        do {
            try module.check(
                "C_SignInit",
                try module.call("C_SignInit", functions.C_SignInit) { $0(session.handle, &mechanism, session.key) })
            let signed = try module.call("C_Sign", functions.C_Sign) { sign in
                input.withUnsafeMutableBufferPointer { data in
                    signature.withUnsafeMutableBufferPointer { out in
                        sign(session.handle, data.baseAddress, CK_ULONG(data.count), out.baseAddress, &length)
                    }
                }
            }
            try module.check("C_Sign", signed)
        } catch {
            // The session may be broken (token removed, logged out): it is closed rather than reused.
            module.closeSession(session.handle)
            throw KeysError(.signingFailed, "the token could not sign with \(location): \(error)")
        }
        give(back: session)
        return Array(signature.prefix(Int(length)))
    }

    private func takeSession() throws -> Session {
        if let session = idle.withLock({ $0.popLast() }) { return session }
        let handle = try module.openSession(slot)
        // Logged in already (the login session keeps the token logged in); the key is found again here because
        // some tokens give object handles per session.
        do {
            guard let key = try Self.findObjects(module, handle, searchTemplate).first else {
                throw KeysError(.pkcs11KeyNotFound, "the private key \(location) is no longer on the token")
            }
            return Session(handle: handle, key: key)
        } catch {
            module.closeSession(handle)
            throw error
        }
    }

    private func give(back session: Session) {
        let kept = idle.withLock { sessions in
            guard sessions.count < Self.maximumIdleSessions else { return false }
            sessions.append(session)
            return true
        }
        if !kept { module.closeSession(session.handle) }
    }

    /// One signature, checked with the public key: the token can sign with this key and the mechanism, and the
    /// public key read from the token is the private key's.
    private func selfTest() throws {
        let digest = SHA256.hash(Array("Signet PKCS#11 self-test".utf8))
        let signature = try signature(forSHA256Digest: digest)
        guard publicKey.isValidSignature(signature, forSHA256Digest: digest) else {
            throw KeysError(
                .pkcs11KeyNotFound,
                "the public key on the token does not match the private key \(location.keyDescription) "
                    + "(a test signature does not verify)")
        }
    }

    // MARK: Opening

    private static func tokenText(_ token: PKCS11KeyLocation.Token) -> String {
        switch token {
        case .label(let label): "token '\(label)'"
        case .slot(let slot): "the token in slot \(slot)"
        }
    }

    /// C_Login as the user with the PIN from its source; the PIN's bytes are zeroed afterwards.
    private static func login(
        _ module: PKCS11Module, _ session: CK_SESSION_HANDLE, _ location: PKCS11KeyLocation
    )
        throws
    {
        let pin = try readPIN(location.pin)
        let result = try module.call("C_Login", module.functions.pointee.C_Login) { login in
            let bytes = pin.storage
            return login(
                session, CKU_USER, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), CK_ULONG(pinLength(pin)))
        }
        withExtendedLifetime(pin) {}
        switch result {
        // Another key of this process logged in to the same token first; login state is per token.
        case CKR_OK, CKR_USER_ALREADY_LOGGED_IN: return
        case CKR_PIN_INCORRECT, CKR_PIN_INVALID, CKR_PIN_LEN_RANGE:
            throw KeysError(
                .pkcs11LoginFailed,
                "\(tokenText(location.token)) refused the PIN from \(pinSourceText(location.pin)) "
                    + "(\(PKCS11.name(result))): wrong PIN")
        case CKR_PIN_LOCKED, CKR_PIN_EXPIRED:
            throw KeysError(
                .pkcs11LoginFailed,
                "\(tokenText(location.token)): the user PIN is \(result == CKR_PIN_LOCKED ? "locked" : "expired") (\(PKCS11.name(result)))"
            )
        default:
            throw module.failure("C_Login to \(tokenText(location.token))", result, .pkcs11LoginFailed)
        }
    }

    private static func pinSourceText(_ source: PKCS11KeyLocation.PINSource) -> String {
        switch source {
        case .file(let path): "PIN file \(path)"
        case .environment(let name): "environment variable \(name)"
        }
    }

    /// The PIN in memory that is zeroed when released.
    static func readPIN(_ source: PKCS11KeyLocation.PINSource) throws -> SecureBuffer {
        let pin: SecureBuffer
        switch source {
        case .file(let path):
            do {
                pin = try KeyFile.contents(of: path, requirePrivate: true, what: "PIN file")
            } catch let error as KeysError {
                throw KeysError(.pkcs11LoginFailed, error.reason)
            }
        case .environment(let name):
            guard let value = getenv(name) else {
                throw KeysError(.pkcs11LoginFailed, "the PIN environment variable \(name) is not set")
            }
            let count = strlen(value)
            pin = SecureBuffer(capacity: count)
            pin.spare.copyMemory(from: UnsafeRawBufferPointer(start: value, count: count))
            pin.didAppend(count)
        }
        guard pinLength(pin) > 0 else {
            throw KeysError(.pkcs11LoginFailed, "the PIN from \(pinSourceText(source)) is empty")
        }
        return pin
    }

    /// The PIN's length without one trailing newline (LF or CRLF), as `echo PIN > file` writes it.
    static func pinLength(_ pin: SecureBuffer) -> Int {
        var length = pin.count
        let bytes = pin.bytes
        if length > 0 && bytes[length - 1] == UInt8(ascii: "\n") { length -= 1 }
        if length > 0 && bytes[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        return length
    }

    /// The public key from the token: the public key object with the private key's id and label, or for RSA the
    /// private key object's own modulus and exponent when the token holds no public key object.
    private static func publicKey(
        _ module: PKCS11Module, _ session: CK_SESSION_HANDLE, privateKey: CK_OBJECT_HANDLE, _ algorithm: KeyAlgorithm,
        _ location: PKCS11KeyLocation
    ) throws -> PublicKey {
        var template: [(CK_ATTRIBUTE_TYPE, [UInt8])] = [(CKA_CLASS, bytes(of: CKO_PUBLIC_KEY))]
        if let id = try attribute(module, session, privateKey, CKA_ID), !id.isEmpty { template.append((CKA_ID, id)) }
        if let label = location.keyLabel { template.append((CKA_LABEL, Array(label.utf8))) }
        let publicObject = try findObjects(module, session, template).first
        switch algorithm {
        case .rsa:
            let holder = publicObject ?? privateKey
            guard let modulus = try attribute(module, session, holder, CKA_MODULUS),
                let exponent = try attribute(module, session, holder, CKA_PUBLIC_EXPONENT)
            else {
                throw KeysError(
                    .pkcs11KeyNotFound,
                    "the token shows no modulus and public exponent for the RSA key \(location.keyDescription)")
            }
            return try PublicKey(dkimKeyData: DER.rsaPublicKey(modulus: modulus, exponent: exponent), algorithm: .rsa)
        case .ed25519:
            guard let publicObject, let point = try attribute(module, session, publicObject, CKA_EC_POINT) else {
                throw KeysError(
                    .pkcs11KeyNotFound,
                    "no Ed25519 public key object (CKA_EC_POINT) with the id and label of the private key "
                        + "\(location.keyDescription): import the public key with the private one")
            }
            // An OCTET STRING holding the 32 bytes (PKCS#11 3.0), or the bare 32 bytes (some tokens).
            let raw = point.count == 34 && point[0] == 0x04 && point[1] == 0x20 ? Array(point.dropFirst(2)) : point
            return try PublicKey(dkimKeyData: raw, algorithm: .ed25519)
        }
    }

    /// The objects matching every attribute of `template` (at most a few: more than one is already an error).
    private static func findObjects(
        _ module: PKCS11Module, _ session: CK_SESSION_HANDLE, _ template: [(CK_ATTRIBUTE_TYPE, [UInt8])]
    ) throws -> [CK_OBJECT_HANDLE] {
        let functions = module.functions.pointee
        try withAttributes(template) { attributes, count in
            try module.check(
                "C_FindObjectsInit",
                try module.call("C_FindObjectsInit", functions.C_FindObjectsInit) { $0(session, attributes, count) })
        }
        defer { _ = functions.C_FindObjectsFinal?(session) }
        var handles = [CK_OBJECT_HANDLE](repeating: 0, count: 4)
        var found: CK_ULONG = 0
        try module.check(
            "C_FindObjects",
            try module.call("C_FindObjects", functions.C_FindObjects) {
                $0(session, &handles, CK_ULONG(handles.count), &found)
            })
        return Array(handles.prefix(Int(found)))
    }

    /// An attribute's value; nil when the object has no such attribute or will not show it.
    private static func attribute(
        _ module: PKCS11Module, _ session: CK_SESSION_HANDLE, _ object: CK_OBJECT_HANDLE, _ type: CK_ATTRIBUTE_TYPE
    ) throws -> [UInt8]? {
        let getAttributeValue = module.functions.pointee.C_GetAttributeValue
        var probe = CK_ATTRIBUTE(type: type, pValue: nil, ulValueLen: 0)
        let sized = try module.call("C_GetAttributeValue", getAttributeValue) { $0(session, object, &probe, 1) }
        if sized == CKR_ATTRIBUTE_TYPE_INVALID || sized == CKR_ATTRIBUTE_SENSITIVE { return nil }
        try module.check("C_GetAttributeValue", sized)
        // CK_UNAVAILABLE_INFORMATION
        guard probe.ulValueLen != CK_ULONG.max, probe.ulValueLen <= 1 << 16 else { return nil }
        var value = [UInt8](repeating: 0, count: Int(probe.ulValueLen))
        let read = try module.call("C_GetAttributeValue", getAttributeValue) { get in
            value.withUnsafeMutableBytes { buffer in
                var attribute = CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(buffer.count))
                let result = get(session, object, &attribute, 1)
                probe.ulValueLen = attribute.ulValueLen
                return result
            }
        }
        try module.check("C_GetAttributeValue", read)
        return Array(value.prefix(Int(probe.ulValueLen)))
    }

    /// Runs `body` with a CK_ATTRIBUTE array whose values point at copies of the given bytes.
    private static func withAttributes<Result>(
        _ template: [(CK_ATTRIBUTE_TYPE, [UInt8])],
        _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) throws -> Result
    ) throws -> Result {
        let values = template.map { type, bytes in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
            buffer.copyBytes(from: bytes)
            return (type, buffer, bytes.count)
        }
        defer { for (_, buffer, _) in values { buffer.deallocate() } }
        var attributes = values.map { type, buffer, count in
            CK_ATTRIBUTE(type: type, pValue: buffer.baseAddress, ulValueLen: CK_ULONG(count))
        }
        return try attributes.withUnsafeMutableBufferPointer { pointer in
            guard let base = pointer.baseAddress else { throw KeysError(.pkcs11Failed, "empty PKCS#11 template") }
            return try body(base, CK_ULONG(pointer.count))
        }
    }

    /// A CK_ULONG value as the token stores it (native byte order).
    private static func bytes(of value: CK_ULONG) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    private static func unsignedLong(_ bytes: [UInt8]) -> CK_ULONG {
        guard bytes.count == MemoryLayout<CK_ULONG>.size else { return CK_ULONG.max }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: CK_ULONG.self) }
    }
}

/// The little DER this file writes.
enum DER {
    /// PKCS#1 RSAPublicKey: SEQUENCE { INTEGER modulus, INTEGER publicExponent }, from big-endian magnitudes.
    static func rsaPublicKey(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        sequence(integer(modulus) + integer(exponent))
    }

    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var content = Array(magnitude.drop { $0 == 0 })
        // A set high bit would make the number negative.
        if content.isEmpty || content[0] & 0x80 != 0 { content.insert(0, at: 0) }
        return [0x02] + length(content.count) + content
    }

    static func sequence(_ content: [UInt8]) -> [UInt8] { [0x30] + length(content.count) + content }

    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }
}
