/// Where a PKCS#11 private key is and how to log in to its token: what the configuration's `pkcs11:` section and a
/// `pkcs11:` URI (RFC 7512) describe.
public struct PKCS11KeyLocation: Sendable, Equatable, CustomStringConvertible {
    /// How the token is chosen.
    public enum Token: Sendable, Equatable {
        /// The token whose CKA label (CK_TOKEN_INFO.label) is this, in whichever slot it sits.
        case label(String)
        /// The token in this slot.
        case slot(UInt)
    }

    /// Where the user PIN comes from. Never the PIN itself: a PIN written into a configuration file or a command
    /// line ends up in backups, `ps` output and logs.
    public enum PINSource: Sendable, Equatable {
        /// A file holding the PIN (one trailing newline is ignored); it must not be readable by everyone.
        case file(String)
        /// An environment variable holding the PIN.
        case environment(String)
    }

    /// Absolute path of the PKCS#11 module (the shared library), e.g. /usr/lib/softhsm/libsofthsm2.so.
    public var module: String
    public var token: Token
    /// CKA_LABEL of the private key; nil: chosen by `keyID` alone.
    public var keyLabel: String?
    /// CKA_ID of the private key; nil: chosen by `keyLabel` alone.
    public var keyID: [UInt8]?
    public var pin: PINSource

    public init(module: String, token: Token, keyLabel: String?, keyID: [UInt8]?, pin: PINSource) {
        self.module = module
        self.token = token
        self.keyLabel = keyLabel
        self.keyID = keyID
        self.pin = pin
    }

    /// What is wrong with the location, one sentence each; empty when it can be tried.
    public var problems: [String] {
        var problems: [String] = []
        if !module.hasPrefix("/") {
            problems.append(
                "the module must be an absolute path (dlopen would search the library path), not '\(module)'")
        }
        if keyLabel == nil && keyID == nil { problems.append("give the key's label, its id, or both") }
        if keyLabel?.isEmpty == true { problems.append("the key label is empty") }
        if keyID?.isEmpty == true { problems.append("the key id is empty") }
        if case .label(let label) = token, label.isEmpty { problems.append("the token label is empty") }
        switch pin {
        case .file(let path) where path.isEmpty: problems.append("the PIN file path is empty")
        case .environment(let name) where name.isEmpty: problems.append("the PIN environment variable name is empty")
        default: break
        }
        return problems
    }

    /// "token 'signet' key 'dkim-rsa' id 01 (module /usr/lib/softhsm/libsofthsm2.so)", for messages. Never the PIN.
    public var description: String {
        var parts: [String] = []
        switch token {
        case .label(let label): parts.append("token '\(label)'")
        case .slot(let slot): parts.append("slot \(slot)")
        }
        if let keyLabel { parts.append("key '\(keyLabel)'") }
        if let keyID { parts.append("id \(Self.hex(keyID))") }
        return parts.joined(separator: " ") + " (module \(module))"
    }

    /// The key description without the module, for messages that already name it.
    var keyDescription: String {
        [keyLabel.map { "labelled '\($0)'" }, keyID.map { "with id \(Self.hex($0))" }].compactMap { $0 }
            .joined(separator: " and ")
    }

