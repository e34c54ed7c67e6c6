import Foundation
import Testing

/// README.md as a reader follows it: every `sh` block runs, in order, in one scratch folder, with the `signet`
/// under test first on the PATH; every `yaml` block of the README and of docs/configuration.md passes
/// `signet check-config`. A block that cannot run as written says why in an annotation on the line before it:
///
///     <!-- readme-test: skip: REASON -->         not run (REASON is required)
///     <!-- readme-test: relay -->                runs while the first-run relay (`make run`) listens on :10025
///     <!-- readme-test: background PORT -->      the last command runs on; it must listen on PORT, then is stopped
///     <!-- readme-test: covered-by FILE: WHY --> not run here; Tests/InteropTests/FILE runs the same commands
///     <!-- readme-test: prebuilt: WHY -->        `swift build` lines are dropped: the build under test is used
///
/// Paths under /etc/signet/ are replaced by generated keys, certificates, a password file and SRS secrets.
/// These tests live in the serialized command-line suite because the first-run relay owns 127.0.0.1:10025.
extension RelayCommandLineTests {
    @Test func readmeShellBlocksRun() throws {
        let sandbox = try ReadmeSandbox()
        defer { sandbox.remove() }
        let blocks = try ReadmeBlocks.parse(try ReadmeBlocks.file("README.md")).filter { $0.language == "sh" }
        var relay: E2E.Running?
        defer { relay?.stop() }
        var seen: Set<String> = []
        for block in blocks {
            let context = "README.md line \(block.line)"
            let script = try sandbox.localize(block.text)
            switch block.annotation {
            case .skip(let reason):
                #expect(!reason.isEmpty, "\(context): a skipped block must say why")
                seen.insert("skip")
            case .coveredBy(let file):
                let path = Tools.packageRoot.appendingPathComponent("Tests/InteropTests/\(file)").path
                #expect(FileManager.default.fileExists(atPath: path), "\(context): \(file) does not exist")
                seen.insert("covered-by")
            case .relay:
                if relay == nil { relay = try sandbox.startFirstRunRelay() }
                let output = try sandbox.bash(script)
                #expect(
                    output.status == 0, "\(context) failed:\n\(output.text)\(output.stderr)\n\(relay?.output ?? "")")
                if script.contains("DKIM-Signature") {
                    // The Must show of the first run: the message sent lands signed in the capture folder.
                    #expect(
                        output.text.contains("DKIM-Signature: v=1;"), "\(context): no signature shown:\n\(output.text)")
                    #expect(output.text.contains("d=signet.test"), "\(context):\n\(output.text)")
                }
                seen.insert("relay")
            case .background(let port):
                try sandbox.runInBackground(script, port: port, context: context)
                seen.insert("background")
            case .prebuilt:
                let kept = script.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.hasPrefix("swift build") }
                #expect(
                    kept.count < script.split(separator: "\n", omittingEmptySubsequences: false).count,
                    "\(context): marked prebuilt but builds nothing")
                let output = try sandbox.bash(kept.joined(separator: "\n"))
                #expect(output.status == 0, "\(context) failed:\n\(output.text)\(output.stderr)")
                seen.insert("prebuilt")
            case nil:
                let output = try sandbox.bash(script)
                #expect(output.status == 0, "\(context) failed:\n\(output.text)\(output.stderr)")
            }
        }
        #expect(
            seen.contains("relay") && seen.contains("background"), "the README lost its relay walk-through: \(seen)")
    }

    /// The issue's fresh clone: `make run` in a clone of HEAD builds the release `signet` from nothing, brings the
    /// relay up, and the README's swaks line lands a signed message in its capture folder. A release build from
    /// scratch takes long, so this runs only when SIGNET_FRESH_CLONE_TEST=1 (a nightly job, or by hand before a
    /// release); `readmeShellBlocksRun` covers the same commands against the build under test on every run.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SIGNET_FRESH_CLONE_TEST"] == "1"))
    func freshCloneMakeRunCapturesSignedMail() throws {
        let dir = try Tools.makeTemporaryDirectory("fresh-clone")
        defer { try? FileManager.default.removeItem(at: dir) }
        let clone = dir.appendingPathComponent("signet")
        let cloned = try Tools.run(
            "/usr/bin/git", ["clone", "--quiet", "--depth", "1", "file://" + Tools.packageRoot.path, clone.path])
        try #require(cloned.status == 0, "git clone: \(cloned.stderr)")
        // Not this suite's switch: the clone's own tests, if ever run, must not recurse into another clone.
        // Process starts the child in a process group of its own: stopping the group reaches the relay make started.
        let make = try RelayEndToEndTests.Running(
            "/usr/bin/env", ["-u", "SIGNET_FRESH_CLONE_TEST", "make", "run"],
            log: dir.appendingPathComponent("make-run.log"), directory: clone)
        defer {
            kill(-make.process.processIdentifier, SIGTERM)
            make.stop()
        }
        try ReadmeSandbox.waitUntilListening(make, seconds: 3600)
        let block = try #require(
            try ReadmeBlocks.parse(try ReadmeBlocks.file("README.md")).first { $0.annotation == .relay })
        let output = try Tools.run(
            "/usr/bin/env",
            [
                "-i", "-C", clone.path, "PATH=/usr/bin:/bin", "HOME=\(dir.path)", "/bin/bash", "-euo", "pipefail", "-c",
                block.text,
            ],
            timeout: 120)
        #expect(output.status == 0, "\(output.text)\(output.stderr)\n\(make.output.suffix(4000))")
        #expect(output.text.contains("DKIM-Signature: v=1;") && output.text.contains("d=signet.test"), "\(output.text)")
    }

    @Test func readmeAndReferenceYAMLPassCheckConfig() throws {
        let sandbox = try ReadmeSandbox()
        defer { sandbox.remove() }
        var checked = 0
        for name in ["README.md", "docs/configuration.md"] {
            for block in try ReadmeBlocks.parse(try ReadmeBlocks.file(name)) where block.language == "yaml" {
                // A block that needs hardware (a PKCS#11 token) names the test that checks such a configuration.
                if case .coveredBy(let test) = block.annotation {
                    let path = Tools.packageRoot.appendingPathComponent("Tests/InteropTests/\(test)").path
                    #expect(FileManager.default.fileExists(atPath: path), "\(name) line \(block.line): \(test) does not exist")
                    continue
                }
                let file = sandbox.dir.appendingPathComponent("block-\(checked).yaml")
                try sandbox.localize(block.text).write(to: file, atomically: true, encoding: .utf8)
                let output = try sandbox.bash("signet check-config \(file.path)")
                #expect(
                    output.status == 0 && output.text.contains("configuration OK"),
                    "\(name) line \(block.line):\n\(block.text)\n\(output.text)\(output.stderr)")
                checked += 1
            }
        }
        #expect(checked >= 8, "expected the README's and the reference's examples, found \(checked)")
    }
}

