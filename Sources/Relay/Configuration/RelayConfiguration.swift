import DKIM
import DKIMCore
import Keys
import SRS

/// Everything `signet run` needs, as read from the YAML file and the environment.
public struct RelayConfiguration: Sendable, Equatable {
    /// Addresses to accept SMTP on.
    public var listen: [HostPort] = [HostPort(host: "127.0.0.1", port: 10025)]
    /// The name in the greeting and in EHLO to the next hop.
    public var hostname = "localhost"
    /// Where mail goes; nil delivers into the capture folder (first-run and development mode).
    public var nextHop: HostPort?
    /// Folder for generated development keys and captured mail.
    public var stateDirectory = "signet-state"
    /// Folder for captured messages when there is no next hop; defaults to `<state>/captured`.
    public var captureDirectory: String?
    /// Clients allowed to connect; everyone else gets 554 at connect. Loopback by default: never an open relay.
    public var clientNetworks: [NetworkPrefix] = [NetworkPrefix("127.0.0.0/8")!, NetworkPrefix("::1/128")!]
    /// Whether to tell the next hop who the original client is (Postfix XCLIENT or XFORWARD).
    public var forwardClientIdentity = ClientIdentityForwarding.none
    /// Clients whose own XCLIENT and XFORWARD Signet accepts (an MTA in front of it), like Postfix's
    /// `smtpd_authorized_xclient_hosts`; empty by default.
    public var xclientNetworks: [NetworkPrefix] = []
    /// Size and count limits.
    public var limits = Limits()
    /// Timeouts, in seconds.
    public var timeouts = Timeouts()
    /// How many event-loop and signer threads; read at start only.
    public var threads = Threads()
    /// Which mail is signed, with what.
    public var signing = Signing()
    /// Sender Rewriting Scheme for forwarded mail and its bounces; off unless `srs.mode` is set.
    public var srs = SRSSettings()
    /// STARTTLS for clients; nil: not offered.
    public var tls: TLS?
    /// STARTTLS towards the next hop.
    public var nextHopTLS = NextHopTLS()
    /// SMTP AUTH PLAIN for clients; nil: not offered.
    public var auth: Auth?
    /// The resolver verification and sealing use.
    public var dns = DNS()
    /// Inbound mode: verifying DKIM, SPF, DMARC and ARC and recording the results.
    public var authentication = Authentication()
    /// ARC sealing rules.
    public var arc = ARCSettings()

    /// The `dns:` section: libunbound (recursive, or through forwarders), or a static zone file.
    public struct DNS: Sendable, Equatable {
        /// Name servers to forward to; empty: those of the system's resolv.conf.
        public var forwarders: [String] = []
        /// DNSSEC trust anchor file for libunbound; nil: no validation.
        public var trustAnchorFile: String?
        /// Seconds one lookup may take before it counts as a temporary failure.
        public var timeout = 5
        /// Answer from this zone file only (`name [ttl] [IN] TXT|A|AAAA|MX|PTR ...`); for tests and air-gapped hosts.
        public var zoneFile: String?
        public init() {}
    }

    /// The `authentication:` section.
    public struct Authentication: Sendable, Equatable {
        /// Prepend an Authentication-Results field to every message (nothing else is changed or removed).
        public var addResults = false
        /// The authserv-id written; nil: `hostname`.
        public var authservID: String?
        /// DKIM signatures verified per message; later ones get `policy` results.
        public var maxSignatures = 10
        /// Seconds after the end of data that verification may still wait for DNS; what is unanswered by then is a
        /// temperror.
        public var timeBudget = 10
        public init() {}
    }

    /// The `arc:` section: which messages are sealed, with what.
    public struct ARCSettings: Sendable, Equatable {
        /// Rules, first match wins.
        public var rules: [ARCRule] = []
        /// Header fields the ARC-Message-Signature covers by default; the DKIM list when unset.
        public var headers: [String]?
        public init() {}
    }

    /// One sealing rule: every condition given must hold (none given: every message).
    public struct ARCRule: Sendable, Equatable {
        /// The listen address the message came in on (`host:port`, as in `listen`).
        public var listener: HostPort?
        /// A recipient domain (the domain or a subdomain of it).
        public var recipientDomain: String?
        /// The MAIL FROM domain (the domain or a subdomain of it), as the client sent it.
        public var senderDomain: String?
        /// The List-Id field's identifier (`<list.example.org>` or `list.example.org`), compared without case.
        public var listID: String?
        /// Name of the key in `signing.keys` that seals.
        public var key: String
        /// The authserv-id of the AAR; nil: `authentication.authserv_id`, else `hostname`.
        public var authservID: String?
        /// Header fields the ARC-Message-Signature covers; nil: `arc.headers`.
        public var headers: [String]?
        /// Take `cv` and the AAR's results from an Authentication-Results field with this rule's authserv-id
        /// already on the message (written by Signet's inbound mode at this domain's border, before a mailing list
        /// changed the message); without one the chain is validated as received.
        public var trustResults = false
        public init(key: String) {
            self.key = key
        }
    }

