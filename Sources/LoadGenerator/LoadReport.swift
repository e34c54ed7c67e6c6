import Histogram

/// What one connection observed; merged into the run's totals when the connection ends.
struct ConnectionTally: Sendable {
    /// Acknowledged-message latency, MAIL sent to the end-of-data reply, in microseconds.
    var latency = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    /// Messages by the code that decided them: the first refusal in the transaction, else the end-of-data reply.
    var replyCodes: [Int: Int] = [:]
    var acknowledged = 0
    var acknowledgedBytes = 0
    /// Messages begun but left without a deciding reply because the connection failed.
    var unanswered = 0
    var connectionFailed = false
    var error: String?

    mutating func add(_ other: ConnectionTally) {
        latency.add(other.latency)
        replyCodes.merge(other.replyCodes, uniquingKeysWith: +)
        acknowledged += other.acknowledged
        acknowledgedBytes += other.acknowledgedBytes
        unanswered += other.unanswered
        if other.connectionFailed { connectionFailed = true }
        if error == nil { error = other.error }
    }
}

/// The result of a load run, printed as text or JSON.
public struct LoadReport: Codable, Sendable {
    /// Latency percentiles in milliseconds.
    public struct Latency: Codable, Sendable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
        public var mean: Double
    }

    public var target: String
    public var messages: Int
    public var connections: Int
    public var messagesPerConnection: Int
    public var pipelining: Bool
    public var startTLS: Bool
    public var sizes: [Int]
    /// Messages whose transaction was attempted (each has a reply code or counts as unanswered).
    public var attempted: Int
    /// Messages the server accepted with a 2xx reply to the end of data.
    public var acknowledged: Int
    public var acknowledgedBytes: Int
    public var unanswered: Int
    public var connectionErrors: Int
    public var firstError: String?
    /// Deciding reply code of each attempted message, keyed by the code as text (JSON object keys are strings).
    public var replyCodes: [String: Int]
    /// When the first connection was started, in seconds since 1970 (with the sink's `lastAnswerAt`, a path's
    /// end-to-end duration).
    public var startedAt: Double
    public var elapsedSeconds: Double
    public var messagesPerSecond: Double
    public var bytesPerSecond: Double
    public var latencyMilliseconds: Latency

    init(
        options: LoadOptions, tally: ConnectionTally, connectionErrors: Int, startedAt: Double, elapsedSeconds: Double
    ) {
        target = "\(options.host):\(options.port)"
        messages = options.messages
        connections = options.connections
        messagesPerConnection = options.messagesPerConnection
        pipelining = options.pipelining
        startTLS = options.startTLS
        sizes = options.sizes
        replyCodes = Dictionary(uniqueKeysWithValues: tally.replyCodes.map { (String($0.key), $0.value) })
        attempted = tally.replyCodes.values.reduce(0, +) + tally.unanswered
        acknowledged = tally.acknowledged
        acknowledgedBytes = tally.acknowledgedBytes
        unanswered = tally.unanswered
        self.connectionErrors = connectionErrors
        firstError = tally.error
        self.startedAt = startedAt
        self.elapsedSeconds = elapsedSeconds
        messagesPerSecond = elapsedSeconds > 0 ? Double(acknowledged) / elapsedSeconds : 0
        bytesPerSecond = elapsedSeconds > 0 ? Double(acknowledgedBytes) / elapsedSeconds : 0
        let histogram = tally.latency
        func ms(_ microseconds: UInt64) -> Double { Double(microseconds) / 1000 }
        latencyMilliseconds = Latency(
            p50: ms(histogram.valueAtPercentile(50)), p90: ms(histogram.valueAtPercentile(90)),
            p99: ms(histogram.valueAtPercentile(99)), p999: ms(histogram.valueAtPercentile(99.9)),
            max: ms(histogram.totalCount > 0 ? histogram.max : 0),
            mean: histogram.totalCount > 0 ? histogram.mean / 1000 : 0
        )
    }

    /// A few lines for a person.
    public var text: String {
        func f(_ value: Double, _ digits: Int = 1) -> String {
            var scaled = value
            for _ in 0..<digits { scaled *= 10 }
            let rounded = (scaled).rounded()
            var out = String(Int(rounded))
            if digits > 0 {
                let sign = rounded < 0 ? "-" : ""
                var magnitude = String(Int(abs(rounded)))
                while magnitude.count <= digits { magnitude = "0" + magnitude }
                out = sign + magnitude.dropLast(digits) + "." + magnitude.suffix(digits)
            }
            return out
        }
        let codes = replyCodes.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        var lines = [
            "target \(target): \(messages) messages, \(connections) connections, \(messagesPerConnection) per connection, "
                + "pipelining \(pipelining ? "on" : "off")\(startTLS ? ", STARTTLS" : ""), sizes \(sizes.map(String.init).joined(separator: ","))",
            "attempted \(attempted), acknowledged \(acknowledged), unanswered \(unanswered), connection errors \(connectionErrors)",
            "reply codes: \(codes.isEmpty ? "none" : codes)",
            "elapsed \(f(elapsedSeconds, 3)) s: \(f(messagesPerSecond)) messages/s, \(f(bytesPerSecond / 1_000_000, 2)) MB/s",
            "latency ms: p50 \(f(latencyMilliseconds.p50, 3)) p90 \(f(latencyMilliseconds.p90, 3)) "
                + "p99 \(f(latencyMilliseconds.p99, 3)) p99.9 \(f(latencyMilliseconds.p999, 3)) max \(f(latencyMilliseconds.max, 3))",
        ]
        if let firstError { lines.append("first error: \(firstError)") }
        return lines.joined(separator: "\n")
    }
}
