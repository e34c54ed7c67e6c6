import COpenSSL

/// OpenSSL's error queue, drained into the error at the failing call.
public struct OpenSSLError: Error, CustomStringConvertible {
    /// The OpenSSL function (or step) that failed, e.g. `EVP_PKEY_sign`.
    public let operation: String
    /// OpenSSL's messages for this failure, oldest first (may be empty when OpenSSL queued nothing).
    public let queue: [String]

    public init(operation: String, queue: [String]) {
        self.operation = operation
        self.queue = queue
    }

    public var description: String {
        queue.isEmpty ? "\(operation) failed" : "\(operation) failed: \(queue.joined(separator: "; "))"
    }

    /// Empties this thread's OpenSSL error queue into a new error. Every failing call goes through here, so a
    /// stale entry can never be blamed on a later operation.
    static func drain(_ operation: String) -> OpenSSLError {
        OpenSSLError(operation: operation, queue: drainQueue())
    }

    /// Empties the queue when a failure is an expected answer (a signature that does not verify).
    static func discardQueue() {
        ERR_clear_error()
    }

    /// The queue holds at most 16 entries (ERR_NUM_ERRORS); the bound only guards against surprises.
    private static let maximumEntries = 64

    private static func drainQueue() -> [String] {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        for _ in 0..<maximumEntries {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { return messages }
            let text = buffer.withUnsafeMutableBufferPointer { chars -> String in
                guard let base = chars.baseAddress else { return "error \(code)" }
                ERR_error_string_n(code, base, chars.count)
                return String(cString: base)
            }
            if let data, flags & ERR_TXT_STRING != 0, data.pointee != 0 {
                messages.append("\(text) (\(String(cString: data)))")
            } else {
                messages.append(text)
            }
        }
        ERR_clear_error()
        return messages
    }
}
