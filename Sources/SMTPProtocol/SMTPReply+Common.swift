// Replies the session and the relay give often, with the codes RFC 5321 and RFC 3463 assign to them.

extension SMTPReply {
    /// 250 2.0.0 with the given text.
    public static func ok(
        _ enhancedCode: EnhancedStatusCode = EnhancedStatusCode(2, 0, 0), _ text: String = "Ok"
    ) -> SMTPReply {
        SMTPReply(code: 250, enhancedCode, text)
    }

    /// 421 4.3.2: the server is going away; the connection closes after it.
    public static func serviceNotAvailable(_ text: String) -> SMTPReply {
        SMTPReply(code: 421, EnhancedStatusCode(4, 3, 2), text)
    }

    /// 503 5.5.1: the command is valid but not now (RFC 5321 §4.3.2).
    public static func badSequence(_ text: String) -> SMTPReply {
        SMTPReply(code: 503, EnhancedStatusCode(5, 5, 1), text)
    }

    /// 502 5.5.1: the command exists but this server does not offer it.
    public static func notImplemented(_ text: String) -> SMTPReply {
        SMTPReply(code: 502, EnhancedStatusCode(5, 5, 1), text)
    }

    /// 500 5.5.6: a command line over the length limit (RFC 5321 §4.5.3.1.4, RFC 3463 X.5.6).
    public static let lineTooLong = SMTPReply(code: 500, EnhancedStatusCode(5, 5, 6), "line too long")

    /// 354: the answer to an accepted DATA.
    public static let startMailInput = SMTPReply(code: 354, nil, "End data with <CR><LF>.<CR><LF>")

    /// 221 2.0.0: the answer to QUIT.
    public static func closing(_ hostname: String) -> SMTPReply {
        SMTPReply(code: 221, EnhancedStatusCode(2, 0, 0), "\(hostname) closing connection")
    }
}
