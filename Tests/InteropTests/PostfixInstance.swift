import Foundation

/// A throwaway Postfix: its own main.cf and master.cf, queue, data and mail folders inside one temporary folder,
/// smtpd on 127.0.0.1 at a free port, mail for example.org delivered by virtual(8) into one Maildir (one file per
/// message), the log in a file (no syslog here). Started with `postfix -c DIR start`, which needs root.
final class PostfixInstance {
    let root: URL
    let port: Int
    var maildir: URL { root.appendingPathComponent("mail/inbox/new") }
    var logFile: URL { root.appendingPathComponent("maillog") }
    private var config: URL { root.appendingPathComponent("conf") }
    private var started = false

    /// `extraMain` is appended to main.cf (TLS files, XCLIENT/XFORWARD authorization, ...).
    init(_ root: URL, extraMain: String = "") throws {
        self.root = root
        self.port = RelayEndToEndTests.freePort()
        let fm = FileManager.default
        for name in ["conf", "queue", "data", "mail"] {
            try fm.createDirectory(at: root.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        // Postfix's own checks: the data folder belongs to the mail owner, and mail is delivered as nobody.
        for (owner, path) in [("postfix", "data"), ("nobody:nogroup", "mail")] {
            let chown = try Tools.run("/bin/chown", [owner, root.appendingPathComponent(path).path])
            guard chown.status == 0 else { throw ToolError("chown \(owner) \(path): \(chown.stderr)") }
        }
        // The postfix user must be able to reach its folders.
        var walk = root
        while walk.path != "/" && walk.path.count > 1 {
            _ = chmod(walk.path, 0o755)
            walk = walk.deletingLastPathComponent()
            if walk.path == FileManager.default.temporaryDirectory.path { break }
        }
        let main = """
            compatibility_level = 3.6
            config_directory = \(config.path)
            queue_directory = \(root.path)/queue
            data_directory = \(root.path)/data
            maillog_file = \(logFile.path)
            maillog_file_prefixes = \(root.path)
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            myhostname = mx.example.org
            mydestination =
            mynetworks = 127.0.0.0/8
            alias_maps =
            alias_database =
            virtual_mailbox_domains = example.org
            virtual_mailbox_base = \(root.path)/mail
            virtual_mailbox_maps = static:inbox/
            virtual_uid_maps = static:65534
            virtual_gid_maps = static:65534
            # No header rewriting: Postfix must not add or change fields the signature covers.
            local_header_rewrite_clients =
            biff = no
            \(extraMain)

            """
        // chroot off: the sandbox has no /var/spool/postfix copy of the libraries a chroot needs.
        let master = """
            127.0.0.1:\(port) inet n - n - - smtpd
            pickup    unix  n - n 60 1 pickup
            cleanup   unix  n - n - 0 cleanup
            qmgr      unix  n - n 300 1 qmgr
            rewrite   unix  - - n - - trivial-rewrite
            bounce    unix  - - n - 0 bounce
            defer     unix  - - n - 0 bounce
            trace     unix  - - n - 0 bounce
            verify    unix  - - n - 1 verify
            flush     unix  n - n 1000 0 flush
            proxymap  unix  - - n - - proxymap
            smtp      unix  - - n - - smtp
            relay     unix  - - n - - smtp
            showq     unix  n - n - - showq
            error     unix  - - n - - error
            retry     unix  - - n - - error
            discard   unix  - - n - - discard
            local     unix  - n n - - local
            virtual   unix  - n n - - virtual
            anvil     unix  - - n - 1 anvil
            scache    unix  - - n - 1 scache
            postlog   unix-dgram n - n - 1 postlogd
            tlsmgr    unix  - - n 1000? 1 tlsmgr

            """
        try main.write(to: config.appendingPathComponent("main.cf"), atomically: true, encoding: .utf8)
        try master.write(to: config.appendingPathComponent("master.cf"), atomically: true, encoding: .utf8)
    }

    /// Starts Postfix and waits (bounded) until smtpd accepts connections.
    func start() throws {
        guard getuid() == 0 else {
            throw ToolError("a throwaway Postfix instance needs root (postfix start runs master as root)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/postfix") else {
            throw ToolError("/usr/sbin/postfix is missing: run `make deps` (scripts/install-deps.sh installs postfix)")
        }
        let result = try Tools.run("/usr/sbin/postfix", ["-c", config.path, "start"], timeout: 60)
        started = true
        guard result.status == 0 else {
            throw ToolError("postfix start failed (\(result.status)): \(result.stderr)\n\(log)")
        }
        do {
            try RelayEndToEndTests.waitForPort(port)
        } catch {
            throw ToolError("\(error); Postfix log:\n\(log)")
        }
    }

    /// `postfix stop`, then SIGKILL to the master if it is still there; bounded either way.
    func stop() {
        guard started else { return }
        started = false
        _ = try? Tools.run("/usr/sbin/postfix", ["-c", config.path, "stop"], timeout: 30)
        let pidFile = root.appendingPathComponent("queue/pid/master.pid")
        if let text = try? String(contentsOf: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
        {
            let deadline = Date().addingTimeInterval(10)
            while kill(pid, 0) == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        }
    }

    deinit { stop() }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "(no Postfix log at \(logFile.path))" }

    /// The delivered messages' files, sorted by name.
    func delivered() throws -> [URL] {
        guard FileManager.default.fileExists(atPath: maildir.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: maildir.path).sorted().map {
            maildir.appendingPathComponent($0)
        }
    }
}