    /// Inbound STARTTLS (RFC 3207): the certificate Signet presents and what it demands of clients.
    public struct TLS: Sendable, Equatable {
        /// PEM file: the server certificate first, then the intermediates.
        public var certificateChain: String
        /// PEM file with the certificate's private key.
        public var privateKey: String
        /// Oldest protocol version accepted.
        public var minimumVersion = TLSMinimumVersion.tls12
        /// Refuse MAIL before STARTTLS (530 5.7.0).
        public var require = false
        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    /// The oldest TLS version accepted.
    public enum TLSMinimumVersion: String, Sendable, Equatable {
        case tls12 = "1.2"
        case tls13 = "1.3"
    }

    /// Outbound STARTTLS towards the next hop, with Postfix's security levels in mind.
    public struct NextHopTLS: Sendable, Equatable {
        /// `none`, `opportunistic` (Postfix `may`) or `required` (Postfix `encrypt`/`verify`).
        public var mode = NextHopTLSMode.opportunistic
        /// PEM file of the certificate authorities to trust; nil: the system's.
        public var caFile: String?
        /// Check the certificate chain and the name; nil: only when `mode` is `required`.
        public var verify: Bool?
        /// Name expected in the next hop's certificate and sent as SNI; nil: the next hop's host.
        public var serverName: String?
        public init() {}

        /// Whether the next hop's certificate is checked.
        public var effectiveVerify: Bool { verify ?? (mode == .required) }
    }

    /// How Signet uses STARTTLS towards the next hop.
    public enum NextHopTLSMode: String, Sendable, Equatable {
        /// Never.
        case none
        /// When the next hop offers it; a failed handshake falls back to plain text on a new connection.
        case opportunistic
        /// Always: a next hop without STARTTLS, or a failed handshake, fails the transaction with 451 4.7.5.
        case required
    }

    /// SMTP AUTH (RFC 4954), PLAIN only, against a file of crypt(3) hashes.
    public struct Auth: Sendable, Equatable {
        /// `user:hash` lines (see `PasswordFile`).
        public var passwordFile: String
        /// Clients in `client_networks` must authenticate too (otherwise they may send without, as with
        /// Postfix's permit_mynetworks). Clients outside `client_networks` always must.
        public var required = false
        /// Offer AUTH before STARTTLS; for loopback setups only, the password crosses in the clear.
        public var allowPlaintext = false
        public init(passwordFile: String) {
            self.passwordFile = passwordFile
        }
    }

    /// Address of the HTTP listener for `/metrics`, `/healthz`, `/readyz` and `/debug/config`; nil: none.
    public var metricsListen: HostPort? = HostPort(host: "127.0.0.1", port: 9025)

    /// How the next hop learns the original client's address and HELO.
    public enum ClientIdentityForwarding: String, Sendable, Equatable, CaseIterable {
        /// The next hop sees Signet as the client.
        case none
        /// XFORWARD before each transaction: logging and policy see the original client, access rules still
        /// see Signet (Postfix `smtpd_authorized_xforward_hosts`).
        case xforward
        /// XCLIENT once per connection: the next hop treats the session as if the original client had connected
        /// (Postfix `smtpd_authorized_xclient_hosts`).
        case xclient
    }

    /// Thread counts. 0 (the default) is one per core for each: right for a relay with the machine to itself. A
    /// sidecar that shares its cores with the sender does better with fewer (docs/operations.md).
    public struct Threads: Sendable, Equatable {
        /// Event-loop threads, which run every connection and session.
        public var eventLoops = 0
        /// Signer-pool threads, which run the private-key operations.
        public var signers = 0

        public init() {}

        /// The event-loop count to start with on `cores` cores.
        public func eventLoopCount(cores: Int) -> Int { eventLoops > 0 ? eventLoops : max(1, cores) }
        /// The signer-thread count to start with on `cores` cores.
        public func signerCount(cores: Int) -> Int { signers > 0 ? signers : max(1, cores) }
    }

