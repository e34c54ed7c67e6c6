/// Errors of the DKIM signing and verification layer.
public struct DKIMError: Error, Hashable, CustomStringConvertible {
    /// What went wrong, as a value that can grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidDomain = Code("invalidDomain")
        public static let invalidSelector = Code("invalidSelector")
        public static let invalidIdentity = Code("invalidIdentity")
        public static let algorithmKeyMismatch = Code("algorithmKeyMismatch")
        public static let malformedKeyFile = Code("malformedKeyFile")
        public static let signingFailed = Code("signingFailed")
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }

    public static func == (lhs: DKIMError, rhs: DKIMError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
