import Keys
import NIOCore

/// The signer agent's wire protocol: length-prefixed binary frames over a Unix stream socket (or socketpair).
///
/// Every frame is a 4-byte big-endian length, then that many bytes:
///
///     request:  version(1) op(1) id(4) body
///       op 1 sign:  algorithm(1: 1 rsa, 2 ed25519) keyLength(1) key id, digestLength(1) digest (SHA-256, 32)
///       op 2 keys:  (empty) — list the keys the agent holds
///     response: version(1) status(1: 0 ok, 1 error) id(4) body
///       sign ok:   the signature bytes
///       keys ok:   count(2) then per key: idLength(1) id algorithm(1) publicLength(2) DKIM public key data
///       error:     UTF-8 text
///
/// Requests carry an id chosen by the client and may be answered out of order (the agent signs on several threads).
/// Nothing secret crosses the socket: digests in, signatures and public keys out.
public enum SignerAgentProtocol {
    static let version: UInt8 = 1
    /// Far above any answer (a keys list of a few hundred RSA-4096 keys); anything larger is a broken peer.
    static let maximumFrame = 1 << 20

    enum Operation: UInt8 {
        case sign = 1
        case keys = 2
    }

    /// A decoded request.
    enum Request: Equatable {
        case sign(id: UInt32, keyID: String, algorithm: KeyAlgorithm, digest: [UInt8])
        case keys(id: UInt32)

        var id: UInt32 {
            switch self {
            case .sign(let id, _, _, _), .keys(let id): id
            }
        }
    }

    /// A decoded response: the body is interpreted by whoever knows the request.
    struct Response: Equatable {
        var id: UInt32
        var ok: Bool
        var body: [UInt8]
    }

    /// A key the agent holds, as the relay needs it: no private part.
    public struct KeyDescription: Sendable, Equatable {
        public var id: String
        public var algorithm: KeyAlgorithm
        /// RSA SubjectPublicKeyInfo DER, Ed25519 raw 32 bytes (what `p=` carries).
        public var publicKeyData: [UInt8]
        public init(id: String, algorithm: KeyAlgorithm, publicKeyData: [UInt8]) {
            self.id = id
            self.algorithm = algorithm
            self.publicKeyData = publicKeyData
        }
    }

    /// A malformed frame: the connection is closed, as nothing after it can be trusted.
    struct ProtocolError: Error, CustomStringConvertible {
        var description: String
    }

    static func code(_ algorithm: KeyAlgorithm) -> UInt8 { algorithm == .rsa ? 1 : 2 }

    static func algorithm(_ code: UInt8) -> KeyAlgorithm? {
        switch code {
        case 1: .rsa
        case 2: .ed25519
        default: nil
        }
    }

    // MARK: Encoding

    static func encode(_ request: Request, into buffer: inout ByteBuffer) {
        frame(into: &buffer) { body in
            body.writeInteger(version)
            switch request {
            case .sign(let id, let keyID, let algorithm, let digest):
                body.writeInteger(Operation.sign.rawValue)
                body.writeInteger(id)
                body.writeInteger(code(algorithm))
                let keyBytes = Array(keyID.utf8.prefix(255))
                body.writeInteger(UInt8(keyBytes.count))
                body.writeBytes(keyBytes)
                body.writeInteger(UInt8(min(digest.count, 255)))
                body.writeBytes(digest.prefix(255))
            case .keys(let id):
                body.writeInteger(Operation.keys.rawValue)
                body.writeInteger(id)
            }
        }
    }

    static func encode(_ response: Response, into buffer: inout ByteBuffer) {
        frame(into: &buffer) { body in
            body.writeInteger(version)
            body.writeInteger(response.ok ? UInt8(0) : 1)
            body.writeInteger(response.id)
            body.writeBytes(response.body)
        }
    }

    static func encode(_ keys: [KeyDescription]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt16(keys.count))
        for key in keys {
            let id = Array(key.id.utf8.prefix(255))
            buffer.writeInteger(UInt8(id.count))
            buffer.writeBytes(id)
            buffer.writeInteger(code(key.algorithm))
            buffer.writeInteger(UInt16(key.publicKeyData.count))
            buffer.writeBytes(key.publicKeyData)
        }
        return Array(buffer.readableBytesView)
    }

    private static func frame(into buffer: inout ByteBuffer, _ write: (inout ByteBuffer) -> Void) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let start = buffer.writerIndex
        write(&buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - start), at: lengthIndex)
    }

    // MARK: Decoding

    /// The body of the next complete frame, or nil until one has arrived.
    static func nextFrame(_ buffer: inout ByteBuffer) throws(ProtocolError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= maximumFrame else { throw ProtocolError(description: "a frame of \(length) bytes") }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }

    static func decodeRequest(_ frame: ByteBuffer) throws(ProtocolError) -> Request {
        var body = frame
        guard body.readInteger(as: UInt8.self) == version else { throw ProtocolError(description: "unknown version") }
        guard let op = body.readInteger(as: UInt8.self).flatMap(Operation.init(rawValue:)),
            let id = body.readInteger(as: UInt32.self)
        else { throw ProtocolError(description: "a request without a known operation") }
        switch op {
        case .keys:
            return .keys(id: id)
        case .sign:
            guard let algorithm = body.readInteger(as: UInt8.self).flatMap(algorithm(_:)),
                let keyLength = body.readInteger(as: UInt8.self),
                let keyID = body.readString(length: Int(keyLength)),
                let digestLength = body.readInteger(as: UInt8.self),
                let digest = body.readBytes(length: Int(digestLength)),
                body.readableBytes == 0
            else { throw ProtocolError(description: "a malformed sign request") }
            return .sign(id: id, keyID: keyID, algorithm: algorithm, digest: digest)
        }
    }

    static func decodeResponse(_ frame: ByteBuffer) throws(ProtocolError) -> Response {
        var body = frame
        guard body.readInteger(as: UInt8.self) == version, let status = body.readInteger(as: UInt8.self),
            let id = body.readInteger(as: UInt32.self)
        else { throw ProtocolError(description: "a malformed response") }
        return Response(id: id, ok: status == 0, body: body.readBytes(length: body.readableBytes) ?? [])
    }

    static func decodeKeys(_ bytes: [UInt8]) throws(ProtocolError) -> [KeyDescription] {
        var buffer = ByteBuffer(bytes: bytes)
        guard let count = buffer.readInteger(as: UInt16.self) else { throw ProtocolError(description: "empty key list") }
        var keys: [KeyDescription] = []
        for _ in 0..<count {
            guard let idLength = buffer.readInteger(as: UInt8.self), let id = buffer.readString(length: Int(idLength)),
                let algorithm = buffer.readInteger(as: UInt8.self).flatMap(algorithm(_:)),
                let publicLength = buffer.readInteger(as: UInt16.self),
                let publicKey = buffer.readBytes(length: Int(publicLength))
            else { throw ProtocolError(description: "a malformed key list") }
            keys.append(KeyDescription(id: id, algorithm: algorithm, publicKeyData: publicKey))
        }
        return keys
    }
}
