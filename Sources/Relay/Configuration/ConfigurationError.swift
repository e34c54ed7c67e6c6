/// A configuration that cannot be used; `problems` name each key and what is wrong with it.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// One line per problem, each starting with the key path (`limits.max_connections: ...`).
    public var problems: [String]

    /// An error with its problems.
    public init(_ problems: [String]) {
        self.problems = problems
    }

    public var description: String {
        problems.count == 1 ? problems[0] : problems.map { "- " + $0 }.joined(separator: "\n")
    }
}
