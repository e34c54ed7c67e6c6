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

    /// Parses `text` (the TXT record found at `name`) and checks that it may verify an `algorithm` signature.
    /// `recordCheck` runs after the record-level checks and before the key is decoded; it returns a reason to
    /// refuse, or nil.
    public static func publicKey(
        record text: String,
        name: String,
        algorithm: DKIMAlgorithm,
        minimumRSABits: Int,
        recordCheck: (DKIMKeyRecord) -> String? = { _ in nil }
    ) -> Result<(record: DKIMKeyRecord, key: PublicKey), Failure> {
        let record: DKIMKeyRecord
        do {
            record = try DKIMKeyRecord(parsing: text)
        } catch {
            return .failure(Failure(reason: "malformed key record at \(name): \(error)", record: nil))
        }
        func refuse(_ reason: String) -> Result<(record: DKIMKeyRecord, key: PublicKey), Failure> {
            .failure(Failure(reason: reason, record: record))
        }
        guard !record.publicKeyData.isEmpty else { return refuse("key revoked (empty p=) at \(name)") }
        guard record.keyType.lowercased() == algorithm.keyAlgorithm.rawValue else {
            return refuse("key type \(record.keyType) does not match a=\(algorithm.rawValue)")
        }
        if let hashes = record.hashAlgorithms, !hashes.contains(where: { $0.lowercased() == "sha256" }) {
            return refuse("key record does not allow sha256 (h=\(hashes.joined(separator: ":")))")
        }
        if let services = record.serviceTypes, !services.contains(where: { $0 == "*" || $0.lowercased() == "email" }) {
            return refuse("key record is not for email (s=\(services.joined(separator: ":")))")
        }
        if let reason = recordCheck(record) { return refuse(reason) }
        let publicKey: PublicKey
        do {
            publicKey = try PublicKey(dkimKeyData: record.publicKeyData, algorithm: algorithm.keyAlgorithm)
        } catch {
            return refuse("unusable public key at \(name): \(error)")
        }
        if publicKey.algorithm == .rsa && publicKey.bits < minimumRSABits {
            return refuse("\(publicKey.bits)-bit RSA key is shorter than \(minimumRSABits) bits (RFC 8301)")
        }
        return .success((record, publicKey))
    }
}
