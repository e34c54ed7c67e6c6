/// Errors of key loading, generation, signing and public-key import.
public struct KeysError: Error, Hashable, CustomStringConvertible {
    /// What went wrong, as a value that can grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The key file could not be opened or read (the reason names the path and the system's error).
        public static let unreadableKeyFile = Code("unreadableKeyFile")
        /// The key file is not a regular file, or others may read or change it.
        public static let insecureKeyFile = Code("insecureKeyFile")
        /// The bytes are not an unencrypted PEM private key OpenSSL can decode.
        public static let malformedKey = Code("malformedKey")
        /// A key of a type DKIM cannot sign with (EC, DSA, RSA-PSS ...).
        public static let unsupportedKeyType = Code("unsupportedKeyType")
        /// An RSA key below 1024 bits (RFC 8301).
        public static let keyTooShort = Code("keyTooShort")
        /// An RSA key above 4096 bits.
        public static let keyTooLong = Code("keyTooLong")
        /// DKIM public key data (`p=`) that is not a key of the named algorithm.
        public static let invalidPublicKey = Code("invalidPublicKey")
        /// An Ed25519 seed that is not 32 bytes.
        public static let invalidSeed = Code("invalidSeed")
        /// OpenSSL refused to sign, or the digest was not 32 bytes.
        public static let signingFailed = Code("signingFailed")
        /// OpenSSL could not generate or export a key.
        public static let keyGenerationFailed = Code("keyGenerationFailed")
        /// The PKCS#11 module could not be loaded or initialised.
        public static let pkcs11ModuleUnavailable = Code("pkcs11ModuleUnavailable")
        /// No token with the configured label, or nothing in the configured slot.
        public static let pkcs11TokenNotFound = Code("pkcs11TokenNotFound")
        /// The PIN could not be read, or the token refused it.
        public static let pkcs11LoginFailed = Code("pkcs11LoginFailed")
        /// No private key (or no public key) with the configured label or id on the token, or several.
        public static let pkcs11KeyNotFound = Code("pkcs11KeyNotFound")
        /// Any other PKCS#11 failure (the reason names the function and the CKR_ code).
        public static let pkcs11Failed = Code("pkcs11Failed")
    }

    public let code: Code
    public let reason: String
    /// OpenSSL's own account of the failure, when an OpenSSL call failed.
    public let openSSLError: OpenSSLError?

    public init(_ code: Code, _ reason: String, openSSLError: OpenSSLError? = nil) {
        self.code = code
        self.reason = reason
        self.openSSLError = openSSLError
    }

    public var description: String {
        guard let openSSLError else { return "\(code): \(reason)" }
        return "\(code): \(reason) [\(openSSLError)]"
    }

    public static func == (lhs: KeysError, rhs: KeysError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