    /// Size and count limits.
    public struct Limits: Sendable, Equatable {
        /// Concurrent client connections; more get 421 at connect.
        public var maxConnections = 1000
        /// Concurrent connections from one client IP address; more from it get 421 4.7.0 at connect, so one
        /// client cannot take every slot of `maxConnections`. 0: no limit (the default: Signet usually sits
        /// behind one MTA, whose connections all come from one address).
        public var maxConnectionsPerClient = 0
        /// Largest message accepted, advertised as SIZE.
        public var maxMessageSize = 50 * 1024 * 1024
        /// Recipients per transaction (RFC 5321 §4.5.3.1.8 asks for at least 100).
        public var maxRecipients = 1000
        /// Messages larger than this are spooled to a private temporary file instead of memory.
        public var spoolThreshold = 8 * 1024 * 1024
        /// Largest header section (fields and their line ends); a larger one gets 552 5.3.4 at end of data.
        public var maxHeaderSize = 1024 * 1024
        /// Most header fields in one message; more get 552 5.3.4 at end of data.
        public var maxHeaderFields = 1000
        /// Most next-hop connections kept open unused for later clients (`timeouts.next_hop_idle`); each holds a
        /// session (with Postfix, an smtpd process) at the next hop. 0: none kept.
        public var maxIdleNextHopConnections = 20
        public init() {}
    }

    /// Timeouts in seconds; the defaults are RFC 5321 §4.5.3.2's.
    public struct Timeouts: Sendable, Equatable {
        /// Waiting for the next command from the client.
        public var command = 300
        /// Waiting for the next chunk of message data from the client.
        public var dataBlock = 180
        /// Bytes per second a client must keep up for a read to buy it more time (Postfix's smtpd_min_data_rate):
        /// a read of n bytes that does not complete a command moves the deadline on by n / rate seconds only, so
        /// a client trickling a byte at a time (slowloris) still meets `command` or `data_block`. 0 turns it off
        /// (every read re-arms the whole timeout, as RFC 5321 describes).
        public var minDataRate = 500
        /// Connecting to the next hop.
        public var nextHopConnect = 30
        /// Waiting for the next hop to answer a command.
        public var nextHopCommand = 300
        /// Waiting for the next hop to answer the end of data.
        public var nextHopDataEnd = 600
        /// While a message comes in from the client, the next-hop connection (opened at MAIL) has nothing to do; a
        /// NOOP goes to it when it has been quiet this long, so its idle timeout (Postfix's `smtpd_timeout`) never
        /// ends it mid-message. 0: never.
        public var nextHopKeepalive = 30
        /// How long a next-hop connection whose client has left stays open for the next client, as Postfix's
        /// `smtp_connection_cache_time_limit` (2 s). 0: every client connection gets its own.
        public var nextHopIdle = 2
        /// Past this age a next-hop connection is closed when its client leaves rather than kept, as Postfix's
        /// `smtp_connection_reuse_time_limit` (300 s).
        public var nextHopReuse = 300
        /// How long SIGTERM waits for transactions in flight.
        public var shutdownGrace = 30
        public init() {}
    }

    /// Signing keys and the table that picks them by From domain (like OpenDKIM's KeyTable and SigningTable).
    public struct Signing: Sendable, Equatable {
        /// Named keys.
        public var keys: [String: KeyEntry] = [:]
        /// Rules, most specific match wins.
        public var table: [TableEntry] = []
        /// Defaults for every rule.
        public var canonicalization = CanonicalizationPair(header: .relaxed, body: .relaxed)
        public var headers: [String] = DKIMSignerOptions.defaultSignedHeaders
        public var oversign = true
        public var timestamp = true
        /// Seconds to `x=`; 0 writes no `x=`.
        public var expiration = DKIMSignerOptions.defaultExpiration
        /// Where private-key operations happen, for keys that do not say (`KeyEntry.backend`).
        public var backend = SigningBackend.inProcess
        /// `agent`: the account `signet signer` switches to after reading the keys, when started as root.
        public var agentUser = "nobody"
        /// `agent`: seconds a signature may take before the message is answered 451.
        public var agentTimeout = 10
        /// `agent`: connect to an agent already listening on this Unix socket (`signet signer --listen`, its own
        /// container) instead of starting one; nil starts the child.
        public var agentSocket: String?
        public init() {}

        /// Where `entry`'s private key operations happen: its own backend, else the default.
        public func backend(of entry: KeyEntry) -> SigningBackend { entry.backend ?? backend }

        /// Whether any key is held by the signer agent, so that `signet run` must start (or connect to) one.
        public var usesAgent: Bool { keys.values.contains { backend(of: $0) == .agent } }
    }

    /// Where the private keys live.
    public enum SigningBackend: String, Sendable, Equatable, CaseIterable {
        /// In the relay, in OpenSSL's locked secure heap, the process undumpable.
        case inProcess = "in-process"
        /// In a separate `signet signer` process that `signet run` starts and restarts; the relay holds only
        /// public keys.
        case agent
        /// In a PKCS#11 token (an HSM, or SoftHSM2); the relay asks the token to sign and never sees the key.
        case pkcs11
    }

