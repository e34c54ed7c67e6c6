/// Byte values the scanners look for, named as in the RFCs.
enum ASCII {
    static let nul: UInt8 = 0x00
    static let htab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let dot: UInt8 = 0x2E
    static let colon: UInt8 = 0x3A

    /// Lowercases A-Z and leaves every other byte alone (header names and DNS labels are ASCII-case-insensitive).
    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }
}

/// The inner loop every header and line-ending scan runs on, eight bytes at a time.
enum ByteScan {
    /// Index of the first byte below 0x0E (NUL, HTAB, LF, CR and the rarer controls) in `start..<end`, else `end`.
    ///
    /// Mail text is mostly bytes above 0x0D, so testing a 64-bit word at once skips most of it: the word expression
    /// is non-zero exactly when some byte of the word is below 0x0E (the "has less than" bit trick).
    @inline(__always)
    static func firstControl(_ base: UnsafeRawPointer, from start: Int, to end: Int) -> Int {
        var index = start
        while index &+ 8 <= end {
            let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if (word &- 0x0E0E_0E0E_0E0E_0E0E) & ~word & 0x8080_8080_8080_8080 != 0 { break }
            index &+= 8
        }
        while index < end {
            if base.load(fromByteOffset: index, as: UInt8.self) < 0x0E { return index }
            index &+= 1
        }
        return end
    }
}
