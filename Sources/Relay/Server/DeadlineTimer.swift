import NIOCore

/// A handler whose deadline a `DeadlineTimer` watches; `deadlineTimerFired` runs on the handler's loop.
protocol DeadlineTimerOwner: AnyObject {
    /// The task ran: the owner checks its deadline, and calls `DeadlineTimer.schedule` again if it moved on.
    func deadlineTimerFired()
}

/// One scheduled task for a deadline that keeps moving. Moved later, the task stays and its owner re-checks when
/// it runs; moved earlier, the task is replaced. Deadlines move several times per message (each phase, each
/// command, each next-hop exchange), and a task cancelled and scheduled anew each time cost an allocation and a
/// timer-heap update. Used on one event loop only, by `ClientTimeoutHandler` and `ReplyCollector`.
struct DeadlineTimer {
    private var task: Scheduled<Void>?
    private var firesAt = NIODeadline.distantFuture

    /// Makes sure `owner.deadlineTimerFired()` runs on `loop` by `deadline`.
    mutating func schedule(at deadline: NIODeadline, on loop: any EventLoop, owner: any DeadlineTimerOwner) {
        if task != nil && firesAt <= deadline { return }
        task?.cancel()
        let bound = NIOLoopBound(owner, eventLoop: loop)
        firesAt = deadline
        task = loop.scheduleTask(deadline: deadline) { bound.value.deadlineTimerFired() }
    }

    /// Called by the owner as its `deadlineTimerFired` starts: there is no task any more.
    mutating func fired() {
        task = nil
    }

    mutating func cancel() {
        task?.cancel()
        task = nil
    }
}
