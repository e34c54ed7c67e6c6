import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// `write` alone would name the stored closure inside `Output`.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// A swift-log handler writing one JSON object per line (`ts`, `level`, `label`, `msg`, then the metadata keys),
/// the shape log pipelines (Loki, Elasticsearch, Cloud Logging) parse without configuration.
public struct JSONLogHandler: LogHandler {
    /// Where lines go; one `write` per line so lines from several threads never interleave.
    public final class Output: Sendable {
        private let lock = NIOLock()
        private let write: @Sendable ([UInt8]) -> Void

        /// Lines to a file descriptor (1 for standard output).
        public init(fileDescriptor: Int32) {
            self.write = { bytes in
                bytes.withUnsafeBytes { buffer in
                    var offset = 0
                    while offset < buffer.count {
                        let written = systemWrite(fileDescriptor, buffer.baseAddress! + offset, buffer.count - offset)
                        if written > 0 {
                            offset += written
                        } else if written < 0 && errno == EINTR {
                            continue
                        } else {
                            return  // a closed log stream must not stop the relay
                        }
                    }
                }
            }
        }

        /// Lines to a closure (tests, or another sink).
        public init(_ write: @escaping @Sendable ([UInt8]) -> Void) {
            self.write = write
        }

        func emit(_ line: [UInt8]) {
            lock.withLock { write(line) }
        }

        /// Standard output, as the text format uses.
        public static let standardOutput = Output(fileDescriptor: 1)
    }

    /// Metadata keys whose values are replaced by `[redacted]`, a net under the rule that secrets are never
    /// logged in the first place.
    static let redactedKeys: Set<String> = ["password", "passwd", "secret", "private_key", "key_material", "body"]

    private let label: String
    private let output: Output
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// A handler for `label` writing to `output`.
    public init(label: String, output: Output = .standardOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = output
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let own = event.metadata { merged.merge(own) { _, new in new } }
        output.emit(Self.line(level: event.level, label: label, message: "\(event.message)", metadata: merged))
    }

    /// One JSON line (with its newline); keys sorted so lines diff cleanly.
    static func line(
        level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, time: timespec? = nil
    )
        -> [UInt8]
    {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out += Array(#"{"ts":""#.utf8)
        out += timestamp(time ?? now())
        out += Array(#"","level":""#.utf8)
        out += Array(level.rawValue.utf8)
        out += Array(#"","label":"#.utf8)
        appendString(label, to: &out)
        out += Array(#","msg":"#.utf8)
        appendString(message, to: &out)
        for key in metadata.keys.sorted() where !["ts", "level", "label", "msg"].contains(key) {
            out.append(UInt8(ascii: ","))
            appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            if redactedKeys.contains(key.lowercased()) {
                appendString("[redacted]", to: &out)
            } else {
                appendValue(metadata[key]!, to: &out)
            }
        }
        out += Array("}\n".utf8)
        return out
    }

    static func appendValue(_ value: Logger.Metadata.Value, to out: inout [UInt8]) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendValue(element, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .dictionary(let dictionary):
            out.append(UInt8(ascii: "{"))
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                appendValue(dictionary[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// A JSON string literal (RFC 8259 §7): quote, backslash and control characters escaped; UTF-8 kept.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// RFC 3339 in UTC with milliseconds: `2026-01-02T03:04:05.678Z`.
    static func timestamp(_ time: timespec) -> [UInt8] {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(time.tv_nsec / 1_000_000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        let text =
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
        return Array(text.utf8)
    }
}
