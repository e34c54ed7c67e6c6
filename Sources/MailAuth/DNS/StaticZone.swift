/// DNS answers from a file instead of the network: for tests, air-gapped hosts and `--dns-file`.
///
/// One record per line: `name [ttl] [IN] TYPE data`, with TYPE one of
/// - `TXT`: quoted character-strings (concatenated, `\"`, `\\` and `\DDD` escapes) or the bare rest of the line;
///   parentheses may carry a record over several lines, as in a BIND zone file;
/// - `A`, `AAAA`: an address; `MX`: preference and host; `PTR`: a host;
/// - `CNAME`: an alias; questions the name has no records for follow it (a loop is a server failure);
/// - `TIMEOUT` or `SERVFAIL` (no data): every question about the name fails that way, so tests can show
///   `temperror`.
/// `#` and `;` start comments outside quotes at the start of a line or after white space (so a bare
/// `v=DKIM1; p=...` value stays whole). A name with records of other types answers NODATA; an unknown
/// name answers NXDOMAIN.
public struct StaticZone: DNSResolver, Sendable {
    /// What the zone holds for one name.
    public struct Entry: Sendable, Hashable {
        public var txt: [String] = []
        public var a: [IPAddress] = []
        public var aaaa: [IPAddress] = []
        public var mx: [MXRecord] = []
        public var ptr: [String] = []
        /// The name this one is an alias of.
        public var cname: String?
        /// When set, every question about the name throws this kind of failure.
        public var failure: DNSFailure.Kind?
        /// When set, only questions the name has no records for fail this way (the openspf suite's TIMEOUT
        /// beside records: a server that answers some types and times out on others).
        public var failureWhenEmpty: DNSFailure.Kind?

        public init() {}
    }

    /// A line of a zone file that cannot be read, with its number.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public private(set) var entries: [String: Entry]

    /// An empty zone; `add` fills it.
    public init() {
        entries = [:]
    }

