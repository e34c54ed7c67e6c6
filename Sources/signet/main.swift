import ArgumentParser
import SignetCLI

SignetCommand.main()