/// Fenced code blocks of a Markdown file, with the `readme-test` annotation on the line before each.
enum ReadmeBlocks {
    enum Annotation: Equatable {
        case skip(String)
        case relay
        case background(Int)
        case coveredBy(String)
        case prebuilt
    }

    struct Block {
        var language: String
        var text: String
        var annotation: Annotation?
        var line: Int
    }

    static func file(_ relativePath: String) throws -> String {
        try String(contentsOf: Tools.packageRoot.appendingPathComponent(relativePath), encoding: .utf8)
    }

    static func parse(_ markdown: String) throws -> [Block] {
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var blocks: [Block] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else {
                index += 1
                continue
            }
            let language = String(line.dropFirst(3)).trimmingCharacters(in: .whitespaces)
            let previous = index > 0 ? lines[index - 1] : ""
            let annotation = try annotation(previous, line: index)
            var body: [String] = []
            index += 1
            while index < lines.count, !lines[index].hasPrefix("```") {
                body.append(lines[index])
                index += 1
            }
            blocks.append(
                Block(
                    language: language, text: body.joined(separator: "\n"), annotation: annotation,
                    line: index - body.count))
            index += 1
        }
        return blocks
    }

    static func annotation(_ line: String, line number: Int) throws -> Annotation? {
        let prefix = "<!-- readme-test: "
        guard line.hasPrefix(prefix), line.hasSuffix(" -->") else { return nil }
        let content = String(line.dropFirst(prefix.count).dropLast(4))
        let word = content.prefix { $0 != " " && $0 != ":" }
        let rest = content.dropFirst(word.count).drop { $0 == ":" || $0 == " " }
        switch word {
        case "skip": return .skip(String(rest))
        case "relay": return .relay
        case "prebuilt": return .prebuilt
        case "background":
            guard let port = Int(rest.prefix { $0.isNumber }) else {
                throw ToolError("line \(number + 1): background needs a port")
            }
            return .background(port)
        case "covered-by": return .coveredBy(String(rest.prefix { $0 != ":" && $0 != " " }))
        default: throw ToolError("line \(number + 1): unknown readme-test annotation '\(word)'")
        }
    }
}

