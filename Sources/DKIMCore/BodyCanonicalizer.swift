import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Streaming body canonicalization (RFC 6376 §3.4.3 and §3.4.4), fed arbitrary chunks.
///
/// Lines end in CRLF; a bare CR or LF is ordinary content. Bytes the algorithm leaves unchanged are
/// passed to the sink as slices of the input, so the common case is a few calls per line (simple: a
/// few per chunk). Trailing empty lines and trailing white space are held back until content follows,
/// which is what makes a CRLF, a white-space run or an empty line split across chunks come out right.
public struct BodyCanonicalizer: Sendable {
    /// The algorithm applied.
    public let algorithm: Canonicalization
    /// `l=`: at most this many canonical bytes reach the sink.
    public let lengthLimit: Int?
    /// Canonical bytes produced so far, ignoring `lengthLimit`; after `finish` the body length for `l=`.
    public private(set) var canonicalLength = 0

    private var forwarded = 0
    private var atLineStart = true
    private var pendingEmptyLines = 0
    private var pendingWhitespace = false
    private var pendingCR = false

    /// A canonicalizer at the start of a body.
    public init(_ algorithm: Canonicalization, lengthLimit: Int? = nil) {
        self.algorithm = algorithm
        self.lengthLimit = lengthLimit.map { max(0, $0) }
    }

    /// Canonicalizes the readable bytes of `chunk`.
    @inlinable
    public mutating func update<S: CanonicalizationSink>(_ chunk: ByteBuffer, into sink: inout S) {
        chunk.withUnsafeReadableBytes { update($0, into: &sink) }
    }

