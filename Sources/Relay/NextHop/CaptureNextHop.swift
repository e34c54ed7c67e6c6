import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPProtocol

/// The first-run next hop: every message becomes one `.eml` file in a folder, so a new user sees signed mail
/// without setting up an MTA. Written to a temporary name and renamed, so a file that exists is complete.
struct CaptureNextHop: NextHop {
    let directory: String

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
    }

    func connect(on eventLoop: (any EventLoop)?) async throws -> any NextHopSession {
        CaptureSession(directory: directory)
    }
}

final class CaptureSession: NextHopSession {
    private static let counter = NIOLockedValueBox(0)
    let directory: String
    let capabilities: SMTPCapabilities = {
        var capabilities = SMTPCapabilities()
        capabilities.pipelining = true
        capabilities.chunking = true
        capabilities.eightBitMIME = true
        capabilities.smtpUTF8 = true
        capabilities.enhancedStatusCodes = true
        return capabilities
    }()

    init(directory: String) {
        self.directory = directory
    }

    var isUsable: Bool { true }

    /// Files have no connection that could close under the session.
    func whenClosed(_ callback: @escaping @Sendable () -> Void) {}

    func mail(
        from: String, parameters: [SMTPParameter], client: ClientIdentity,
        recipients: [(to: String, parameters: [SMTPParameter])]
    ) async -> [SMTPReply] {
        var replies = [SMTPReply(code: 250, EnhancedStatusCode(2, 1, 0), "sender ok (capture)")]
        for recipient in recipients {
            replies.append(await self.recipient(to: recipient.to, parameters: recipient.parameters))
        }
        return replies
    }

    func recipient(to: String, parameters: [SMTPParameter]) async -> SMTPReply {
        SMTPReply(code: 250, EnhancedStatusCode(2, 1, 5), "recipient ok (capture)")
    }

    func reset() async -> SMTPReply {
        SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "reset")
    }

    /// Capture never fails, so never needs a retry.
    var hasCarriedMail: Bool { false }

    func noop() async -> SMTPReply {
        SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "ok (capture)")
    }

    func message(prepending fields: [String], content: MessageContent) async -> SMTPReply {
        let number = Self.counter.withLockedValue { value -> Int in
            value += 1
            return value
        }
        let name = String(format: "%.0f-%d-%d.eml", Date().timeIntervalSince1970 * 1000, getpid(), number)
        let final = directory + "/" + name
        let temporary = directory + "/." + name + ".tmp"
        do {
            var data = Data(fields.joined().utf8)
            let bytes = try content.collected()
            data.append(contentsOf: bytes.readableBytesView)
            // Sessions run on event loops; file writes go to NIO's blocking-I/O pool.
            try await NIOThreadPool.singleton.runIfActive { [data] in
                try data.write(to: URL(fileURLWithPath: temporary))
                try FileManager.default.moveItem(atPath: temporary, toPath: final)
            }
        } catch {
            return SMTPReply(code: 451, EnhancedStatusCode(4, 3, 0), "could not store the message: \(error)")
        }
        return SMTPReply(code: 250, EnhancedStatusCode(2, 0, 0), "captured as \(final)")
    }

    func quit() async {}
}