/// A scratch folder with `signet` on the PATH (and at .build/release/signet, where the README builds it), an
/// environment without the test runner's SIGNET_* variables, and fixtures for the paths the README names.
final class ReadmeSandbox {
    let dir: URL
    let bin: URL
    let etc: URL
    let signet: String

    init() throws {
        dir = try Tools.makeTemporaryDirectory("readme")
        bin = dir.appendingPathComponent("bin")
        etc = dir.appendingPathComponent("etc-signet")
        signet = try Tools.signet
        let release = dir.appendingPathComponent(".build/release")
        for folder in [bin, etc, release] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        }
        try FileManager.default.createSymbolicLink(
            atPath: bin.appendingPathComponent("signet").path, withDestinationPath: signet)
        try FileManager.default.createSymbolicLink(
            atPath: release.appendingPathComponent("signet").path, withDestinationPath: signet)
    }

    func remove() { try? FileManager.default.removeItem(at: dir) }

    var environment: [String: String] {
        ["PATH": bin.path + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": dir.path, "LANG": "C.UTF-8"]
    }

    /// Runs `script` with bash (errors stop it) in the scratch folder, in a clean environment.
    func bash(_ script: String, timeout: TimeInterval = 120) throws -> Tools.Output {
        let file = dir.appendingPathComponent("block-\(UUID().uuidString).sh")
        try script.write(to: file, atomically: true, encoding: .utf8)
        let assignments = environment.map { "\($0.key)=\($0.value)" }
        return try Tools.run(
            "/usr/bin/env", ["-i", "-C", dir.path] + assignments + ["/bin/bash", "-euo", "pipefail", file.path],
            timeout: timeout)
    }

    /// What `make run` starts: the Makefile's run recipe is `<release bin path>/signet run`, checked here so the
    /// two cannot drift; the test runs the same command from its own build.
    func startFirstRunRelay() throws -> RelayEndToEndTests.Running {
        let makefile = try ReadmeBlocks.file("Makefile").split(separator: "\n").map(String.init)
        let target = try #require(makefile.firstIndex { $0.hasPrefix("run:") })
        let recipe = makefile[target + 1].trimmingCharacters(in: .whitespaces)
        #expect(recipe.hasSuffix("/signet run"), "make run no longer starts `signet run`: \(recipe)")
        let relay = try RelayEndToEndTests.Running(
            signet, ["run"], log: dir.appendingPathComponent("make-run.log"), environment: environment, directory: dir)
        try Self.waitUntilListening(relay, seconds: 30)
        return relay
    }

    /// Until the relay's own log says it listens on 127.0.0.1:10025: a connect test alone could reach another
    /// program on that port (other test runs on the machine) and pass too early.
    static func waitUntilListening(_ relay: RelayEndToEndTests.Running, seconds: Double) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let output = relay.output
            if output.contains("127.0.0.1:10025 [Relay] listening") { return }
            guard relay.process.isRunning else { throw ToolError("exited before listening:\n\(output.suffix(4000))") }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw ToolError("not listening on 127.0.0.1:10025 after \(Int(seconds)) s:\n\(relay.output.suffix(4000))")
    }

    /// Every command but the last runs to completion; the last must start listening on `port`, then is stopped.
    func runInBackground(_ script: String, port: Int, context: String) throws {
        var commands: [String] = []
        var current = ""
        for line in script.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).hasPrefix("#") {
            current += line.hasSuffix("\\") ? String(line.dropLast()) + " " : String(line)
            if !line.hasSuffix("\\") {
                commands.append(current)
                current = ""
            }
        }
        guard let last = commands.popLast() else { throw ToolError("\(context): empty block") }
        if !commands.isEmpty {
            let setup = try bash(commands.joined(separator: "\n"))
            #expect(setup.status == 0, "\(context) failed:\n\(setup.text)\(setup.stderr)")
        }
        // exec: the stop signal must reach the program, not a shell around it.
        let running = try RelayEndToEndTests.Running(
            "/bin/bash", ["-c", "exec " + last], log: dir.appendingPathComponent("background-\(port).log"),
            environment: environment, directory: dir)
        defer { running.stop() }
        do {
            try RelayEndToEndTests.waitForPort(port)
        } catch {
            Issue.record("\(context): \(error)\n\(running.output)")
        }
        #expect(running.process.isRunning, "\(context): exited:\n\(running.output)")
    }

    /// The text with each /etc/signet/... path replaced by a generated file of the kind its name says.
    func localize(_ text: String) throws -> String {
        var result = text
        let pattern = try Regex("/etc/signet/[A-Za-z0-9_./-]+")
        for match in text.matches(of: pattern).reversed() {
            let path = String(text[match.range])
            let local = etc.appendingPathComponent(String(path.dropFirst("/etc/signet/".count)))
            try fixture(local, for: path)
            result.replaceSubrange(match.range, with: local.path)
        }
        return result
    }

    private func fixture(_ file: URL, for original: String) throws {
        guard !FileManager.default.fileExists(atPath: file.path) else { return }
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let name = file.lastPathComponent
        func check(_ output: Tools.Output) throws {
            guard output.status == 0 else { throw ToolError("making \(original): \(output.text)\(output.stderr)") }
        }
        if name == "passwd" {
            let hash = try Tools.run("/usr/bin/openssl", ["passwd", "-6", "-salt", "readmetest", "secret"])
            try check(hash)
            try "alice:\(hash.text)".write(to: file, atomically: true, encoding: .utf8)
        } else if name == "srs-secrets" {
            try "readme-test-secret\n".write(to: file, atomically: true, encoding: .utf8)
        } else if original.contains("/tls/") {
            // One self-signed pair serves as chain, key and CA file.
            let certificate = etc.appendingPathComponent("tls-certificate.pem")
            let key = etc.appendingPathComponent("tls-key.pem")
            if !FileManager.default.fileExists(atPath: certificate.path) {
                try check(
                    try Tools.run(
                        "/usr/bin/openssl",
                        [
                            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=signer.example.com",
                            "-keyout", key.path, "-out", certificate.path,
                        ]))
            }
            try FileManager.default.copyItem(at: name.contains("key") ? key : certificate, to: file)
        } else if name.hasSuffix(".pem") {
            let algorithm = name.hasPrefix("ed") ? "ed25519-sha256" : "rsa-sha256"
            try check(
                try Tools.run(
                    signet,
                    [
                        "keygen", "--algorithm", algorithm, "--out", file.path, "--selector", "readme", "--domain",
                        "example.com",
                    ]))
        } else {
            throw ToolError("no fixture for \(original): teach ReadmeSandbox.fixture how to make one")
        }
    }
}