    /// Canonicalizes `bytes`.
    public mutating func update<S: CanonicalizationSink>(_ bytes: UnsafeRawBufferPointer, into sink: inout S) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return }
        switch algorithm {
        case .simple: updateSimple(base, bytes.count, into: &sink)
        case .relaxed: updateRelaxed(base, bytes.count, into: &sink)
        }
    }

    /// Flushes what the end of the body decides: a final CRLF for an unterminated line, and for simple
    /// an empty body's single CRLF.
    public mutating func finish<S: CanonicalizationSink>(into sink: inout S) {
        if pendingCR {
            pendingCR = false
            beginContent(into: &sink)
            emit(staticBytes: "\r", into: &sink)
        }
        if !atLineStart {
            emit(staticBytes: "\r\n", into: &sink)
            atLineStart = true
        }
        pendingWhitespace = false
        pendingEmptyLines = 0
        if algorithm == .simple && canonicalLength == 0 {
            emit(staticBytes: "\r\n", into: &sink)
        }
    }

    private static let cr: UInt8 = 0x0D
    private static let lf: UInt8 = 0x0A
    private static let sp: UInt8 = 0x20
    private static let tab: UInt8 = 0x09

    private mutating func updateSimple<S: CanonicalizationSink>(
        _ base: UnsafePointer<UInt8>,
        _ count: Int,
        into sink: inout S
    ) {
        var i = 0
        outer: while i < count {
            if pendingCR {
                pendingCR = false
                if base[i] == Self.lf {
                    endLine(into: &sink)
                    i += 1
                    continue
                }
                beginContent(into: &sink)
                emit(staticBytes: "\r", into: &sink)
            }
            if base[i] == Self.cr {
                pendingCR = true
                i += 1
                continue
            }
            beginContent(into: &sink)
            let start = i
            var j = i + 1
            while j < count {
                guard let found = memchr(base + j, Int32(Self.cr), count - j) else {
                    j = count
                    break
                }
                j = UnsafePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - base
                guard j + 1 < count, base[j + 1] == Self.lf else { break }
                // CRLF ends a line with content, so it is output as is; keep going while the next line has content too.
                if j + 2 < count && base[j + 2] != Self.cr {
                    j += 3
                    continue
                }
                j += 2
                emit(base + start, j - start, into: &sink)
                atLineStart = true
                i = j
                continue outer
            }
            emit(base + start, j - start, into: &sink)
            i = j
        }
    }

    private mutating func updateRelaxed<S: CanonicalizationSink>(
        _ base: UnsafePointer<UInt8>,
        _ count: Int,
        into sink: inout S
    ) {
        var i = 0
        outer: while i < count {
            if pendingCR {
                pendingCR = false
                if base[i] == Self.lf {
                    endLine(into: &sink)
                    i += 1
                    continue
                }
                beginContent(into: &sink)
                emit(staticBytes: "\r", into: &sink)
            }
            let byte = base[i]
            if byte == Self.cr {
                pendingCR = true
                i += 1
                continue
            }
            if byte == Self.sp || byte == Self.tab {
                pendingWhitespace = true
                i += 1
                continue
            }
            beginContent(into: &sink)
            // The run extends over everything relaxed leaves unchanged: a single SP between content
            // bytes, and a CRLF whose next line starts with content.
            let start = i
            var j = i + 1
            while j < count {
                let c = base[j]
                if c > Self.sp {
                    j += 1
                } else if c == Self.sp {
                    guard j + 1 < count, Self.isContent(base[j + 1]) else { break }
                    j += 2
                } else if c == Self.cr {
                    guard j + 1 < count, base[j + 1] == Self.lf else { break }
                    if j + 2 < count && Self.isContent(base[j + 2]) {
                        j += 3
                        continue
                    }
                    j += 2
                    emit(base + start, j - start, into: &sink)
                    atLineStart = true
                    i = j
                    continue outer
                } else if c == Self.tab {
                    break
                } else {
                    j += 1
                }
            }
            emit(base + start, j - start, into: &sink)
            i = j
        }
    }

    @inline(__always)
    private static func isContent(_ byte: UInt8) -> Bool {
        byte != sp && byte != tab && byte != cr
    }

    /// Before content on a line: the empty lines held back are not trailing after all, nor is the white space.
    @inline(__always)
    private mutating func beginContent<S: CanonicalizationSink>(into sink: inout S) {
        if pendingEmptyLines > 0 {
            flushEmptyLines(into: &sink)
        }
        if pendingWhitespace {
            pendingWhitespace = false
            emit(staticBytes: " ", into: &sink)
        }
        atLineStart = false
    }

    private mutating func flushEmptyLines<S: CanonicalizationSink>(into sink: inout S) {
        let batch: StaticString = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
        while pendingEmptyLines > 0 {
            let lines = min(pendingEmptyLines, batch.utf8CodeUnitCount / 2)
            batch.withUTF8Buffer { emit($0.baseAddress!, lines * 2, into: &sink) }
            pendingEmptyLines -= lines
        }
    }

    @inline(__always)
    private mutating func endLine<S: CanonicalizationSink>(into sink: inout S) {
        pendingWhitespace = false
        if atLineStart {
            pendingEmptyLines += 1
        } else {
            emit(staticBytes: "\r\n", into: &sink)
            atLineStart = true
        }
    }

    @inline(__always)
    private mutating func emit<S: CanonicalizationSink>(staticBytes: StaticString, into sink: inout S) {
        staticBytes.withUTF8Buffer { emit($0.baseAddress!, $0.count, into: &sink) }
    }

    @inline(__always)
    private mutating func emit<S: CanonicalizationSink>(
        _ start: UnsafePointer<UInt8>,
        _ count: Int,
        into sink: inout S
    ) {
        canonicalLength += count
        guard let limit = lengthLimit else {
            sink.write(UnsafeRawBufferPointer(start: start, count: count))
            return
        }
        let take = min(count, limit - forwarded)
        guard take > 0 else { return }
        sink.write(UnsafeRawBufferPointer(start: start, count: take))
        forwarded += take
    }
}

extension BodyCanonicalizer {
    /// The whole body at once, line by line: a reference written independently of the streaming code,
    /// for tests and tools.
    public static func canonicalizeWhole(_ body: [UInt8], _ algorithm: Canonicalization) -> [UInt8] {
        // Split on CRLF only; the piece after the last CRLF, if not empty, is an unterminated line.
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 0
        while index < body.count {
            if body[index] == 0x0D && index + 1 < body.count && body[index + 1] == 0x0A {
                lines.append(current)
                current = []
                index += 2
            } else {
                current.append(body[index])
                index += 1
            }
        }
        if !current.isEmpty { lines.append(current) }

        if algorithm == .relaxed {
            lines = lines.map { line in
                var out: [UInt8] = []
                var inWhitespace = false
                for byte in line {
                    if byte == 0x20 || byte == 0x09 {
                        inWhitespace = true
                    } else {
                        if inWhitespace { out.append(0x20) }
                        inWhitespace = false
                        out.append(byte)
                    }
                }
                return out  // white space at the end of the line is dropped with `inWhitespace`
            }
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        if lines.isEmpty { return algorithm == .simple ? [0x0D, 0x0A] : [] }
        var result: [UInt8] = []
        for line in lines { result += line + [0x0D, 0x0A] }
        return result
    }
}
