import NIOCore

/// Runs a session's tasks on its connection's event loop. Without it every read, reply and next-hop exchange
/// hops between the event loop and Swift's cooperative pool: two threads woken per step, which cost more CPU than
/// everything else a message needs except the signature (docs/performance.md). The session code only parses,
/// hashes and awaits, so running it on the loop keeps NIO's rule; private-key operations still go to the signer
/// pool, and spooling writes only to a local temporary file.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