    /// Reads a zone file's text.
    public init(parsing text: String) throws(ParseError) {
        entries = [:]
        var pending = ""
        var pendingLine = 0
        var depth = 0
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Self.stripComment(rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine)
            if depth == 0 { pendingLine = lineNumber }
            for character in line where character == "(" || character == ")" {
                depth += character == "(" ? 1 : -1
            }
            pending += (pending.isEmpty ? "" : " ") + line
            if depth < 0 { throw ParseError(line: lineNumber, message: "')' without '('") }
            if depth > 0 { continue }
            let record = pending.replacing("(", with: " ").replacing(")", with: " ")
            pending = ""
            if record.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            try addLine(record, lineNumber: pendingLine)
        }
        if depth > 0 { throw ParseError(line: pendingLine, message: "'(' is never closed") }
    }

    /// Adds one record to the zone, for tests that build a zone in code.
    public mutating func add(_ name: String, _ change: (inout Entry) -> Void) {
        change(&entries[DNSName.normalize(name), default: Entry()])
    }

    /// Adds a TXT record.
    public mutating func addTXT(_ name: String, _ value: String) {
        add(name) { $0.txt.append(value) }
    }

    public func txt(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> {
        try answer(name, \.txt)
    }

    public func a(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> {
        try answer(name, \.a)
    }

    public func aaaa(_ name: String) async throws(DNSFailure) -> DNSAnswer<IPAddress> {
        try answer(name, \.aaaa)
    }

    public func mx(_ name: String) async throws(DNSFailure) -> DNSAnswer<MXRecord> {
        try answer(name, \.mx)
    }

    public func ptr(_ name: String) async throws(DNSFailure) -> DNSAnswer<String> {
        try answer(name, \.ptr)
    }

    /// The synchronous form of `txt`, for callers that are not async (the zone never waits).
    public func txtNow(_ name: String) throws(DNSFailure) -> DNSAnswer<String> {
        try answer(name, \.txt)
    }

    private func answer<Record>(
        _ name: String, _ keyPath: KeyPath<Entry, [Record]>
    ) throws(DNSFailure) -> DNSAnswer<Record> {
        var normalized = DNSName.normalize(name)
        try DNSName.validate(normalized)
        var seen: Set<String> = []
        while true {
            guard let entry = entries[normalized] else { return .nameError }
            if let failure = entry.failure { throw DNSFailure(failure, name: normalized, detail: "static zone") }
            let records = entry[keyPath: keyPath]
            if !records.isEmpty { return .records(records) }
            if let failure = entry.failureWhenEmpty {
                throw DNSFailure(failure, name: normalized, detail: "static zone")
            }
            guard let alias = entry.cname else { return .noData }
            seen.insert(normalized)
            normalized = alias
            if seen.contains(alias) || seen.count > 8 {
                throw DNSFailure(.serverFailure, name: name, detail: "CNAME loop in the static zone")
            }
        }
    }

    private mutating func addLine(_ line: String, lineNumber: Int) throws(ParseError) {
        var rest = Substring(line)
        func nextWord() -> Substring? {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard !rest.isEmpty else { return nil }
            let word = rest.prefix { $0 != " " && $0 != "\t" }
            rest = rest.dropFirst(word.count)
            return word
        }
        guard let name = nextWord() else { return }
        var word = nextWord()
        if let ttl = word, ttl.allSatisfy(\.isNumber) { word = nextWord() }
        if let klass = word, klass.uppercased() == "IN" { word = nextWord() }
        guard let type = word?.uppercased() else {
            throw ParseError(line: lineNumber, message: "'\(name)' has no record type")
        }
        let data = String(rest.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
        func fail(_ message: String) -> ParseError { ParseError(line: lineNumber, message: message) }
        switch type {
        case "TXT", "SPF":
            guard !data.isEmpty else { throw fail("TXT record of '\(name)' has no value") }
            let value = data.hasPrefix("\"") ? try Self.joinQuoted(data, lineNumber: lineNumber) : data
            addTXT(String(name), value)
        case "A", "AAAA":
            guard let address = IPAddress(data), (address.bitWidth == 32) == (type == "A") else {
                throw fail("'\(data)' is not an \(type == "A" ? "IPv4" : "IPv6") address")
            }
            add(String(name)) { entry in
                if type == "A" { entry.a.append(address) } else { entry.aaaa.append(address) }
            }
        case "MX":
            let parts = data.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 2, let preference = UInt16(parts[0]) else {
                throw fail("MX record of '\(name)' needs a preference and a host")
            }
            add(String(name)) { $0.mx.append(MXRecord(preference: preference, exchange: String(parts[1]))) }
        case "PTR":
            guard !data.isEmpty else { throw fail("PTR record of '\(name)' has no host") }
            add(String(name)) { $0.ptr.append(DNSName.normalize(data)) }
        case "CNAME":
            guard !data.isEmpty else { throw fail("CNAME record of '\(name)' has no target") }
            add(String(name)) { $0.cname = DNSName.normalize(data) }
        case "TIMEOUT":
            add(String(name)) { $0.failure = .timeout }
        case "SERVFAIL":
            add(String(name)) { $0.failure = .serverFailure }
        default:
            throw fail("unknown record type '\(type)'")
        }
    }

    /// Drops a `#` or `;` comment that is not inside quotes and starts the line or follows white space.
    private static func stripComment(_ line: Substring) -> String {
        var quoted = false
        var escaped = false
        var end = line.endIndex
        for index in line.indices {
            let character = line[index]
            if escaped {
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                quoted.toggle()
            } else if !quoted && (character == "#" || character == ";")
                && (index == line.startIndex || line[line.index(before: index)] == " "
                    || line[line.index(before: index)] == "\t")
            {
                end = index
                break
            }
        }
        return String(line[..<end])
    }

    /// `"a" "b"` → `ab`, with zone-file escapes.
    private static func joinQuoted(_ text: String, lineNumber: Int) throws(ParseError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        var quoted = false
        while let byte = iterator.next() {
            if !quoted {
                if byte == UInt8(ascii: "\"") {
                    quoted = true
                } else if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") {
                    throw ParseError(line: lineNumber, message: "text outside quotes in a quoted TXT record")
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                quoted = false
            case UInt8(ascii: "\\"):
                guard let next = iterator.next() else {
                    throw ParseError(line: lineNumber, message: "TXT record ends in a backslash")
                }
                if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next) {
                    guard let second = iterator.next(), let third = iterator.next(),
                        let value = UInt8(String(decoding: [next, second, third], as: UTF8.self))
                    else { throw ParseError(line: lineNumber, message: "bad \\DDD escape in a TXT record") }
                    bytes.append(value)
                } else {
                    bytes.append(next)
                }
            default:
                bytes.append(byte)
            }
        }
        if quoted { throw ParseError(line: lineNumber, message: "unterminated quote in a TXT record") }
        return String(decoding: bytes, as: UTF8.self)
    }
}
