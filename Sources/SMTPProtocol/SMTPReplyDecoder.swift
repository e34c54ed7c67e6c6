import NIOCore

/// A NIO decoder producing `SMTPReply` values, for the client side of a connection.
public struct SMTPReplyDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = SMTPReply

    private var parser: SMTPReplyParser

    public init(parser: SMTPReplyParser = SMTPReplyParser()) {
        self.parser = parser
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> SMTPReply? {
        try parser.parse(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> SMTPReply? {
        // A partial reply at EOF stays in the buffer; ByteToMessageHandler reports it as leftover data.
        try decode(buffer: &buffer)
    }
}
