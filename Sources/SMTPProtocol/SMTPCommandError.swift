/// A command line the server cannot accept, with the reply it should give.
public struct SMTPCommandError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What to answer, e.g. 500 5.5.2 (unknown command) or 501 5.5.4 (bad arguments).
    public var reply: SMTPReply
    /// The client's byte stream can no longer be followed (a BDAT line whose size cannot be read: where its chunk
    /// ends is unknown, and reading the chunk as commands would let it inject some); the server should close after
    /// the reply.
    public var closesConnection: Bool

    public init(_ reply: SMTPReply, closesConnection: Bool = false) {
        self.reply = reply
        self.closesConnection = closesConnection
    }

    public var description: String { reply.description }

    static func unrecognized(_ text: String = "command not recognized") -> SMTPCommandError {
        SMTPCommandError(SMTPReply(code: 500, EnhancedStatusCode(5, 5, 2), text))
    }

    static func arguments(_ text: String) -> SMTPCommandError {
        SMTPCommandError(SMTPReply(code: 501, EnhancedStatusCode(5, 5, 4), text))
    }

    static func address(_ detail: EnhancedStatusCode, _ text: String) -> SMTPCommandError {
        SMTPCommandError(SMTPReply(code: 501, detail, text))
    }
}
