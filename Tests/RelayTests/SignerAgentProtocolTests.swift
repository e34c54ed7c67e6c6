import Foundation
import Keys
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import Relay

/// The signer agent's frames, and one agent server and client talking over a socketpair in this process.
@Suite("Signer agent protocol")
struct SignerAgentProtocolTests {
    @Test func framesRoundTrip() throws {
        var buffer = ByteBuffer()
        let sign = SignerAgentProtocol.Request.sign(id: 7, keyID: "main", algorithm: .ed25519, digest: Array(0..<32))
        SignerAgentProtocol.encode(sign, into: &buffer)
        SignerAgentProtocol.encode(.keys(id: 8), into: &buffer)
        // Split anywhere: nothing is decoded before a whole frame is there.
        var partial = buffer.getSlice(at: 0, length: 10)!
        #expect(try SignerAgentProtocol.nextFrame(&partial) == nil)
        #expect(try SignerAgentProtocol.decodeRequest(try #require(try SignerAgentProtocol.nextFrame(&buffer))) == sign)
        #expect(try SignerAgentProtocol.decodeRequest(try #require(try SignerAgentProtocol.nextFrame(&buffer))) == .keys(id: 8))
        #expect(buffer.readableBytes == 0)

        let keys = [SignerAgentProtocol.KeyDescription(id: "a", algorithm: .rsa, publicKeyData: [1, 2, 3])]
        #expect(try SignerAgentProtocol.decodeKeys(SignerAgentProtocol.encode(keys)) == keys)
        let response = SignerAgentProtocol.Response(id: 9, ok: false, body: Array("no".utf8))
        SignerAgentProtocol.encode(response, into: &buffer)
        #expect(try SignerAgentProtocol.decodeResponse(try #require(try SignerAgentProtocol.nextFrame(&buffer))) == response)
    }

    @Test func malformedInputIsRefused() {
        var huge = ByteBuffer()
        huge.writeInteger(UInt32(SignerAgentProtocol.maximumFrame + 1))
        #expect(throws: SignerAgentProtocol.ProtocolError.self) { try SignerAgentProtocol.nextFrame(&huge) }
        #expect(throws: SignerAgentProtocol.ProtocolError.self) {
            try SignerAgentProtocol.decodeRequest(ByteBuffer(bytes: [1, 1, 0, 0, 0, 1, 9]))
        }
        #expect(throws: SignerAgentProtocol.ProtocolError.self) {
            try SignerAgentProtocol.decodeRequest(ByteBuffer(bytes: [2, 2, 0, 0, 0, 1]))
        }
    }

    // The limit is a safety net against a hang; a CI machine running every suite at once can take over a minute.
    @Test(.timeLimit(.minutes(3)))
    func serverAndClientOverASocketpair() async throws {
        let rsa = try PrivateKey.generateRSA(bits: 2048)
        let ed = try PrivateKey.generateEd25519()
        let server = SignerAgentServer(keys: ["rsa": rsa, "ed": ed], threadCount: 2)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var fds: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        let agentEnd = fds[1]
        let serving = Task { try await server.serve(connectedSocket: agentEnd, group: group) }
        let client = try await SignerAgentConnection.connect(socket: fds[0], group: group)

        let keys = try await client.keys(timeout: .seconds(5))
        #expect(keys.map(\.id) == ["ed", "rsa"])
        #expect(keys.first { $0.id == "rsa" }?.publicKeyData == rsa.publicKey.dkimKeyData)
        let digests = (0..<20).map { index in [UInt8](repeating: UInt8(index), count: 32) }
        // Many at once, answered out of order, each matched to its request.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for digest in digests {
                tasks.addTask {
                    let signature = try await client.sign(keyID: "rsa", algorithm: .rsa, digest: digest, timeout: .seconds(10))
                    #expect(rsa.publicKey.isValidSignature(signature, forSHA256Digest: digest))
                }
                tasks.addTask {
                    let signature = try await client.sign(keyID: "ed", algorithm: .ed25519, digest: digest, timeout: .seconds(10))
                    #expect(ed.publicKey.isValidSignature(signature, forSHA256Digest: digest))
                }
            }
            try await tasks.waitForAll()
        }
        await #expect(throws: SignerAgentError.self) {
            try await client.sign(keyID: "nope", algorithm: .rsa, digest: digests[0], timeout: .seconds(5))
        }
        await #expect(throws: SignerAgentError.self) {
            try await client.sign(keyID: "rsa", algorithm: .ed25519, digest: digests[0], timeout: .seconds(5))
        }
        // The agent gone: requests fail (temporarily) instead of hanging.
        client.close()
        try await serving.value
        await #expect(throws: SignerAgentError.self) {
            try await client.sign(keyID: "rsa", algorithm: .rsa, digest: digests[0], timeout: .seconds(5))
        }
        try await server.shutdown()
        try await group.shutdownGracefully()
    }

    @Test(.timeLimit(.minutes(5)))
    func supervisorConnectsToAListeningAgent() async throws {
        let key = try PrivateKey.generateEd25519()
        let server = SignerAgentServer(keys: ["ed": key], threadCount: 1)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString.prefix(8)).sock").path
        let listener = try await server.listen(path: path, group: group)
        let supervisor = SignerAgentSupervisor(
            group: group, timeout: .seconds(5), metrics: RelayMetrics(), logger: Logger(label: "test"))
        try await supervisor.start(.init(executable: "/nonexistent", keyFiles: [:], user: nil, socketPath: path))
        #expect(supervisor.isConnected)
        #expect(supervisor.agentPID == nil)
        #expect(supervisor.keys.map(\.id) == ["ed"])
        let digest = [UInt8](repeating: 1, count: 32)
        let signature = try await supervisor.sign(keyID: "ed", algorithm: .ed25519, digest: digest)
        #expect(key.publicKey.isValidSignature(signature, forSHA256Digest: digest))
        try await listener.close()
        try await server.shutdown()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: path)
    }

    @Test func backendIsConfigurable() throws {
        let configuration = try ConfigurationLoader.load(
            yaml: "signing: {backend: agent, agent_user: signet, agent_timeout: 3}")
        #expect(configuration.signing.backend == .agent)
        #expect(configuration.signing.agentUser == "signet")
        #expect(configuration.signing.agentTimeout == 3)
        #expect(configuration.signing.agentSocket == nil)
        #expect(
            try ConfigurationLoader.load(yaml: "signing: {agent_socket: /run/signet/signer.sock}").signing.agentSocket
                == "/run/signet/signer.sock")
        #expect(try ConfigurationLoader.load(yaml: nil).signing.backend == .inProcess)
        #expect(
            try ConfigurationLoader.load(yaml: nil, environment: ["SIGNET_SIGNING_BACKEND": "agent"]).signing.backend
                == .agent)
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.load(yaml: "signing: {backend: hsm}") }
    }
}
