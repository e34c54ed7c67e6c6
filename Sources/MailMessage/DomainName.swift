/// Domain names: lowercase ASCII form and IDNA A-label conversion (Punycode, RFC 3492) for UTF-8 labels.
///
/// DKIM compares domains (d=, the From domain, i=) and looks up keys in DNS, both of which need one ASCII spelling.
/// Labels are letters, digits and hyphens (no hyphen first or last); ASCII labels may also hold '_' because
/// DNS names such as `sel._domainkey.example.com` do. Unicode labels are lowercased with Swift's full Unicode
/// mapping and Punycode-encoded; there is no NFC normalization and no IDNA2008 table check beyond refusing
/// controls, spaces and format characters.
public enum DomainName {
    static let maxLength = 253
    static let maxLabelLength = 63

    /// The domain in lowercase ASCII, each Unicode label as its "xn--" A-label; nil when it is not a valid name.
    public static func asciiLowercased(_ domain: String) -> String? {
        var isASCII = true
        let asciiResult = domain.utf8.withContiguousStorageIfAvailable { bytes -> String? in
            isASCII = !bytes.contains(where: { $0 >= 0x80 })
            return isASCII ? asciiDomain(bytes, original: domain) : nil
        }
        guard let asciiResult else { return asciiOrUnicode(Array(domain.utf8), original: domain) }
        return isASCII ? asciiResult : unicodeDomain(domain)
    }

    /// Whether `asciiLowercased` accepts the domain.
    public static func isValid(_ domain: String) -> Bool {
        asciiLowercased(domain) != nil
    }

    /// For strings without contiguous UTF-8 (bridged ones): the same decision on a copy.
    private static func asciiOrUnicode(_ bytes: [UInt8], original: String) -> String? {
        guard !bytes.contains(where: { $0 >= 0x80 }) else { return unicodeDomain(original) }
        return bytes.withUnsafeBufferPointer { asciiDomain($0, original: original) }
    }

    /// The common case: validate in one pass and return the string itself when it is already lowercase.
    private static func asciiDomain(_ bytes: UnsafeBufferPointer<UInt8>, original: String) -> String? {
        var hasUppercase = false
        var labelLength = 0
        var previous: UInt8 = ASCII.dot
        for byte in bytes {
            if byte == ASCII.dot {
                guard labelLength > 0, previous != UInt8(ascii: "-") else { return nil }
                labelLength = 0
            } else {
                guard isLabelByte(byte, underscore: true) else { return nil }
                if labelLength == 0 && byte == UInt8(ascii: "-") { return nil }
                labelLength += 1
                guard labelLength <= maxLabelLength else { return nil }
                hasUppercase = hasUppercase || (byte &- UInt8(ascii: "A") < 26)
            }
            previous = byte
        }
        guard labelLength > 0, previous != UInt8(ascii: "-"), bytes.count <= maxLength else { return nil }
        guard hasUppercase else { return original }
        return String(unsafeUninitializedCapacity: bytes.count) { output in
            for (index, byte) in bytes.enumerated() { output[index] = ASCII.lowercased(byte) }
            return bytes.count
        }
    }

    /// `asciiDomain` for a String (the labels of the Unicode path).
    private static func asciiDomain(_ string: String) -> String? {
        Array(string.utf8).withUnsafeBufferPointer { asciiDomain($0, original: string) }
    }

    private static func unicodeDomain(_ domain: String) -> String? {
        var labels: [String] = []
        var label: [Unicode.Scalar] = []
        for scalar in domain.unicodeScalars {
            // UTS #46 treats the ideographic and fullwidth full stops as label separators too.
            if scalar == "." || scalar == "\u{3002}" || scalar == "\u{FF0E}" || scalar == "\u{FF61}" {
                guard let ascii = asciiLabel(label) else { return nil }
                labels.append(ascii)
                label.removeAll(keepingCapacity: true)
            } else {
                label.append(scalar)
                // A label this long cannot encode to 63 bytes; stopping here bounds the Punycode work.
                guard label.count <= maxLabelLength else { return nil }
            }
        }
        guard let ascii = asciiLabel(label) else { return nil }
        labels.append(ascii)
        let joined = labels.joined(separator: ".")
        guard joined.utf8.count <= maxLength else { return nil }
        return joined
    }

    /// One label in lowercase ASCII: as it is when ASCII, else "xn--" + Punycode of its lowercase form.
    private static func asciiLabel(_ scalars: [Unicode.Scalar]) -> String? {
        guard !scalars.isEmpty else { return nil }
        if scalars.allSatisfy(\.isASCII) {
            var string = ""
            string.unicodeScalars.append(contentsOf: scalars)
            return asciiDomain(string)
        }
        var original = ""
        original.unicodeScalars.append(contentsOf: scalars)
        let loweredString = original.lowercased()
        let lowered = Array(loweredString.unicodeScalars)
        // A few letters lowercase to ASCII (KELVIN SIGN -> "k"); such a label is an ordinary ASCII label.
        if lowered.allSatisfy(\.isASCII) { return asciiDomain(loweredString) }
        // An ACE prefix belongs to labels that are already ASCII.
        if loweredString.hasPrefix("xn--") { return nil }
        for scalar in lowered {
            if scalar.isASCII {
                guard isLabelByte(UInt8(scalar.value), underscore: false) else { return nil }
            } else {
                guard isAllowedNonASCII(scalar) else { return nil }
            }
        }
        guard lowered.first != "-", lowered.last != "-", let encoded = Punycode.encode(lowered) else { return nil }
        let aLabel = "xn--" + encoded
        guard aLabel.utf8.count <= maxLabelLength else { return nil }
        return aLabel
    }

    /// Letters, digits, hyphen; and '_' where DNS names (not host names) allow it.
    private static func isLabelByte(_ byte: UInt8, underscore: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"):
            return true
        case UInt8(ascii: "_"):
            return underscore
        default:
            return false
        }
    }

    /// Refuses what can never be part of a domain label: controls, spaces, separators, format characters (but
    /// ZWNJ/ZWJ, which some scripts need), private use, unassigned code points and U+FFFD.
    private static func isAllowedNonASCII(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\u{200C}" || scalar == "\u{200D}" { return true }
        if scalar == "\u{FFFD}" || scalar.properties.isWhitespace { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .spaceSeparator, .lineSeparator,
            .paragraphSeparator:
            return false
        default:
            return true
        }
    }
}
