import NIOCore

/// A client command (RFC 5321 §4.1 and the extensions Signet speaks).
public enum SMTPCommand: Hashable, Sendable {
    /// The domain or address literal as sent.
    case ehlo(String)
    case helo(String)
    /// `from` is the address inside `<>` (source route removed), "" for the null reverse-path.
    case mail(from: String, parameters: [SMTPParameter])
    case rcpt(to: String, parameters: [SMTPParameter])
    case data
    /// RFC 3030: `size` octets of message follow the command line.
    case bdat(size: Int, last: Bool)
    case rset
    case noop
    case quit
    case starttls
    case vrfy(String)
    case expn(String)
    case help(String?)
    /// RFC 4954; the initial response is still base64 ("=" for an empty one).
    case auth(mechanism: String, initialResponse: String?)
    /// Postfix XCLIENT NAME=VALUE pairs, values still xtext-encoded.
    case xclient([SMTPParameter])
    /// Postfix XFORWARD NAME=VALUE pairs, values still xtext-encoded.
    case xforward([SMTPParameter])

    /// Appends the command line, CRLF included, as a client sends it: canonical upper-case verb.
    public func write(into buffer: inout ByteBuffer) {
        switch self {
        case .ehlo(let domain): Self.write("EHLO ", domain, into: &buffer)
        case .helo(let domain): Self.write("HELO ", domain, into: &buffer)
        case .mail(let from, let parameters): Self.write("MAIL FROM:<", from, ">", parameters, into: &buffer)
        case .rcpt(let to, let parameters): Self.write("RCPT TO:<", to, ">", parameters, into: &buffer)
        case .data: buffer.writeStaticString("DATA")
        case .bdat(let size, let last):
            buffer.writeStaticString("BDAT ")
            buffer.writeString(String(size))
            if last { buffer.writeStaticString(" LAST") }
        case .rset: buffer.writeStaticString("RSET")
        case .noop: buffer.writeStaticString("NOOP")
        case .quit: buffer.writeStaticString("QUIT")
        case .starttls: buffer.writeStaticString("STARTTLS")
        case .vrfy(let text): Self.write("VRFY ", text, into: &buffer)
        case .expn(let text): Self.write("EXPN ", text, into: &buffer)
        case .help(let topic):
            buffer.writeStaticString("HELP")
            if let topic { Self.write(" ", topic, into: &buffer) }
        case .auth(let mechanism, let initialResponse):
            Self.write("AUTH ", mechanism, into: &buffer)
            if let initialResponse { Self.write(" ", initialResponse, into: &buffer) }
        case .xclient(let parameters): Self.write("XCLIENT", "", "", parameters, into: &buffer)
        case .xforward(let parameters): Self.write("XFORWARD", "", "", parameters, into: &buffer)
        }
        buffer.writeStaticString("\r\n")
    }

    /// The command line in a new buffer.
    public func encoded() -> ByteBuffer {
        // Room for a typical MAIL or RCPT line at once: an empty buffer grows (and copies) two or three times.
        var buffer = ByteBufferAllocator().buffer(capacity: 128)
        write(into: &buffer)
        return buffer
    }

    private static func write(
        _ head: StaticString, _ argument: String, _ tail: StaticString = "", _ parameters: [SMTPParameter] = [],
        into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString(head)
        writeSafely(argument, into: &buffer)
        buffer.writeStaticString(tail)
        for parameter in parameters {
            buffer.writeInteger(UInt8.space)
            writeSafely(parameter.description, into: &buffer)
        }
    }

    /// Writes `text` without CR or LF: values come from a client, and a line break would smuggle in a command.
    private static func writeSafely(_ text: String, into buffer: inout ByteBuffer) {
        if text.utf8.contains(where: { $0 == .cr || $0 == .lf }) {
            buffer.writeBytes(text.utf8.filter { $0 != .cr && $0 != .lf })
        } else {
            buffer.writeString(text)
        }
    }
}