    /// One key: the `d=` and `s=` it signs as, and where it is: a PEM file, or a PKCS#11 token.
    public struct KeyEntry: Sendable, Equatable {
        public var domain: String
        public var selector: String
        /// The PEM file (backends in-process and agent); empty for a PKCS#11 key.
        public var keyFile: String
        /// This key's backend; nil: `signing.backend`.
        public var backend: SigningBackend?
        /// Backend pkcs11: module, token, key and PIN source.
        public var pkcs11: PKCS11KeyLocation?
        /// Expected algorithm; checked against the key file when set.
        public var algorithm: DKIMAlgorithm?
        /// When the key must be replaced (Unix time), exported as `signet_key_expiry_timestamp_seconds` so an alert
        /// fires before it; PEM files carry no expiry of their own.
        public var expires: Int?
        public init(domain: String, selector: String, keyFile: String, algorithm: DKIMAlgorithm? = nil) {
            self.domain = domain
            self.selector = selector
            self.keyFile = keyFile
            self.algorithm = algorithm
        }

        /// A key held in a PKCS#11 token.
        public init(domain: String, selector: String, pkcs11: PKCS11KeyLocation, algorithm: DKIMAlgorithm? = nil) {
            self.init(domain: domain, selector: selector, keyFile: "", algorithm: algorithm)
            self.backend = .pkcs11
            self.pkcs11 = pkcs11
        }

        /// "key file PATH" or the PKCS#11 location, for messages.
        public var source: String {
            if let pkcs11, keyFile.isEmpty { return "PKCS#11 key \(pkcs11)" }
            return "key file \(keyFile)"
        }
    }

    /// One signing rule: From domains it covers and the keys that sign them.
    public struct TableEntry: Sendable, Equatable {
        /// `example.com` (that domain and its subdomains), `*.example.com` (subdomains only) or `*` (everything).
        public var from: String
        /// Names from `keys`; two keys give two signatures (e.g. RSA and Ed25519).
        public var keys: [String]
        public var canonicalization: CanonicalizationPair?
        public var headers: [String]?
        public init(
            from: String, keys: [String], canonicalization: CanonicalizationPair? = nil, headers: [String]? = nil
        ) {
            self.from = from
            self.keys = keys
            self.canonicalization = canonicalization
            self.headers = headers
        }
    }

    /// The `srs:` section: how envelope addresses are rewritten (Mail::SRS Guarded scheme, postsrsd compatible).
    public struct SRSSettings: Sendable, Equatable {
        /// What the relay rewrites.
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            /// Nothing.
            case off
            /// MAIL FROM of relayed mail from non-local senders becomes an SRS address of `domain`.
            case forward
            /// RCPT TO of SRS addresses of `domain` (bounces) becomes the original sender; forged or expired ones
            /// are refused with 550.
            case reverse
            /// Both: one relay for the forwarded mail and the bounces coming back.
            case both
        }

        /// What happens when a rewritten sender would exceed 64 octets of local part.
        public enum TooLongFallback: String, Sendable, Equatable, CaseIterable {
            /// Relay with the sender unchanged (SPF at the receiver may then fail, as without SRS).
            case pass
            /// Answer 451 so that the client keeps the message.
            case tempfail
        }

        public var mode = Mode.off
        /// The forwarder's domain written into SRS addresses (postsrsd `domain`).
        public var domain: String?
        /// Secrets, the first signs and all verify; or read them from `secretsFile` (one a line, as postsrsd).
        public var secrets: [String] = []
        public var secretsFile: String?
        /// Sender domains never rewritten (mail from ourselves); `.example.com` covers subdomains only, as in
        /// postsrsd. The SRS domain itself is always local.
        public var localDomains: [String] = []
        /// Hash alphabet written; both are accepted on reverse.
        public var hashEncoding = SRSHashEncoding.base64
        /// Days an SRS address stays valid.
        public var maxAge = 21
        /// Separator after SRS0/SRS1: `=`, `+` or `-`.
        public var separator = "="
        public var tooLong = TooLongFallback.pass
        public init() {}

        /// Whether MAIL FROM is rewritten.
        public var rewritesSenders: Bool { mode == .forward || mode == .both }
        /// Whether RCPT TO is reversed.
        public var reversesRecipients: Bool { mode == .reverse || mode == .both }
    }

    public init() {}

    /// The capture folder in effect.
    public var effectiveCaptureDirectory: String { captureDirectory ?? stateDirectory + "/captured" }
}
