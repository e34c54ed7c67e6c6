import ArgumentParser
import Foundation
import Testing

@testable import SignetCLI

/// `signet srs forward` / `reverse`: the names and flags the issue fixes, and a clear reason on every failure.
@Suite("signet srs command line")
struct SRSCommandTests {
    /// Runs a command line; the error message it failed with, or nil.
    func run(_ arguments: [String]) -> String? {
        do {
            var command = try SignetCommand.parseAsRoot(arguments)
            try command.run()
            return nil
        } catch let error as CLIError {
            return error.description
        } catch {
            return SignetCommand.message(for: error)
        }
    }

    let secret = ["--secret", "test-secret-1"]
    let now = ["--now", "1700000000"]

    @Test func forwardAndReverse() {
        #expect(run(["srs", "forward"] + secret + ["--domain", "fwd.example"] + now + ["alice@orig.example"]) == nil)
        #expect(run(["srs", "reverse"] + secret + now + ["SRS0=uvFg=G3=orig.example=alice@fwd.example"]) == nil)
        #expect(
            run(
                ["srs", "reverse", "--secret", "test-new", "--secret", "test-secret-1"] + now + [
                    "SRS0=uvFg=G3=orig.example=alice@fwd.example"
                ])
                == nil)
    }

    @Test func failuresSayWhy() {
        let address = "SRS0=uvFg=G3=orig.example=alice@fwd.example"
        #expect(run(["srs", "reverse", "--secret", "other"] + now + [address])?.contains("invalid SRS hash") == true)
        #expect(run(["srs", "reverse"] + secret + ["--now", "1702000000", address])?.contains("expired") == true)
        #expect(run(["srs", "reverse"] + secret + ["--now", "1699900000", address])?.contains("future") == true)
        #expect(
            run(["srs", "reverse"] + secret + now + ["alice@orig.example"])?.contains("not an SRS address") == true)
        #expect(
            run(["srs", "reverse"] + secret + now + ["--domain", "other.example", address])?.contains(
                "not an SRS address of other.example") == true)
        #expect(run(["srs", "forward"] + secret + now + ["alice@orig.example"])?.contains("--domain") == true)
        #expect(
            run(["srs", "forward", "--domain", "fwd.example", "alice@orig.example"])?.contains("no secret") == true)
        #expect(
            run(["srs", "forward"] + secret + ["--domain", "f.example", "--hash-encoding", "hex", "a@b.example"])?
                .contains("base64url") == true)
        #expect(
            run(["srs", "forward"] + secret + ["--domain", "f.example", "--separator", "#", "a@b.example"])?.contains(
                "--separator") == true)
        let long = "a.rather.long.local.part.for.srs@a.long.subdomain.of.orig.example"
        #expect(
            run(["srs", "forward"] + secret + ["--domain", "fwd.example", long])?.contains("more than 64") == true)
        #expect(run(["srs", "forward"] + secret + ["--domain", "fwd.example", "--allow-long", long]) == nil)
        #expect(
            run(["srs", "forward"] + secret + ["--domain", "fwd.example", "no-at-sign"])?.contains("malformed") == true)
    }
}
