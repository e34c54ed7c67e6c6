import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of one message as received (line endings normalized): slices of the arrival buffers while small,
/// a private temporary file once past the spool threshold, so a 50 MiB message never sits whole in memory.
struct MessageContent {
    private var chunks: [ByteBuffer] = []
    private var spool: SpoolFile?
    private(set) var count = 0
    private let spoolThreshold: Int
    private let spoolDirectory: String

    init(spoolThreshold: Int, spoolDirectory: String) {
        self.spoolThreshold = spoolThreshold
        self.spoolDirectory = spoolDirectory
    }

    var isSpooled: Bool { spool != nil }

    mutating func append(_ chunk: ByteBuffer) throws {
        guard chunk.readableBytes > 0 else { return }
        count += chunk.readableBytes
        if let spool {
            try spool.write(chunk)
            return
        }
        chunks.append(chunk)
        if count > spoolThreshold {
            let file = try SpoolFile(directory: spoolDirectory)
            for buffered in chunks { try file.write(buffered) }
            chunks = []
            spool = file
        }
    }

    /// Calls `body` with the content in order, in pieces of at most `pieceSize` bytes when spooled.
    func forEachPiece(pieceSize: Int = 256 * 1024, _ body: (ByteBuffer) async throws -> Void) async throws {
        if let spool {
            var offset = 0
            while offset < count {
                let piece = try spool.read(at: offset, length: min(pieceSize, count - offset))
                try await body(piece)
                offset += piece.readableBytes
            }
        } else {
            for chunk in chunks { try await body(chunk) }
        }
    }

    /// The whole content in one buffer (capture sink, tests); copies.
    func collected() throws -> ByteBuffer {
        if let spool { return try spool.read(at: 0, length: count) }
        var all = ByteBufferAllocator().buffer(capacity: count)
        for chunk in chunks { all.writeImmutableBuffer(chunk) }
        return all
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Musl)
private let systemWrite = Musl.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// A temporary file only this process can reach: created 0600 and unlinked at once, so it vanishes with the
/// descriptor even if the process dies.
final class SpoolFile {
    private let descriptor: Int32

    init(directory: String) throws {
        var template = Array((directory + "/signet-spool-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SpoolError("cannot create a spool file in \(directory): errno \(errno)") }
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        _ = fchmod(fd, 0o600)
        descriptor = fd
    }

    deinit { close(descriptor) }

    func write(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let written = systemWrite(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError("writing the spool file failed: errno \(errno)")
                }
                done += written
            }
        }
    }

    func read(at offset: Int, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { pointer in
            var done = 0
            while done < length {
                let count = pread(descriptor, pointer.baseAddress! + done, length - done, off_t(offset + done))
                if count < 0 {
                    if errno == EINTR { continue }
                    throw SpoolError("reading the spool file failed: errno \(errno)")
                }
                if count == 0 { break }
                done += count
            }
            return done
        }
        guard got == length else { throw SpoolError("the spool file is shorter than expected") }
        return buffer
    }
}

/// A spool file could not be created, written or read.
struct SpoolError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
