import MailAuth

/// How the offline commands (`verify`, `seal`, `keys check`) get DNS answers: a zone file (`--dns-file`), or
/// libunbound with the system's resolvers or `--dns-server`.
enum CommandLineDNS {
    /// The zone file at `path`, or an error naming it and the line.
    static func zone(_ path: String) throws -> StaticZone {
        do {
            return try StaticZone(parsing: try IO.readText(path, what: "DNS file"))
        } catch let error as StaticZone.ParseError {
            throw CLIError("DNS file \(path): \(error)")
        }
    }

    /// `dnsFile`'s zone when given, else libunbound.
    static func resolver(
        dnsFile: String?, servers: [String], trustAnchor: String? = nil, timeoutSeconds: Int
    ) throws -> any DNSResolver {
        if let dnsFile { return try zone(dnsFile) }
        do {
            return try UnboundResolver(
                .init(forwarders: servers, trustAnchorFile: trustAnchor, timeout: .seconds(max(timeoutSeconds, 1))))
        } catch {
            throw CLIError("cannot set up DNS: \(error)")
        }
    }
}
