import Foundation
import MailAuth

/// The resolver `dns:` describes: a static zone file, or libunbound (the system's resolv.conf, or forwarders).
enum RelayResolver {
    static func make(_ dns: RelayConfiguration.DNS) throws(ConfigurationError) -> any DNSResolver {
        if let zoneFile = dns.zoneFile {
            let text: String
            do {
                text = try String(contentsOfFile: zoneFile, encoding: .utf8)
            } catch {
                throw ConfigurationError(["dns.zone_file: cannot read \(zoneFile): \(error.localizedDescription)"])
            }
            do {
                return try StaticZone(parsing: text)
            } catch {
                throw ConfigurationError(["dns.zone_file: \(zoneFile) \(error)"])
            }
        }
        let configuration = UnboundResolver.Configuration(
            forwarders: dns.forwarders, trustAnchorFile: dns.trustAnchorFile, timeout: .seconds(dns.timeout))
        do {
            return try UnboundResolver(configuration)
        } catch {
            throw ConfigurationError(["dns: libunbound refused the configuration: \(error)"])
        }
    }
}
