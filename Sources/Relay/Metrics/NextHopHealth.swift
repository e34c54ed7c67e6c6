import NIOConcurrencyHelpers
import NIOCore

/// The outcome of the latest connection to the next hop, for `/readyz` and `signet_next_hop_up`.
final class NextHopHealth: Sendable {
    struct Contact: Sendable {
        var at: ContinuousClock.Instant
        var reached: Bool
        var detail: String
    }

    private let state = NIOLockedValueBox<(last: Contact?, lastReached: ContinuousClock.Instant?, probing: Bool)>(
        (nil, nil, false))

    func record(reached: Bool, detail: String) {
        let now = ContinuousClock.now
        state.withLockedValue { state in
            state.last = Contact(at: now, reached: reached, detail: detail)
            if reached { state.lastReached = now }
        }
    }

    var last: Contact? { state.withLockedValue { $0.last } }
    var lastReached: ContinuousClock.Instant? { state.withLockedValue { $0.lastReached } }

    /// Claims the one probe allowed in flight; false when one already runs.
    func startProbe() -> Bool {
        state.withLockedValue { state in
            if state.probing { return false }
            state.probing = true
            return true
        }
    }

    func endProbe() {
        state.withLockedValue { $0.probing = false }
    }
}

/// Wraps the next hop so every connection attempt, by a session or by a readiness probe, is recorded.
struct MonitoredNextHop: NextHop {
    let inner: any NextHop
    let health: NextHopHealth
    let metrics: RelayMetrics

    func connect(on eventLoop: (any EventLoop)?) async throws -> any NextHopSession {
        do {
            let session = try await inner.connect(on: eventLoop)
            health.record(reached: true, detail: "connected")
            metrics.nextHopConnection(succeeded: true)
            return session
        } catch {
            health.record(reached: false, detail: "\(error)")
            metrics.nextHopConnection(succeeded: false)
            throw error
        }
    }
}
