import DKIM
import DKIMCore
import Keys
import MailMessage
import NIOCore

/// What sealing a message came to.
public enum ARCSealOutcome: Sendable {
    /// The three fields to prepend, in this order (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results),
    /// each ending in CRLF.
    case sealed([String], instance: Int, chainStatus: ARCChainStatus)
    /// Nothing to add, and why (a chain that already failed, the instance limit).
    case notSealed(String)

    /// The fields to prepend; empty when not sealed.
    public var fields: [String] {
        if case .sealed(let fields, _, _) = self { return fields }
        return []
    }
}

/// Adds an ARC set to a message (RFC 8617 §5.1): ARC-Authentication-Results, ARC-Message-Signature
/// (relaxed/relaxed, the header list of a DKIM signer) and ARC-Seal.
public struct ARCSealer: Sendable {
    /// Does the key operation; the relay may route it to a signer pool or agent.
    public typealias SignDigest = @Sendable (_ digest: [UInt8]) throws -> [UInt8]

    /// Domain, selector, key, algorithm and the AMS header list (`signedHeaders`, `oversign`,
    /// `explicitHeaderList`), checked like DKIM's; its canonicalization and timestamp options are not used.
    public let signer: DKIMSigner

    /// - Throws: `DKIMError` for an unusable domain or selector, or a key that does not fit `algorithm`.
    public init(
        domain: String,
        selector: String,
        key: any DigestSigningKey,
        algorithm: DKIMAlgorithm? = nil,
        options: DKIMSignerOptions = ARCSealer.defaultOptions
    ) throws {
        signer = try DKIMSigner(
            signingKey: key, domain: domain, selector: selector, algorithm: algorithm, options: options)
    }

    /// A sealer whose private key lives in a signer agent (known there as `keyReference`): every `seal` call
    /// must pass `sign`.
    public init(
        domain: String,
        selector: String,
        publicKey: PublicKey,
        keyReference: String,
        algorithm: DKIMAlgorithm? = nil,
        options: DKIMSignerOptions = ARCSealer.defaultOptions
    ) throws {
        signer = try DKIMSigner(
            domain: domain, selector: selector, publicKey: publicKey, keyReference: keyReference, algorithm: algorithm,
            options: options)
    }

    /// The DKIM defaults without oversigning: a later hop (a list) may add fields the AMS need not lock out.
    public static var defaultOptions: DKIMSignerOptions {
        var options = DKIMSignerOptions()
        options.oversign = false
        return options
    }

    /// The body hash the AMS needs (relaxed, whole body): the same key as a relaxed DKIM signature's, so one
    /// pass over the body serves both.
    public static let bodyHasherKey = BodyHasher.Key(canonicalization: .relaxed)

    /// Seals a message read whole, computing the body hash.
    public func seal(
        _ message: WholeMessage,
        chainStatus: ARCChainStatus,
        authservID: String,
        results: String,
        now: Int
    ) throws -> ARCSealOutcome {
        var hasher = BodyHasher(Self.bodyHasherKey)
        hasher.update(message.body)
        return try seal(
            header: message.header, bodyHash: hasher.finalize(), chainStatus: chainStatus, authservID: authservID,
            results: results, now: now)
    }

