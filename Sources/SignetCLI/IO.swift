import Foundation
import NIOCore

/// Reading and writing whole files for the offline tools.
enum IO {
    static func readInput(_ path: String?) throws -> ByteBuffer {
        let data: Data
        if let path, path != "-" {
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw CLIError("cannot read message file \(path): \(error.localizedDescription)")
            }
        } else {
            data = FileHandle.standardInput.readDataToEndOfFile()
        }
        return ByteBuffer(bytes: data)
    }

    static func readText(_ path: String, what: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CLIError("cannot read \(what) \(path): \(error.localizedDescription)")
        }
    }

    static func writeOutput(_ buffer: ByteBuffer, to path: String?) throws {
        let data = Data(buffer.readableBytesView)
        if let path, path != "-" {
            do {
                try data.write(to: URL(fileURLWithPath: path))
            } catch {
                throw CLIError("cannot write \(path): \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    /// Creates a file readable by its owner only (0600), refusing to replace one unless asked:
    /// private keys must never be world-readable, even for a moment.
    static func writePrivateFile(_ text: String, to path: String, overwrite: Bool) throws {
        var flags = O_WRONLY | O_CREAT | O_TRUNC
        if !overwrite { flags |= O_EXCL }
        let fd = open(path, flags, 0o600)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == EEXIST {
                throw CLIError("\(path) already exists; pass --force to replace it")
            }
            throw CLIError("cannot create \(path): \(reason)")
        }
        defer { close(fd) }
        // An existing file keeps its mode through O_TRUNC, so set it again.
        fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += n
        }
    }
}
