import DKIMCore
import Keys

/// The checks between a key record's text and a usable public key (RFC 6376 §6.1.2, RFC 8301), shared by the
/// DKIM verifier and ARC, so both refuse the same records for the same reasons.
public enum DKIMKeyCheck {
    /// Why a record gives no usable key; `record` is set when the text parsed (its flags still matter).
    public struct Failure: Error, Sendable {
        public var reason: String
        public var record: DKIMKeyRecord?
    }

    /// Parses the TXT records found at `name` (RFC 6376 §6.1.2 leaves the choice among several to the verifier:
    /// the first one that parses) and checks that the key may verify a signature made with `keyAlgorithm` and
    /// `digest` (`algorithmName` is the signature's `a=`, for messages). `recordCheck` runs after the record-level
    /// checks and before the key is decoded; it returns a reason to refuse, or nil. Keys come from `keyCache`
    /// when given (decoding an RSA key costs several verifications).
    public static func publicKey(
        records texts: [String],
        name: String,
        keyAlgorithm: KeyAlgorithm,
        digest: DigestAlgorithm = .sha256,
        algorithmName: String,
        minimumRSABits: Int,
        maximumRSABits: Int = .max,
        keyCache: PublicKeyCache? = nil,
        recordCheck: (DKIMKeyRecord) -> String? = { _ in nil }
    ) -> Result<(record: DKIMKeyRecord, key: PublicKey), Failure> {
        var parsed: DKIMKeyRecord?
        var firstError: DKIMCoreError?
        for text in texts {
            do {
                parsed = try DKIMKeyRecord(parsing: text)
                break
            } catch {
                firstError = firstError ?? error
            }
        }
        guard let record = parsed else {
            let why = firstError.map { "\($0)" } ?? "empty"
            return .failure(Failure(reason: "malformed key record at \(name): \(why)", record: nil))
        }
        func refuse(_ reason: String) -> Result<(record: DKIMKeyRecord, key: PublicKey), Failure> {
            .failure(Failure(reason: reason, record: record))
        }
        guard !record.publicKeyData.isEmpty else { return refuse("key revoked (empty p=) at \(name)") }
        guard record.keyType.lowercased() == keyAlgorithm.rawValue else {
            return refuse("key type k=\(record.keyType) does not match a=\(algorithmName)")
        }
        let hashName = digest.rawValue
        if let hashes = record.hashAlgorithms, !hashes.contains(where: { $0.lowercased() == hashName }) {
            return refuse("key record does not allow \(hashName) (h=\(hashes.joined(separator: ":")))")
        }
        if let services = record.serviceTypes, !services.contains(where: { $0 == "*" || $0.lowercased() == "email" }) {
            return refuse("key record is not for email (s=\(services.joined(separator: ":")))")
        }
        if let reason = recordCheck(record) { return refuse(reason) }
        let publicKey: PublicKey
        do {
            if let keyCache {
                publicKey = try keyCache.publicKey(record.publicKeyData, keyAlgorithm)
            } else {
                publicKey = try PublicKey(dkimKeyData: record.publicKeyData, algorithm: keyAlgorithm)
            }
        } catch {
            return refuse("unusable public key at \(name): \(error)")
        }
        if publicKey.algorithm == .rsa && publicKey.bits < minimumRSABits {
            return refuse("\(publicKey.bits)-bit RSA key is shorter than \(minimumRSABits) bits (RFC 8301)")
        }
        if publicKey.algorithm == .rsa && publicKey.bits > maximumRSABits {
            return refuse("\(publicKey.bits)-bit RSA key is longer than \(maximumRSABits) bits")
        }
        return .success((record, publicKey))
    }

    /// One record's text, for callers with a single TXT value (ARC).
    public static func publicKey(
        record text: String,
        name: String,
        algorithm: DKIMAlgorithm,
        minimumRSABits: Int,
        recordCheck: (DKIMKeyRecord) -> String? = { _ in nil }
    ) -> Result<(record: DKIMKeyRecord, key: PublicKey), Failure> {
        publicKey(
            records: [text], name: name, keyAlgorithm: algorithm.keyAlgorithm, algorithmName: algorithm.rawValue,
            minimumRSABits: minimumRSABits, recordCheck: recordCheck)
    }
}
