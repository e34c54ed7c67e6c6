import Foundation
import Logging
import NIOConcurrencyHelpers
import Testing

@testable import Observability

@Suite("JSON log handler: one object per line")
struct JSONLogHandlerTests {
    /// Lines written through a logger with the handler, parsed back with Foundation's JSON parser.
    final class Capture: Sendable {
        private let bytes = NIOLockedValueBox<[UInt8]>([])
        var output: JSONLogHandler.Output {
            JSONLogHandler.Output { line in self.bytes.withLockedValue { $0 += line } }
        }
        var text: String { String(decoding: bytes.withLockedValue { $0 }, as: UTF8.self) }
        func objects() throws -> [[String: Any]] {
            try text.split(separator: "\n").map { line in
                try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            }
        }
    }

    @Test func writesOneParsableObjectPerLine() throws {
        let capture = Capture()
        var logger = Logger(label: "signet") { JSONLogHandler(label: $0, output: capture.output) }
        logger[metadataKey: "peer"] = "127.0.0.1:4000"
        logger.info(
            "transaction",
            metadata: [
                "id": "ABC", "recipients": "2", "signatures": .array(["d=example.com s=rsa", "d=example.com s=ed"]),
                "durations": .dictionary(["signing_ms": "1.5"]),
            ])
        logger.debug("not shown at info")
        logger.warning("second line")
        let objects = try capture.objects()
        #expect(objects.count == 2)
        let first = objects[0]
        #expect(first["msg"] as? String == "transaction")
        #expect(first["level"] as? String == "info")
        #expect(first["label"] as? String == "signet")
        #expect(first["peer"] as? String == "127.0.0.1:4000")
        #expect(first["id"] as? String == "ABC")
        #expect(first["signatures"] as? [String] == ["d=example.com s=rsa", "d=example.com s=ed"])
        #expect((first["durations"] as? [String: String])?["signing_ms"] == "1.5")
        let ts = try #require(first["ts"] as? String)
        #expect(ts.count == 24 && ts.hasSuffix("Z") && ts.contains("T"), "\(ts)")
        #expect(objects[1]["level"] as? String == "warning")
    }

    @Test func escapesWhatJSONRequires() throws {
        let capture = Capture()
        let logger = Logger(label: "a\"b") { JSONLogHandler(label: $0, output: capture.output) }
        let nasty = "quote \" backslash \\ newline \n tab \t bell \u{07} é ✉"
        logger.error("\(nasty)", metadata: ["k\"ey": "\(nasty)"])
        #expect(capture.text.split(separator: "\n").count == 1, "a newline in a value must not split the line")
        let object = try #require(try capture.objects().first)
        #expect(object["msg"] as? String == nasty)
        #expect(object["k\"ey"] as? String == nasty)
        #expect(object["label"] as? String == "a\"b")
    }

    @Test func redactsSecretKeysEvenIfSomeoneLogsThem() throws {
        let capture = Capture()
        let logger = Logger(label: "signet") { JSONLogHandler(label: $0, output: capture.output) }
        logger.info("auth", metadata: ["password": "hunter2", "Secret": "s3cr3t", "user": "alice"])
        #expect(!capture.text.contains("hunter2"))
        #expect(!capture.text.contains("s3cr3t"))
        let object = try #require(try capture.objects().first)
        #expect(object["password"] as? String == "[redacted]")
        #expect(object["user"] as? String == "alice")
    }

    @Test func timestampIsRFC3339UTCWithMilliseconds() {
        let text = String(
            decoding: JSONLogHandler.timestamp(timespec(tv_sec: 1_700_000_000, tv_nsec: 7_000_000)), as: UTF8.self)
        #expect(text == "2023-11-14T22:13:20.007Z")
    }
}
