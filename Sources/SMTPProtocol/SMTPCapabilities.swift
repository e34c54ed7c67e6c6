/// What an EHLO reply advertises (RFC 5321 §4.1.1.1 and the extensions' RFCs), parsed and written.
public struct SMTPCapabilities: Hashable, Sendable {
    public var pipelining = false
    public var chunking = false
    public var eightBitMIME = false
    public var smtpUTF8 = false
    public var startTLS = false
    public var enhancedStatusCodes = false
    public var binaryMIME = false
    public var dsn = false
    /// SIZE (RFC 1870): nil when not advertised, 0 when advertised without a fixed limit.
    public var size: Int?
    /// AUTH mechanisms, upper-cased; empty when AUTH is not advertised.
    public var auth: [String] = []
    /// XCLIENT attribute names, upper-cased; nil when not advertised.
    public var xclient: [String]?
    /// XFORWARD attribute names, upper-cased; nil when not advertised.
    public var xforward: [String]?
    /// Other keyword lines, as written.
    public var other: [String] = []

    public init() {}

    /// Reads an EHLO reply; its first line is the greeting and is skipped.
    public init(ehloReply: SMTPReply) {
        self.init()
        for line in ehloReply.lines.dropFirst() {
            let words = line.split(separator: " ")
            guard let keyword = words.first?.uppercased() else { continue }
            let arguments = words.dropFirst().map { $0.uppercased() }
            switch keyword {
            case "PIPELINING": pipelining = true
            case "CHUNKING": chunking = true
            case "8BITMIME": eightBitMIME = true
            case "SMTPUTF8": smtpUTF8 = true
            case "STARTTLS": startTLS = true
            case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
            case "BINARYMIME": binaryMIME = true
            case "DSN": dsn = true
            case "SIZE":
                // A limit too large for an Int is no practical limit.
                size = arguments.first.flatMap { Int($0) }.map { max(0, $0) } ?? 0
            case "AUTH": auth.append(contentsOf: arguments.filter { !auth.contains($0) })
            case "XCLIENT": xclient = arguments
            case "XFORWARD": xforward = arguments
            default: other.append(line)
            }
        }
    }

    /// The EHLO reply advertising these capabilities: "250-domain greeting", then one line per extension.
    public func ehloReply(domain: String, greeting: String) -> SMTPReply {
        var lines = [greeting.isEmpty ? domain : "\(domain) \(greeting)"]
        if pipelining { lines.append("PIPELINING") }
        if let size { lines.append(size > 0 ? "SIZE \(size)" : "SIZE") }
        if startTLS { lines.append("STARTTLS") }
        if !auth.isEmpty { lines.append((["AUTH"] + auth).joined(separator: " ")) }
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

    /// What both sides support; SIZE is the smaller fixed limit (0, no limit, yields to any number).
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
        if let mine = size, let theirs = peer.size {
            result.size = mine == 0 ? theirs : (theirs == 0 ? mine : min(mine, theirs))
        }
        result.auth = auth.filter(peer.auth.contains)
        if let mine = xclient, let theirs = peer.xclient { result.xclient = mine.filter(theirs.contains) }
        if let mine = xforward, let theirs = peer.xforward { result.xforward = mine.filter(theirs.contains) }
        let peerOther = Set(peer.other.map { $0.uppercased() })
        result.other = other.filter { peerOther.contains($0.uppercased()) }
        return result
    }
}
