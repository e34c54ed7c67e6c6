import ArgumentParser
import SignetCLI

/// Entry point of the `signet` executable.
@main
enum Signet {
    static func main() async {
        await SignetCommand.main()
    }
}
