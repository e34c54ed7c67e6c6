/// A tag list, signature or key record that does not follow RFC 6376.
public struct DKIMCoreError: Error, Hashable, CustomStringConvertible {
    /// What kind of problem.
    public enum Code: String, Sendable, Hashable {
        case malformedTagList
        case duplicateTag
        case missingTag
        case invalidTagValue
        case unsupportedVersion
        case malformedKeyRecord
    }

    /// What kind of problem.
    public let code: Code
    /// The tag concerned, if any.
    public let tag: String?
    /// A sentence for logs and error replies.
    public let message: String

    /// An error with its explanation.
    public init(_ code: Code, tag: String? = nil, _ message: String) {
        self.code = code
        self.tag = tag
        self.message = message
    }

    public var description: String { message }
}