    /// Lowercase hex, as pkcs11-tool and softhsm2-util print ids.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Bytes from hex text ("01", "a1b2", with optional ':' separators as in "a1:b2"); nil when it is not hex.
    public static func bytes(hex text: String) -> [UInt8]? {
        let digits = text.utf8.filter { $0 != UInt8(ascii: ":") }
        guard !digits.isEmpty, digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var high: UInt8?
        for digit in digits {
            guard let value = Self.hexValue(digit) else { return nil }
            if let pending = high {
                bytes.append(pending << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

// MARK: - RFC 7512 URIs

extension PKCS11KeyLocation {
    /// Whether `text` is meant as a PKCS#11 URI rather than a file path.
    public static func isURI(_ text: String) -> Bool { text.hasPrefix("pkcs11:") }

    /// Parses a PKCS#11 URI (RFC 7512) naming a private key:
    /// `pkcs11:token=signet;object=dkim-rsa;id=%01?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin`.
    /// Path attributes: `token` or `slot-id`, `object` (CKA_LABEL), `id` (CKA_ID), `type` (only `private`). Query
    /// attributes: `module-path` (needed), `pin-source` (`file:PATH`, a bare absolute path, or Signet's `env:NAME`).
    /// `pin-value` is refused: a PIN on a command line is visible to every user of the machine.
    public init(uri: String) throws {
        guard Self.isURI(uri) else { throw Self.uriError("it does not start with pkcs11:") }
        let rest = uri.dropFirst("pkcs11:".count)
        let question = rest.firstIndex(of: "?")
        let path = question.map { rest[..<$0] } ?? rest
        let query = question.map { rest[rest.index(after: $0)...] } ?? ""
        var attributes: [String: [UInt8]] = [:]
        for (separator, part) in [(Character(";"), path), (Character("&"), query)] {
            for item in part.split(separator: separator) where !item.isEmpty {
                guard let equals = item.firstIndex(of: "=") else { throw Self.uriError("'\(item)' is not name=value") }
                let name = String(item[..<equals]).lowercased()
                guard let value = Self.percentDecoded(item[item.index(after: equals)...]) else {
                    throw Self.uriError("the value of \(name) has a bad %-escape")
                }
                guard attributes[name] == nil else { throw Self.uriError("\(name) is given twice") }
                attributes[name] = value
            }
        }
        func text(_ name: String) -> String? { attributes[name].map { String(decoding: $0, as: UTF8.self) } }
        let known: Set = ["token", "slot-id", "object", "id", "type", "module-path", "pin-source", "pin-value"]
        if let unknown = attributes.keys.sorted().first(where: { !known.contains($0) }) {
            throw Self.uriError("Signet does not know the attribute \(unknown)")
        }
        if attributes["pin-value"] != nil {
            throw Self.uriError(
                "pin-value puts the PIN where everyone can see it; use pin-source=file:PATH or env:NAME")
        }
        if let type = text("type"), type != "private" {
            throw Self.uriError("type=\(type): a signing key is type=private")
        }
        guard let module = text("module-path") else {
            throw Self.uriError("module-path (the PKCS#11 module) is needed")
        }
        let token: Token
        switch (text("token"), text("slot-id")) {
        case (let label?, nil): token = .label(label)
        case (nil, let slot?):
            guard let number = UInt(slot) else { throw Self.uriError("slot-id=\(slot) is not a number") }
            token = .slot(number)
        case (nil, nil): throw Self.uriError("token=LABEL or slot-id=N is needed")
        case (.some, .some): throw Self.uriError("give token or slot-id, not both")
        }
        guard let source = text("pin-source") else { throw Self.uriError("pin-source=file:PATH or env:NAME is needed") }
        let pin: PINSource
        if source.hasPrefix("env:") {
            pin = .environment(String(source.dropFirst(4)))
        } else if source.hasPrefix("file:") {
            // file:/path and file:///path
            var file = String(source.dropFirst(5))
            if file.hasPrefix("//") { file = String(file.dropFirst(2)) }
            pin = .file(file)
        } else if source.hasPrefix("/") {
            pin = .file(source)
        } else {
            throw Self.uriError("pin-source=\(source) is not file:PATH or env:NAME")
        }
        self.init(module: module, token: token, keyLabel: text("object"), keyID: attributes["id"], pin: pin)
        if let problem = problems.first { throw Self.uriError(problem) }
    }

    private static func uriError(_ reason: String) -> KeysError {
        KeysError(.malformedKey, "not a usable PKCS#11 URI: \(reason)")
    }

    /// %XX escapes decoded; nil for a broken escape.
    private static func percentDecoded(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                return nil
            }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
