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

    /// Relaxed canonicalization writes its output into a stack buffer of this many bytes and hands the sink whole
    /// 64-byte blocks of it: the sixteen-byte scan stores every block it reads there unconditionally, so bytes that
    /// pass unchanged cost one vector store instead of a `sink.write` (and a `memmove`) per run, and OpenSSL hashes
    /// straight from the buffer without its partial-block copies. `stagingSlack` more bytes leave room for one step
    /// of the loop (a vector or a few bytes) after the fill check.
    @inlinable static var stagingCapacity: Int { 4096 }
    @inlinable static var stagingSlack: Int { 64 }

    @inlinable
    mutating func updateRelaxed<S: CanonicalizationSink>(
        _ base: UnsafePointer<UInt8>,
        _ count: Int,
        into sink: inout S
    ) {
        // A local value rather than `withUnsafeTemporaryAllocation`, which calls malloc above 1 KiB on Linux.
        var storage = StagingStorage()
        withUnsafeMutableBytes(of: &storage) { raw in
            relaxed(base, count, staging: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), into: &sink)
        }
    }

    /// The relaxed state machine over one chunk. Two loops: the outer one at a line start or after white space,
    /// where output waits for what follows; the inner one after content, where bytes go out as they are until the
    /// vector scan finds one of the places relaxed canonicalization may change: HTAB, SP followed by a byte up to
    /// SP (white space, CR, LF or a control byte: a run of white space, or a false stop), and a CR that is not part
    /// of a CRLF followed by content.
    /// `staging` has room for `stagingCapacity + stagingSlack` bytes; everything gathered there is written out
    /// before this returns.
    @inlinable
    mutating func relaxed<S: CanonicalizationSink>(
        _ base: UnsafePointer<UInt8>,
        _ count: Int,
        staging: UnsafeMutablePointer<UInt8>,
        into sink: inout S
    ) {
        // A local that never escapes (the helpers taking it are all inlined), so its count stays in a register:
        // as an inout parameter, every block scanned paid a store and a reload of the count.
        var out = Staging(staging)
        defer { emit(out.base, out.count, into: &sink) }
        var i = 0
        if pendingCR {
            pendingCR = false
            if base[0] == Self.lf {
                endLine(&out, into: &sink)
                i = 1
            } else {
                beginContent(&out, into: &sink)
                out.put(Self.cr)
            }
        }
        while i < count {
            let byte = base[i]
            if byte == Self.cr {
                guard i + 1 < count else {
                    pendingCR = true
                    return
                }
                if base[i + 1] == Self.lf {
                    endLine(&out, into: &sink)
                    i += 2
                    continue
                }
                // A bare CR is content.
                beginContent(&out, into: &sink)
                out.put(Self.cr)
                i += 1
            } else if byte == Self.sp || byte == Self.tab {
                pendingWhitespace = true
                i += 1
                continue
            } else {
                beginContent(&out, into: &sink)
            }
            // After content: copy until the line ends with something other than content next.
            content: while true {
                if out.count > Self.stagingCapacity { flush(&out, into: &sink) }
                if i &+ Self.vectorReach <= count {
                    let x = Self.lanes(base + i)
                    out.store(x)
                    let stops = Self.relaxedStops(x, Self.lanes(base + i + 1), Self.lanes(base + i + 2))
                    guard let stop = Self.firstSet(stops) else {
                        i &+= Self.vectorWidth
                        out.count &+= Self.vectorWidth
                        continue
                    }
                    i &+= stop
                    out.count &+= stop
                } else {
                    guard i < count else { return }
                }
                let c = base[i]
                if c == Self.cr {
                    guard i + 1 < count else {
                        pendingCR = true
                        return
                    }
                    guard base[i + 1] == Self.lf else {
                        out.put(Self.cr)
                        i += 1
                        continue content
                    }
                } else if c == Self.sp || c == Self.tab {
                    var j = i + 1
                    while j < count && (base[j] == Self.sp || base[j] == Self.tab) { j += 1 }
                    guard j < count else {
                        pendingWhitespace = true
                        return
                    }
                    i = j
                    // White space before CRLF is dropped; before anything else (content or a bare CR) it is one SP.
                    guard base[j] == Self.cr else {
                        out.put(Self.sp)
                        continue content
                    }
                    guard j + 1 < count else {
                        pendingWhitespace = true
                        pendingCR = true
                        return
                    }
                    guard base[j + 1] == Self.lf else {
                        out.put(Self.sp)
                        out.put(Self.cr)
                        i += 1
                        continue content
                    }
                } else {
                    // Any other byte is content (only a false stop brings one here).
                    out.put(c)
                    i += 1
                    continue content
                }
                // CRLF at i ends a line with content: output as is. The next line goes on here if it starts with
                // content, else the outer loop decides.
                out.put(Self.cr)
                out.put(Self.lf)
                i += 2
                atLineStart = true
                guard i < count, Self.isContent(base[i]) else { break content }
                atLineStart = false
            }
        }
    }

    /// Where relaxed output is gathered: a pointer into the stack buffer and the bytes used.
    @usableFromInline
    struct Staging {
        @usableFromInline let base: UnsafeMutablePointer<UInt8>
        @usableFromInline var count = 0

        @inlinable
        init(_ base: UnsafeMutablePointer<UInt8>) {
            self.base = base
        }

        @inlinable @inline(__always)
        mutating func put(_ byte: UInt8) {
            base[count] = byte
            count &+= 1
        }

        /// Stores sixteen bytes at the end without counting them: the caller counts the ones that are output.
        @inlinable @inline(__always)
        func store(_ lanes: Lanes) {
            UnsafeMutableRawPointer(base + count).storeBytes(of: lanes, as: Lanes.self)
        }
    }

    /// Writes the whole 64-byte blocks gathered and moves the rest (under 64 bytes) to the front.
    @inlinable @inline(__always)
    mutating func flush<S: CanonicalizationSink>(_ out: inout Staging, into sink: inout S) {
        let whole = out.count & ~63
        emit(out.base, whole, into: &sink)
        let rest = out.count &- whole
        if rest > 0 { out.base.update(from: out.base + whole, count: rest) }
        out.count = rest
    }

    /// 4 KiB + 64 bytes of stack for `Staging`, as nested tuples (the only fixed-size storage before `InlineArray`).
    @usableFromInline
    struct StagingStorage {
        @usableFromInline typealias Block = SIMD64<UInt8>
        @usableFromInline typealias Quarter = (Block, Block, Block, Block)
        @usableFromInline typealias Kilobyte = (Quarter, Quarter, Quarter, Quarter)
        @usableFromInline var bytes: (Kilobyte, Kilobyte, Kilobyte, Kilobyte, Block)

        @inlinable
        init() {
            let quarter: Quarter = (.zero, .zero, .zero, .zero)
            let kilobyte: Kilobyte = (quarter, quarter, quarter, quarter)
            bytes = (kilobyte, kilobyte, kilobyte, kilobyte, .zero)
        }
    }

    /// `beginContent` for relaxed output: held-back empty lines and white space turn out not to be trailing.
    @inlinable @inline(__always)
    mutating func beginContent<S: CanonicalizationSink>(_ out: inout Staging, into sink: inout S) {
        if out.count > Self.stagingCapacity { flush(&out, into: &sink) }
        while pendingEmptyLines > 0 {
            if out.count > Self.stagingCapacity { flush(&out, into: &sink) }
            out.put(Self.cr)
            out.put(Self.lf)
            pendingEmptyLines -= 1
        }
        if pendingWhitespace {
            pendingWhitespace = false
            out.put(Self.sp)
        }
        atLineStart = false
    }

    /// `endLine` for relaxed output.
    @inlinable @inline(__always)
    mutating func endLine<S: CanonicalizationSink>(_ out: inout Staging, into sink: inout S) {
        pendingWhitespace = false
        if atLineStart {
            pendingEmptyLines += 1
        } else {
            if out.count > Self.stagingCapacity { flush(&out, into: &sink) }
            out.put(Self.cr)
            out.put(Self.lf)
            atLineStart = true
        }
    }

    // MARK: - Vector scanning
    //
    // Both scans classify sixteen positions at once; `firstSet` then gives the first position that needs the
    // scalar code, or nil when all sixteen can be passed unchanged. Position k looks at bytes up to k + 2
    // (both), so a block needs `vectorReach` readable bytes; shorter tails take the scalar path. A false stop only
    // costs time: simple's lanes are exact; relaxed also stops at SP before LF or a control byte and at CRLF before
    // LF or a control byte, where the scalar code finds nothing to change.

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

    /// Relaxed: HTAB; SP followed by a byte up to SP; CR unless LF and a byte above SP follow. (The bytes up to SP
    /// include LF and control bytes, which are content: stopping there is a false stop, rare in text, and saves
    /// compares.)
    @inlinable @inline(__always)
    static func relaxedStops(_ x: Lanes, _ y: Lanes, _ z: Lanes) -> SIMDMask<SIMD16<Int8>> {
        let sps = splat(sp)
        let lineGoesOn = (y .== splat(lf)) .& (z .> sps)
        return (x .== splat(tab)) .| ((x .== splat(cr)) .& .!lineGoesOn) .| ((x .== sps) .& (y .<= sps))
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
