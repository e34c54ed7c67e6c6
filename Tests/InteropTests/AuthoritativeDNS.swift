import Foundation

/// A real authoritative DNS server (NSD, Debian `nsd`) serving test zones on 127.0.0.1, for the libunbound tests.
final class AuthoritativeDNS {
    let port: Int
    let directory: URL
    private let process: Process

    /// Starts NSD with `zones` (zone name → zone file text); waits until it answers on TCP.
    init(zones: [String: String]) throws {
        let nsd = "/usr/sbin/nsd"
        guard FileManager.default.isExecutableFile(atPath: nsd) else {
            throw ToolError("\(nsd) is missing: `make test` installs the Debian package nsd")
        }
        directory = try Tools.makeTemporaryDirectory("nsd")
        var lastError = ""
        for _ in 0..<5 {
            let port = try Self.freePort()
            var config = """
                server:
                  ip-address: 127.0.0.1
                  port: \(port)
                  do-ip6: no
                  username: ""
                  chroot: ""
                  zonesdir: "\(directory.path)"
                  database: ""
                  pidfile: "\(directory.path)/nsd.pid"
                  xfrdfile: "\(directory.path)/xfrd.state"
                  zonelistfile: "\(directory.path)/zone.list"
                  logfile: "\(directory.path)/nsd.log"
                  server-count: 1
                  verbosity: 1
                remote-control:
                  control-enable: no

                """
            for (name, text) in zones.sorted(by: { $0.key < $1.key }) {
                try text.write(to: directory.appendingPathComponent("\(name).zone"), atomically: true, encoding: .utf8)
                config += "zone:\n  name: \(name)\n  zonefile: \(name).zone\n"
            }
            let configURL = directory.appendingPathComponent("nsd.conf")
            try config.write(to: configURL, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: nsd)
            process.arguments = ["-d", "-c", configURL.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            for _ in 0..<100 where process.isRunning {
                if let fd = try? Tools.connectToLoopback(port: port) {
                    close(fd)
                    self.port = port
                    self.process = process
                    return
                }
                usleep(50_000)
            }
            lastError = (try? String(contentsOf: directory.appendingPathComponent("nsd.log"), encoding: .utf8)) ?? ""
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        throw ToolError("nsd did not start: \(lastError)")
    }

    /// `127.0.0.1@port`, as libunbound names a server.
    var address: String { "127.0.0.1@\(port)" }

    func stop() {
        // Children of the test runner do not see SIGTERM (it is blocked there), so SIGKILL.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    /// A port that is free for TCP now (NSD binds UDP on the same number; a clash is retried).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else { throw ToolError("cannot find a free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
