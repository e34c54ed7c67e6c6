import ArgumentParser
import Dispatch
import SignetCLI

#if canImport(Glibc)
    import Glibc
#endif

/// Entry point of the `signet` executable.
@main
enum Signet {
    /// Synchronous on purpose: `signet signer` reads its keys and gives up root here, while the process has one
    /// thread. Dropped later, from an async context, glibc left the parked main thread running as root.
    static func main() {
        SignerCommand.prepareBeforeThreads(Array(CommandLine.arguments.dropFirst()))
        Task {
            await SignetCommand.main()
            exit(0)
        }
        dispatchMain()
    }
}
