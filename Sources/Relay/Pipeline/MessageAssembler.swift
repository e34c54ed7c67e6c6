import DKIM
import DKIMCore
import MailMessage
import NIOCore

/// Takes a message's content chunk by chunk as the client sends it: line endings normalized, header scanned,
/// body canonicalized and hashed on the way, bytes kept (or spooled) for sending. At the end only the header
/// hash and the key operations are left.
struct MessageAssembler {
    /// Why a message goes out unsigned.
    enum UnsignedReason: String, Sendable {
        case noFrom = "no_from"
        case multipleFrom = "multiple_from"
        case unparsableFrom = "unparsable_from"
        case unparsableHeader = "unparsable_header"
        case noKey = "no_key"
        case alreadySigned = "already_signed"
    }

    private let signingTable: SigningTable
    /// Starts verification (and picks a seal) when the header is complete; nil: nothing is verified.
    private let beginAuthentication: (@Sendable (MessageHeader) -> MessageAuthentication)?
    private var authentication: MessageAuthentication?
    private var normalizer = LineEndingNormalizer()
    private var splitter: MessageSplitter
    private var hashers: BodyHasherSet?
    private var header: MessageHeader?
    private var signers: [DKIMSigner] = []
    private var unsigned: UnsignedReason?
    private var detail = ""
    private(set) var content: MessageContent
    private(set) var fromDomain: String?
    /// Set when the header section passed the size or field-count limit: the message must be refused.
    private(set) var headerLimitExceeded: MailMessageError?
    /// The last two bytes taken, to complete a final line that lacks its CRLF.
    private var lastTwo: UInt16 = 0

    init(
        signingTable: SigningTable, spoolThreshold: Int, spoolDirectory: String, limits: MailMessageLimits = .default,
        beginAuthentication: (@Sendable (MessageHeader) -> MessageAuthentication)? = nil
    ) {
        self.signingTable = signingTable
        self.beginAuthentication = beginAuthentication
        self.splitter = MessageSplitter(limits: limits)
        self.content = MessageContent(spoolThreshold: spoolThreshold, spoolDirectory: spoolDirectory)
    }

    /// Bytes received so far (after normalization).
    var size: Int { content.count }

    /// One chunk of unstuffed message data. Throws `MailMessageError` for a NUL byte (the message must be
    /// refused), or a spool error.
    mutating func append(_ chunk: ByteBuffer) throws {
        let normalized = try normalizer.normalize(chunk)
        try take(normalized)
    }

    private mutating func take(_ chunk: ByteBuffer) throws {
        guard chunk.readableBytes > 0 else { return }
        try content.append(chunk)
        for byte in chunk.readableBytesView.suffix(2) { lastTwo = lastTwo << 8 | UInt16(byte) }
        if unsigned != nil && header == nil && hashers == nil {
            return  // the header failed to parse; the rest is only carried
        }
        do {
            switch try splitter.feed(chunk) {
            case .needMoreData:
                break
            case .header(let header, let bodyStart):
                headerComplete(header)
                hashers?.update(bodyStart)
            case .body(let body):
                hashers?.update(body)
            }
        } catch {
            if error.code == .headerTooLarge || error.code == .tooManyHeaderFields {
                headerLimitExceeded = error
            }
            markUnsigned(.unparsableHeader, "\(error)")
            hashers = nil
            authentication = nil
        }
    }

    private mutating func markUnsigned(_ reason: UnsignedReason, _ why: String) {
        unsigned = reason
        detail = why
        signers = []
    }

    /// Signing, verification and sealing share one pass over the body: every body hash any of them needs is
    /// in one `BodyHasherSet`, and the verification DNS lookups start now, overlapping the rest of the upload.
    private mutating func headerComplete(_ header: MessageHeader) {
        self.header = header
        authentication = beginAuthentication?(header)
        chooseSigners(header)
        let keys = signers.map(\.bodyHasherKey) + (authentication?.bodyHasherKeys ?? [])
        hashers = keys.isEmpty ? nil : BodyHasherSet(keys: keys)
    }

