/// What an EHLO reply advertises (RFC 5321 §4.1.1.1 and the extensions' RFCs).
public struct SMTPCapabilities: Hashable, Sendable {
    public var pipelining = false
    public var chunking = false
    public var eightBitMIME = false
    public var smtpUTF8 = false
    public var startTLS = false
    public var enhancedStatusCodes = false
    public var binaryMIME = false
    public var dsn = false
    /// SIZE: nil when not advertised, 0 when advertised without a fixed limit.
    public var size: Int?
    public var auth: [String] = []
    public var xclient: [String]?
    public var xforward: [String]?
    /// Other keyword lines, as written.
    public var other: [String] = []

    public init() {}

    /// Reads an EHLO reply; the first line is the greeting and is skipped.
    public init(ehloReply: SMTPReply) {
        self.init()
        for line in ehloReply.lines.dropFirst() {
            let words = line.split(separator: " ")
            guard let keyword = words.first?.uppercased() else { continue }
            let arguments = words.dropFirst().map(String.init)
            switch keyword {
            case "PIPELINING": pipelining = true
            case "CHUNKING": chunking = true
            case "8BITMIME": eightBitMIME = true
            case "SMTPUTF8": smtpUTF8 = true
            case "STARTTLS": startTLS = true
            case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
            case "BINARYMIME": binaryMIME = true
            case "DSN": dsn = true
            case "SIZE": size = arguments.first.flatMap { Int($0) } ?? 0
            case "AUTH": auth = arguments.map { $0.uppercased() }
            case "XCLIENT": xclient = arguments.map { $0.uppercased() }
            case "XFORWARD": xforward = arguments.map { $0.uppercased() }
            default: other.append(line)
            }
        }
    }

    /// The EHLO reply advertising these capabilities.
    public func ehloReply(domain: String, greeting: String) -> SMTPReply {
        var lines = ["\(domain) \(greeting)"]
        if pipelining { lines.append("PIPELINING") }
        if let size { lines.append(size > 0 ? "SIZE \(size)" : "SIZE") }
        if startTLS { lines.append("STARTTLS") }
        if !auth.isEmpty { lines.append("AUTH " + auth.joined(separator: " ")) }
        if enhancedStatusCodes { lines.append("ENHANCEDSTATUSCODES") }
        if eightBitMIME { lines.append("8BITMIME") }
        if binaryMIME { lines.append("BINARYMIME") }
        if dsn { lines.append("DSN") }
        if smtpUTF8 { lines.append("SMTPUTF8") }
        if chunking { lines.append("CHUNKING") }
        if let xclient { lines.append((["XCLIENT"] + xclient).joined(separator: " ")) }
        if let xforward { lines.append((["XFORWARD"] + xforward).joined(separator: " ")) }
        lines += other
        return SMTPReply(code: 250, nil, lines)
    }

    /// What both sides support; SIZE is the smaller fixed limit.
    public func intersection(_ peer: SMTPCapabilities) -> SMTPCapabilities {
        var result = SMTPCapabilities()
        result.pipelining = pipelining && peer.pipelining
        result.chunking = chunking && peer.chunking
        result.eightBitMIME = eightBitMIME && peer.eightBitMIME
        result.smtpUTF8 = smtpUTF8 && peer.smtpUTF8
        result.startTLS = startTLS && peer.startTLS
        result.enhancedStatusCodes = enhancedStatusCodes && peer.enhancedStatusCodes
        result.binaryMIME = binaryMIME && peer.binaryMIME
        result.dsn = dsn && peer.dsn
        switch (size, peer.size) {
        case (let a?, let b?): result.size = a == 0 ? b : (b == 0 ? a : min(a, b))
        default: result.size = nil
        }
        result.auth = auth.filter(peer.auth.contains)
        return result
    }
}
