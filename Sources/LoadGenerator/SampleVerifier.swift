import Foundation

/// Verifies the sink's sampled messages with dkimpy (Debian python3-dkim), an implementation independent of Signet:
/// every DKIM signature, and the ARC chain (`arc_verify`, cv=pass) of a message that carries one.
public enum SampleVerifier {
    /// `keyFile` has lines `selector._domainkey.domain<TAB>TXT value`, as OpenDKIM's TestPublicKeys.
    public static func verify(
        _ messages: [Data], keyFile: String, python: String = "/usr/bin/python3"
    ) throws
        -> SinkSummary.Verification
    {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "signet-load-verify-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var paths: [String] = []
        for (index, message) in messages.enumerated() {
            let url = dir.appendingPathComponent("\(index).eml")
            try message.write(to: url)
            paths.append(url.path)
        }
        guard !paths.isEmpty else { return .init(messages: 0, passed: 0, failed: 0, failures: []) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script, keyFile] + paths
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw VerifyError("dkimpy exited with \(process.terminationStatus)")
        }
        // One line per message: path, then "pass" or the reason it failed.
        var passed = 0
        var failures: [String] = []
        for line in String(decoding: output, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1)
            if parts.count == 2 && parts[1] == "pass" { passed += 1 } else { failures.append(String(line)) }
        }
        return .init(messages: paths.count, passed: passed, failed: paths.count - passed, failures: failures)
    }

    private static let script = """
        import sys, dkim
        keys = {}
        for line in open(sys.argv[1], "rb"):
            line = line.strip()
            if line and not line.startswith(b"#"):
                name, value = line.split(None, 1)
                keys[name.lower().rstrip(b".")] = value
        def dns(name, timeout=5):
            return keys.get(name.lower().rstrip(b"."), b"")
        for path in sys.argv[2:]:
            msg = open(path, "rb").read()
            d = dkim.DKIM(msg)
            lines = msg.split(b"\\r\\n\\r\\n", 1)[0].split(b"\\r\\n")
            count = sum(1 for l in lines if l.lower().startswith(b"dkim-signature:"))
            sealed = any(l.lower().startswith(b"arc-seal:") for l in lines)
            if count == 0 and not sealed:
                print(path + "\\tno DKIM-Signature or ARC-Seal")
                continue
            bad = [i for i in range(count) if not d.verify(idx=i, dnsfunc=dns)]
            if bad:
                print(path + "\\tsignatures %s of %d failed" % (bad, count))
                continue
            if sealed:
                cv, _, reason = dkim.arc_verify(msg, dnsfunc=dns)
                if cv != b"pass":
                    print(path + "\\tARC cv=%s: %s" % (cv.decode(), reason))
                    continue
            print(path + "\\tpass")
        """

    struct VerifyError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
