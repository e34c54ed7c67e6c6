import NIOConcurrencyHelpers

/// One condition of the relay's readiness, as `/readyz` shows it.
public struct RelayReadinessCondition: Sendable, Equatable {
    public var name: String
    public var ready: Bool
    public var detail: String
}

extension RelayServer {
    /// How recent a successful contact with the next hop must be for the relay to count as ready.
    public static let nextHopInterval: Duration = .seconds(30)

    /// Listening (and not draining), the signer pool answering, and the next hop reached within
    /// `nextHopInterval`. Answers within about two seconds: the next hop is never waited for here; when the last
    /// contact is getting old a probe connection starts in the background, so an idle relay stays ready while its
    /// next hop is up.
    public func readiness() async -> [RelayReadinessCondition] {
        var conditions: [RelayReadinessCondition] = []
        let addresses = listeningNow
        if isDraining {
            conditions.append(.init(name: "listening", ready: false, detail: "shutting down"))
        } else if addresses.isEmpty {
            conditions.append(.init(name: "listening", ready: false, detail: "not bound yet"))
        } else {
            conditions.append(
                .init(name: "listening", ready: true, detail: addresses.map { "\($0)" }.joined(separator: ", ")))
        }

        let started = ContinuousClock.now
        let answered = await signerPoolAnswers(within: .seconds(2))
        conditions.append(
            .init(
                name: "signer_pool", ready: answered,
                detail: answered ? "answered in \(started.duration(to: .now))" : "no answer within 2 s"))

        let context = currentContext
        guard context.configuration.nextHop != nil else {
            conditions.append(.init(name: "next_hop", ready: true, detail: "none: capturing to a folder"))
            return conditions
        }
        let health = context.nextHopHealth
        let now = ContinuousClock.now
        let age = health.lastReached.map { $0.duration(to: now) }
        if age.map({ $0 > Self.nextHopInterval / 2 }) ?? true, health.startProbe() {
            Task {
                defer { health.endProbe() }
                if let session = try? await context.nextHop.connect() { await session.quit() }
            }
        }
        if let age, age <= Self.nextHopInterval {
            conditions.append(.init(name: "next_hop", ready: true, detail: "reached \(age) ago"))
        } else {
            let last = health.last.map { "\($0.detail)" } ?? "not tried yet"
            conditions.append(
                .init(
                    name: "next_hop", ready: false, detail: "not reached in the last \(Self.nextHopInterval): \(last)"))
        }
        return conditions
    }

    /// Whether a no-op job on the signer pool finishes within `limit`; a stuck pool must not stall the probe.
    private func signerPoolAnswers(within limit: Duration) async -> Bool {
        let pending = NIOLockedValueBox<CheckedContinuation<Bool, Never>?>(nil)
        let pool = signerPoolForReadiness
        return await withCheckedContinuation { continuation in
            pending.withLockedValue { $0 = continuation }
            Task {
                let answered = (try? await pool.ping()) != nil
                pending.withLockedValue { $0.take() }?.resume(returning: answered)
            }
            Task {
                try? await Task.sleep(for: limit)
                pending.withLockedValue { $0.take() }?.resume(returning: false)
            }
        }
    }
}
