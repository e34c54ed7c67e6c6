import NIOSSL

/// Builds the relay's TLS contexts from its configuration, in this one place, so that a reload (SIGHUP) rebuilds
/// them the same way and a bad certificate or key is found before anything listens.
public enum TLSContexts {
    /// The context for inbound STARTTLS: the certificate chain and key of `tls`, its minimum version.
    public static func server(_ tls: RelayConfiguration.TLS) throws(ConfigurationError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(tls.certificateChain)
        } catch {
            throw ConfigurationError(["tls.certificate_chain: cannot read \(tls.certificateChain): \(error)"])
        }
        guard !chain.isEmpty else {
            throw ConfigurationError(["tls.certificate_chain: no PEM certificate in \(tls.certificateChain)"])
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: tls.privateKey, format: .pem)
        } catch {
            throw ConfigurationError(["tls.private_key: cannot read \(tls.privateKey): \(error)"])
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = tls.minimumVersion.nioVersion
        do {
            // The context checks that the key belongs to the certificate.
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(["tls: the certificate chain and private key cannot be used together: \(error)"])
        }
    }

    /// The context for STARTTLS towards the next hop; nil when `mode` is `none`.
    public static func client(_ tls: RelayConfiguration.NextHopTLS) throws(ConfigurationError) -> NIOSSLContext? {
        guard tls.mode != .none else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        // Postfix's `may` does not check the certificate either: an unverified encrypted channel still beats
        // plain text against a passive listener.
        configuration.certificateVerification = tls.effectiveVerify ? .fullVerification : .none
        if let caFile = tls.caFile {
            do {
                _ = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw ConfigurationError(["next_hop_tls.ca_file: cannot read \(caFile): \(error)"])
            }
            configuration.trustRoots = .file(caFile)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw ConfigurationError(["next_hop_tls: cannot build the TLS context: \(error)"])
        }
    }
}

extension RelayConfiguration.TLSMinimumVersion {
    var nioVersion: TLSVersion {
        switch self {
        case .tls12: .tlsv12
        case .tls13: .tlsv13
        }
    }
}
