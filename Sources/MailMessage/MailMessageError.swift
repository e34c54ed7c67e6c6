/// Why a message's header, an address or a line ending could not be accepted.
public struct MailMessageError: Error, Hashable, CustomStringConvertible {
    /// What went wrong, as a value that can grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A NUL byte, which RFC 5322 never allows and which C-based peers truncate at.
        public static let nulByte = Code("nulByte")
        /// A header line that neither starts a field (`Name:`) nor continues one (leading space or tab).
        public static let headerWithoutColon = Code("headerWithoutColon")
        /// A field name that is empty or holds bytes outside printable ASCII (or a space inside it).
        public static let invalidHeaderName = Code("invalidHeaderName")
        /// A folded continuation line before the first field.
        public static let continuationWithoutField = Code("continuationWithoutField")
        /// A header section above `MailMessageLimits.maxHeaderBytes`.
        public static let headerTooLarge = Code("headerTooLarge")
        /// More fields than `MailMessageLimits.maxHeaderFields` (or, for one field, more than one).
        public static let tooManyHeaderFields = Code("tooManyHeaderFields")
        /// Text that is not an RFC 5322 address, mailbox or address list.
        public static let invalidAddress = Code("invalidAddress")
        /// A message without a From field, so it has no author to sign for.
        public static let noFromHeader = Code("noFromHeader")
        /// Several From fields, or several mailboxes in one: a signer must not guess the author.
        public static let multipleFromHeaders = Code("multipleFromHeaders")
        /// A From field with no mailbox in it (empty, or only an empty group).
        public static let noAddressInFrom = Code("noAddressInFrom")
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }

    public static func == (lhs: MailMessageError, rhs: MailMessageError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

// Errors with an empty reason, so that tests and callers can match a code: `#expect(throws: MailMessageError.nulByte)`.
extension MailMessageError {
    public static let nulByte = MailMessageError(.nulByte, "")
    public static let headerWithoutColon = MailMessageError(.headerWithoutColon, "")
    public static let invalidHeaderName = MailMessageError(.invalidHeaderName, "")
    public static let continuationWithoutField = MailMessageError(.continuationWithoutField, "")
    public static let headerTooLarge = MailMessageError(.headerTooLarge, "")
    public static let tooManyHeaderFields = MailMessageError(.tooManyHeaderFields, "")
    public static let invalidAddress = MailMessageError(.invalidAddress, "")
    public static let noFromHeader = MailMessageError(.noFromHeader, "")
    public static let multipleFromHeaders = MailMessageError(.multipleFromHeaders, "")
    public static let noAddressInFrom = MailMessageError(.noAddressInFrom, "")
}