    private mutating func chooseSigners(_ header: MessageHeader) {
        let author: Mailbox
        do {
            author = try header.authorMailbox()
        } catch {
            switch error.code {
            case .noFromHeader: markUnsigned(.noFrom, "\(error)")
            case .multipleFromHeaders: markUnsigned(.multipleFrom, "\(error)")
            default: markUnsigned(.unparsableFrom, "\(error)")
            }
            return
        }
        fromDomain = author.domain
        var chosen = signingTable.signers(forFromDomain: author.domain)
        guard !chosen.isEmpty else {
            markUnsigned(.noKey, "no signing rule for \(author.domain)")
            return
        }
        // Never sign twice as the same d= and s= (a message looping back, or signed upstream by us already).
        let existing = Set(
            header.fields(named: "dkim-signature").compactMap { field -> SigningIdentity? in
                guard let tags = try? TagList(parsing: field.unfoldedValue), let d = tags["d"], let s = tags["s"] else {
                    return nil
                }
                return SigningIdentity(domain: d, selector: s)
            }
        )
        if !existing.isEmpty {
            chosen.removeAll { existing.contains(SigningIdentity(domain: $0.domain, selector: $0.selector)) }
        }
        guard !chosen.isEmpty else {
            markUnsigned(.alreadySigned, "already signed as every d=/s= of the rule")
            return
        }
        signers = chosen
    }

    /// The end of data: what to sign, or why not.
    mutating func finish(now: Int) throws -> AssembledMessage {
        if let tail = normalizer.finish() { try take(tail) }
        // BDAT can carry a message whose last line has no CRLF; SMTP DATA cannot, and verifiers disagree on
        // how to canonicalize one, so the line is completed before anything is hashed or sent.
        if content.count > 0 && lastTwo != 0x0D0A { try take(ByteBuffer(string: "\r\n")) }
        if header == nil && unsigned == nil {
            do {
                if let header = try splitter.finish() { headerComplete(header) }
            } catch {
                markUnsigned(.unparsableHeader, "\(error)")
            }
        }
        var prepared: [(DKIMSigner, PreparedSignature)] = []
        var bodyHashes: [BodyHasher.Key: BodyHasher.Result] = [:]
        if var hashers { bodyHashes = hashers.finalize() }
        if let header, unsigned == nil {
            let results = bodyHashes
            for signer in signers {
                guard let bodyHash = results[signer.bodyHasherKey] else { continue }
                prepared.append((signer, signer.prepare(header: header, bodyHash: bodyHash, now: now)))
            }
        }
        return AssembledMessage(
            content: content,
            signatures: prepared,
            unsignedReason: unsigned,
            unsignedDetail: detail,
            fromDomain: fromDomain,
            header: header,
            bodyHashes: bodyHashes,
            authentication: authentication
        )
    }
}

/// A received message ready for its key operations and sending. A class: it lives across the awaits of signing
/// and sending, and a value that size would sit in the session's async frame, whose task-stack slabs a
/// connection keeps until it closes; on the heap it is freed with the message.
final class AssembledMessage {
    let content: MessageContent
    /// Signatures waiting for their private-key operation, in the order they will be prepended.
    let signatures: [(signer: DKIMSigner, prepared: PreparedSignature)]
    let unsignedReason: MessageAssembler.UnsignedReason?
    let unsignedDetail: String
    let fromDomain: String?
    /// The header as received; nil when it did not parse.
    let header: MessageHeader?
    /// Every body hash computed (signing, verification, sealing).
    let bodyHashes: [BodyHasher.Key: BodyHasher.Result]
    /// Verification in flight, when the relay verifies.
    let authentication: MessageAuthentication?

    init(
        content: MessageContent, signatures: [(signer: DKIMSigner, prepared: PreparedSignature)],
        unsignedReason: MessageAssembler.UnsignedReason?, unsignedDetail: String, fromDomain: String?,
        header: MessageHeader?, bodyHashes: [BodyHasher.Key: BodyHasher.Result], authentication: MessageAuthentication?
    ) {
        self.content = content
        self.signatures = signatures
        self.unsignedReason = unsignedReason
        self.unsignedDetail = unsignedDetail
        self.fromDomain = fromDomain
        self.header = header
        self.bodyHashes = bodyHashes
        self.authentication = authentication
    }
}
