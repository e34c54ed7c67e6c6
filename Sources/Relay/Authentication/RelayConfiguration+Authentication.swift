extension RelayConfiguration {
    /// For `signet check-config`: builds the resolver and every sealing rule's sealer (reading the zone file and
    /// checking each sealing key), and says what the relay will verify and seal.
    public func checkAuthentication(table: SigningTable) throws(ConfigurationError) -> String {
        let sealing = try SealingPolicy(self) { name, options in try table.sealer(forKey: name, options: options) }
        guard authentication.addResults || !sealing.isEmpty else { return "no verification, no ARC sealing" }
        _ = try RelayResolver.make(dns)
        let resolver = dns.zoneFile.map { "zone file \($0)" } ?? "libunbound"
        let results = authentication.addResults ? "Authentication-Results added" : "no Authentication-Results"
        return "\(results), \(sealing.rules.count) ARC sealing rules, DNS from \(resolver)"
    }
}
