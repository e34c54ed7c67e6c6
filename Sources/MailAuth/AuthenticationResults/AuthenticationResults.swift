import MailMessage
import NIOCore

/// One Authentication-Results header field (RFC 8601): who evaluated the message and what each method found.
///
/// Method, result, property type and property names are compared case-insensitively by the RFC, so they are kept in
/// lower case; values keep their case. An empty `results` list is the RFC's `none`.
public struct AuthenticationResults: Sendable, Hashable {
    /// The authentication service identifier (usually the host name of the verifier).
    public var authservID: String
    /// The optional `authres-version` after the authserv-id (only 1 is defined).
    public var version: Int?
    /// The results, in the order written; empty means `none`.
    public var results: [AuthenticationResult]

    public init(authservID: String, version: Int? = nil, results: [AuthenticationResult]) {
        self.authservID = authservID
        self.version = version
        self.results = results
    }

    /// The results of one method (such as "dkim"), in order.
    public func results(for method: String) -> [AuthenticationResult] {
        let lowered = method.lowercased()
        return results.filter { $0.method == lowered }
    }

    /// Whether `authservID` is `identifier`, ignoring ASCII case (authserv-ids are usually host names).
    public func isFrom(_ identifier: String) -> Bool {
        authservID.lowercased() == identifier.lowercased()
    }
}

/// One `method=result` entry (`resinfo`) of an Authentication-Results field.
public struct AuthenticationResult: Sendable, Hashable {
    /// The method, lower case: "dkim", "spf", "dmarc", "arc", "auth", "iprev", ...
    public var method: String
    /// The optional method version (`dkim/1`).
    public var methodVersion: Int?
    /// The result, lower case: "pass", "fail", "none", "temperror", ...
    public var result: String
    /// The `reason=` value, if any.
    public var reason: String?
    /// The comments written inside the entry, in order, without their parentheses (DMARC's `p=reject dis=none`).
    public var comments: [String]
    /// The `ptype.property=value` pairs, in order.
    public var properties: [AuthenticationProperty]

    public init(
        method: String, methodVersion: Int? = nil, result: String, reason: String? = nil, comments: [String] = [],
        properties: [AuthenticationProperty] = []
    ) {
        self.method = method.lowercased()
        self.methodVersion = methodVersion
        self.result = result.lowercased()
        self.reason = reason
        self.comments = comments
        self.properties = properties
    }

    /// The value of the first `ptype.property` pair (for example `header`, `d`), if present.
    public func property(_ type: String, _ name: String) -> String? {
        let type = type.lowercased()
        let name = name.lowercased()
        return properties.first { $0.type == type && $0.name == name }?.value
    }
}

/// A `ptype.property=value` pair such as `header.d=example.com` or `smtp.mailfrom=user@example.net`.
public struct AuthenticationProperty: Sendable, Hashable {
    /// The property type, lower case: "smtp", "header", "body", "policy".
    public var type: String
    /// The property name, lower case: "mailfrom", "d", "from", "iprev".
    public var name: String
    /// The value as written (quotes and escapes removed).
    public var value: String

    public init(_ type: String, _ name: String, _ value: String) {
        self.type = type.lowercased()
        self.name = name.lowercased()
        self.value = value
    }
}

/// Why an Authentication-Results value could not be parsed: what was expected and where (a byte offset into the
/// value).
public struct AuthenticationResultsParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    /// Byte offset into the parsed value where the problem was found.
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }

    public var description: String { "Authentication-Results: \(message) (at byte \(offset))" }
}

extension AuthenticationResults {
    /// The header field name, as written by `field`.
    public static let fieldName = "Authentication-Results"

    /// Parses a field value (everything after the colon; folding may be left in).
    public init(parsing value: some StringProtocol) throws(AuthenticationResultsParseError) {
        var parser = AuthenticationResultsParser(Array(value.utf8))
        self = try parser.parsePayload()
    }

    /// Parses a header field (`Authentication-Results: ...`).
    public init(field: HeaderField) throws(AuthenticationResultsParseError) {
        guard field.hasName("authentication-results") else {
            throw AuthenticationResultsParseError("the field is \(field.name), not Authentication-Results", offset: 0)
        }
        var parser = AuthenticationResultsParser(Array(field.rawValue.readableBytesView))
        self = try parser.parsePayload()
    }

    /// Parses an ARC-Authentication-Results value (RFC 8617 §4.1.1): `i=<instance>;` then an A-R payload.
    public static func parseARC(
        _ value: some StringProtocol
    ) throws(AuthenticationResultsParseError) -> (instance: Int, results: AuthenticationResults) {
        var parser = AuthenticationResultsParser(Array(value.utf8))
        let instance = try parser.parseInstanceTag()
        return (instance, try parser.parsePayload())
    }

    /// Every Authentication-Results field of `header` whose authserv-id is `authservID` (ignoring case), top to
    /// bottom. Fields that do not parse are skipped: RFC 8601 §2.5 treats them as absent, and their authserv-id
    /// cannot be trusted anyway.
    public static func fields(
        in header: MessageHeader, authservID: String
    ) -> [AuthenticationResults] {
        header.fields(named: "authentication-results").compactMap { field in
            guard let parsed = try? AuthenticationResults(field: field), parsed.isFrom(authservID) else {
                return nil
            }
            return parsed
        }
    }
}