    /// Seals a message whose relaxed body hash is already known.
    /// - Parameters:
    ///   - chainStatus: the incoming chain's validation (`ARCValidator`), the new seal's `cv=`.
    ///   - results: this hop's authentication results for the AAR (`dkim=pass header.d=...; spf=...`), without
    ///     the authserv-id.
    ///   - sign: the private-key operation; the signer's own key by default.
    public func seal(
        header: MessageHeader,
        bodyHash: BodyHasher.Result,
        chainStatus: ARCChainStatus,
        authservID: String,
        results: String,
        now: Int,
        sign: SignDigest? = nil
    ) throws -> ARCSealOutcome {
        let chain = ARCChain(header: header)
        let instance = chain.highestInstance + 1
        if chain.newestSealStatus == .fail {
            return .notSealed("the newest ARC-Seal already has cv=fail; the chain is not continued")
        }
        guard instance <= ARCChain.maximumInstance else {
            return .notSealed("the chain already has \(chain.highestInstance) sets, the most RFC 8617 allows")
        }
        if instance > 1 && chainStatus == .none {
            return .notSealed("a chain of \(chain.highestInstance) sets needs a cv of pass or fail, not none")
        }
        if instance == 1 && chainStatus != .none {
            return .notSealed("cv=\(chainStatus.rawValue) with no chain on the message")
        }
        guard authservID.utf8.allSatisfy({ $0 > 0x20 && $0 != UInt8(ascii: ";") && $0 < 0x7F }), !authservID.isEmpty
        else { throw ARCError("invalid authserv-id \"\(authservID)\"") }
        let signDigest: SignDigest
        if let sign {
            // A signature made elsewhere (a signer agent, a token) is checked before it leaves, as the relay
            // checks DKIM signatures from its agent: a wrong key would otherwise break every chain silently.
            let publicKey = signer.publicKey
            signDigest = { digest in
                let signature = try sign(digest)
                guard publicKey.isValidSignature(signature, forSHA256Digest: digest) else {
                    throw ARCError("the signature made for d=\(self.signer.domain) does not match its public key")
                }
                return signature
            }
        } else if let key = signer.signingKey {
            signDigest = { digest in try key.signature(forSHA256Digest: digest) }
        } else {
            throw ARCError("the key for d=\(signer.domain) s=\(signer.selector) is held by a signer agent")
        }

        // Unfolded onto one line: a line break the caller left in must not end the field early.
        let trimmedResults = Self.unfolded(results).arcTrimmed
        let aarText =
            "ARC-Authentication-Results: i=\(instance); \(authservID);"
            + (trimmedResults.isEmpty ? " none" : "\r\n " + trimmedResults) + "\r\n"
        let aar = try Self.field(aarText)

        // Tags in alphabetical order, as the public ARC test suite's reference signatures have them.
        let (names, signedFields) = signer.signedFieldSelection(for: header)
        var amsTags: [(String, String)] = [
            ("a", signer.algorithm.rawValue), ("b", ""), ("bh", Base64.encode(bodyHash.hash)),
            ("c", "relaxed/relaxed"), ("d", signer.domain), ("h", names.joined(separator: ":")),
            ("i", String(instance)), ("s", signer.selector), ("t", String(now)),
        ]
        let amsDigest = HeaderHasher.digest(
            signedFields: signedFields,
            signatureField: ByteBuffer(string: Self.format("ARC-Message-Signature", amsTags)),
            canonicalization: .relaxed
        )
        amsTags[1].1 = Base64.encode(try signDigest(amsDigest))
        let amsText = Self.format("ARC-Message-Signature", amsTags) + "\r\n"
        let ams = try Self.field(amsText)

        var asTags: [(String, String)] = [
            ("a", signer.algorithm.rawValue), ("b", ""), ("cv", chainStatus.rawValue), ("d", signer.domain),
            ("i", String(instance)), ("s", signer.selector), ("t", String(now)),
        ]
        let unsignedSeal = try Self.field(Self.format("ARC-Seal", asTags) + "\r\n")
        let newSet = ARCSet(instance: instance, authenticationResults: aar, messageSignature: ams, seal: unsignedSeal)
        // A failed chain is sealed over this set only (RFC 8617 §5.1.2): the broken sets are not vouched for.
        let covered = chainStatus == .fail ? [newSet] : chain.sets + [newSet]
        asTags[1].1 = Base64.encode(try signDigest(ARCSealDigest.digest(sets: covered[...])))
        let asText = Self.format("ARC-Seal", asTags) + "\r\n"
        return .sealed([asText, amsText, aarText], instance: instance, chainStatus: chainStatus)
    }

    /// Every line break, with the white space around it, as one space.
    static func unfolded(_ text: String) -> String {
        var out = ""
        var pendingBreak = false
        for character in text {
            if character == "\r" || character == "\n" || character == "\r\n" {
                pendingBreak = true
                while out.last == " " || out.last == "\t" { out.removeLast() }
                continue
            }
            if pendingBreak {
                if character == " " || character == "\t" { continue }
                out.append(" ")
                pendingBreak = false
            }
            out.append(character)
        }
        return out
    }

    private static func field(_ text: String) throws -> HeaderField {
        try HeaderField(raw: ByteBuffer(string: text))
    }

    /// `Name: t1=v1; t2=v2` folded between tags before 78 columns, never inside a value, so relaxed
    /// canonicalization of the field does not depend on where it was folded.
    static func format(_ name: String, _ tags: [(String, String)]) -> String {
        var text = name + ":"
        var column = text.utf8.count
        for (index, (tag, value)) in tags.enumerated() {
            let piece = tag + "=" + value + (index < tags.count - 1 ? ";" : "")
            if column + 1 + piece.utf8.count > 78 && column > name.utf8.count + 1 {
                // A space, not a tab: dkimpy finds the AMS of instance N by looking for " i=N;" in it.
                text += "\r\n "
                column = 1
            } else {
                text += " "
                column += 1
            }
            text += piece
            column += piece.utf8.count
        }
        return text
    }
}
