import NIOCore

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
    public var canonicalLength: Int { producedLength }

    // The state is internal and `@usableFromInline`, and the methods `@inlinable`, so that a caller in another
    // module (the DKIM body hasher) gets a copy specialized for its sink: unspecialized, every write would go
    // through the protocol witness table and the scan would not be inlined around it.
    @usableFromInline var producedLength = 0
    @usableFromInline var forwarded = 0
    @usableFromInline var atLineStart = true
    @usableFromInline var pendingEmptyLines = 0
    @usableFromInline var pendingWhitespace = false
    @usableFromInline var pendingCR = false

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
    @inlinable
    public mutating func update<S: CanonicalizationSink>(_ bytes: UnsafeRawBufferPointer, into sink: inout S) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count > 0 else { return }
        switch algorithm {
        case .simple: updateSimple(base, bytes.count, into: &sink)
        case .relaxed: updateRelaxed(base, bytes.count, into: &sink)
        }
    }

    /// Flushes what the end of the body decides: a final CRLF for an unterminated line, and for simple
    /// an empty body's single CRLF.
    @inlinable
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

    @inlinable static var cr: UInt8 { 0x0D }
    @inlinable static var lf: UInt8 { 0x0A }
    @inlinable static var sp: UInt8 { 0x20 }
    @inlinable static var tab: UInt8 { 0x09 }

    @inlinable
    mutating func updateSimple<S: CanonicalizationSink>(
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
                // Sixteen bytes at a time up to the next CR that is not followed by LF and content (the
                // start of a possible empty line, or a bare CR); everything before it is unchanged.
                if j &+ Self.vectorReach <= count {
                    guard let stop = Self.firstSimpleStop(base + j) else {
                        j &+= Self.vectorWidth
                        continue
                    }
                    j &+= stop
                } else if base[j] != Self.cr {
                    j &+= 1
                    continue
                }
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

    @inlinable
    mutating func updateRelaxed<S: CanonicalizationSink>(
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
                // Sixteen bytes at a time up to the next byte the scalar steps below would not simply pass.
                if j &+ Self.vectorReach <= count {
                    guard let stop = Self.firstSet(Self.relaxedStops(base + j)) else {
                        j &+= Self.vectorWidth
                        continue
                    }
                    j &+= stop
                }
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

    // MARK: - Vector scanning
    //
    // Both scans classify sixteen positions at once; `firstSet` then gives the first position that needs the
    // scalar code, or nil when all sixteen can be passed unchanged. Position k looks at bytes k, k + 1 and k + 2, so a block
    // needs `vectorReach` readable bytes; shorter tails take the scalar path. A false stop would only cost time,
    // but there are none: each lane is computed exactly.

    @usableFromInline typealias Lanes = SIMD16<UInt8>
    @inlinable static var vectorWidth: Int { 16 }
    @inlinable static var vectorReach: Int { vectorWidth + 2 }

    @inlinable @inline(__always)
    static func lanes(_ pointer: UnsafePointer<UInt8>) -> Lanes {
        UnsafeRawPointer(pointer).loadUnaligned(as: Lanes.self)
    }

    /// All lanes set to `byte`. Comparisons between two vectors compile to single instructions; the
    /// vector-with-scalar overloads of the standard library go lane by lane.
    @inlinable @inline(__always)
    static func splat(_ byte: UInt8) -> Lanes {
        Lanes(repeating: byte)
    }

    /// The index of the first set lane of `mask`, or nil. (`any(_:)` is a horizontal minimum in the standard
    /// library; two 64-bit halves are cheaper.)
    @inlinable @inline(__always)
    static func firstSet(_ mask: SIMDMask<SIMD16<Int8>>) -> Int? {
        let words = unsafeBitCast(Lanes(repeating: 0).replacing(with: 0xFF, where: mask), to: SIMD2<UInt64>.self)
        let low = words[0]
        let high = words[1]
        guard low | high != 0 else { return nil }
        #if _endian(little)
        return low != 0 ? low.trailingZeroBitCount &>> 3 : 8 &+ (high.trailingZeroBitCount &>> 3)
        #else
        return low != 0 ? low.leadingZeroBitCount &>> 3 : 8 &+ (high.leadingZeroBitCount &>> 3)
        #endif
    }

    /// Simple: a CR not followed by LF, or a CRLF followed by CR.
    @inlinable @inline(__always)
    static func firstSimpleStop(_ pointer: UnsafePointer<UInt8>) -> Int? {
        let x = lanes(pointer)
        let y = lanes(pointer + 1)
        let z = lanes(pointer + 2)
        let crs = splat(cr)
        return firstSet((x .== crs) .& ((y .!= splat(lf)) .| (z .== crs)))
    }

    /// Relaxed: HTAB; SP followed by SP, HTAB or CR; CR not followed by LF and a content byte.
    @inlinable @inline(__always)
    static func relaxedStops(_ pointer: UnsafePointer<UInt8>) -> SIMDMask<SIMD16<Int8>> {
        let x = lanes(pointer)
        let y = lanes(pointer + 1)
        let z = lanes(pointer + 2)
        let sps = splat(sp)
        let tabs = splat(tab)
        let crs = splat(cr)
        let yNotContent = (y .== sps) .| (y .== tabs) .| (y .== crs)
        let zNotContent = (z .== sps) .| (z .== tabs) .| (z .== crs)
        let lineGoesOn = (y .== splat(lf)) .& .!zNotContent
        return (x .== tabs) .| ((x .== sps) .& yNotContent) .| ((x .== crs) .& .!lineGoesOn)
    }

    @inlinable @inline(__always)
    static func isContent(_ byte: UInt8) -> Bool {
        byte != sp && byte != tab && byte != cr
    }

    /// Before content on a line: the empty lines held back are not trailing after all, nor is the white space.
    @inlinable @inline(__always)
    mutating func beginContent<S: CanonicalizationSink>(into sink: inout S) {
        if pendingEmptyLines > 0 {
            flushEmptyLines(into: &sink)
        }
        if pendingWhitespace {
            pendingWhitespace = false
            emit(staticBytes: " ", into: &sink)
        }
        atLineStart = false
    }

    @inlinable
    mutating func flushEmptyLines<S: CanonicalizationSink>(into sink: inout S) {
        let batch: StaticString = "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
        while pendingEmptyLines > 0 {
            let lines = min(pendingEmptyLines, batch.utf8CodeUnitCount / 2)
            batch.withUTF8Buffer { emit($0.baseAddress!, lines * 2, into: &sink) }
            pendingEmptyLines -= lines
        }
    }

    @inlinable @inline(__always)
    mutating func endLine<S: CanonicalizationSink>(into sink: inout S) {
        pendingWhitespace = false
        if atLineStart {
            pendingEmptyLines += 1
        } else {
            emit(staticBytes: "\r\n", into: &sink)
            atLineStart = true
        }
    }

    @inlinable @inline(__always)
    mutating func emit<S: CanonicalizationSink>(staticBytes: StaticString, into sink: inout S) {
        staticBytes.withUTF8Buffer { emit($0.baseAddress!, $0.count, into: &sink) }
    }

    @inlinable @inline(__always)
    mutating func emit<S: CanonicalizationSink>(
        _ start: UnsafePointer<UInt8>,
        _ count: Int,
        into sink: inout S
    ) {
        producedLength += count
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
