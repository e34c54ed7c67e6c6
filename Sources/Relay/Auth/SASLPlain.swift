import Foundation

/// The PLAIN SASL mechanism (RFC 4616): `authzid NUL authcid NUL passwd`, base64-encoded in SMTP (RFC 4954).
struct SASLPlain: Equatable {
    var user: String
    var password: [UInt8]

    enum Failure: Error, Equatable {
        /// Not base64, or not three NUL-separated fields.
        case malformed
        /// An authorization identity other than the user: acting for someone else is not offered.
        case otherAuthorizationIdentity
    }

    init(user: String, password: [UInt8]) {
        self.user = user
        self.password = password
    }

    /// Decodes a client response; `=` is the empty response (RFC 4954 §4).
    init(base64 text: String) throws(Failure) {
        let encoded = text == "=" ? "" : text
        guard let data = Data(base64Encoded: encoded) else { throw .malformed }
        let fields = data.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, !fields[1].isEmpty, !fields[2].contains(0) else { throw .malformed }
        guard let user = String(bytes: fields[1], encoding: .utf8),
            let authorization = String(bytes: fields[0], encoding: .utf8)
        else { throw .malformed }
        guard authorization.isEmpty || authorization == user else { throw .otherAuthorizationIdentity }
        self.user = user
        self.password = Array(fields[2])
    }
}
