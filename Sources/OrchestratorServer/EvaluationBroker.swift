import Models

/// Hands evaluations to workers: ready ones first (by priority, then age), at most one in
/// flight per job, delayed ones when their time comes. Pending evaluations are also in the
/// store, so a restart loses none; this is the in-memory index over them.
actor EvaluationBroker {
    private var ready: [Evaluation] = []
    private var delayed: [Evaluation] = []
    private var inFlight = Set<String>()
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var isShutDown = false

    func enqueue(_ evaluation: Evaluation) {
        if evaluation.waitUntil > 0 {
            delayed.append(evaluation)
        } else {
            ready.append(evaluation)
        }
        wakeAll()
    }

    /// Takes the next ready evaluation whose job has none in flight, plus every other ready
    /// evaluation of that job (they are all answered by one plan). Nil when none is ready.
    func take(now: Int64) -> [Evaluation]? {
        promote(now: now)
        guard let index = ready.indices
            .filter({ !inFlight.contains(ready[$0].jobID) })
            .min(by: { (ready[$0].priority, -ready[$0].createTime) > (ready[$1].priority, -ready[$1].createTime) })
        else { return nil }
        let jobID = ready[index].jobID
        let batch = ready.filter { $0.jobID == jobID }
        ready.removeAll { $0.jobID == jobID }
        // The plan answers the job's delayed evaluations created up to now too (the store marks
        // them complete with it) and schedules its own follow-up if it still needs one. Kept,
        // each would wake later and start a chain of follow-ups of its own.
        let newest = batch.map(\.createTime).max() ?? 0
        delayed.removeAll { $0.jobID == jobID && $0.createTime <= newest }
        inFlight.insert(jobID)
        return batch
    }

    /// Whether the job already has an evaluation waiting for a worker (a new one would add
    /// nothing: the next plan sees the latest state anyway).
    func isWaiting(jobID: String) -> Bool {
        !inFlight.contains(jobID) && ready.contains { $0.jobID == jobID }
    }

    /// The worker finished with this job.
    func done(jobID: String) {
        inFlight.remove(jobID)
        wakeAll()
    }

    /// Waits until something may be ready (an enqueue, a finished job, or a tick that
    /// promoted a delayed evaluation).
    func waitForWork(now: Int64) async {
        if isShutDown { return }
        promote(now: now)
        if ready.contains(where: { !inFlight.contains($0.jobID) }) { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Wakes sleeping workers (a delayed evaluation may be due).
    func tick(now: Int64) {
        let before = ready.count
        promote(now: now)
        if ready.count != before { wakeAll() }
    }

    /// Releases every waiting worker for good: the orchestrator is stopping.
    func shutDown() {
        isShutDown = true
        wakeAll()
    }

    private func promote(now: Int64) {
        guard !delayed.isEmpty else { return }
        let due = delayed.filter { $0.waitUntil <= now }
        guard !due.isEmpty else { return }
        delayed.removeAll { $0.waitUntil <= now }
        ready.append(contentsOf: due)
    }

    private func wakeAll() {
        let current = waiters
        waiters.removeAll()
        for waiter in current { waiter.resume() }
    }
}

/// Jobs waiting for capacity, highest priority first, then oldest. When an execution ends, the
/// first ones are evaluated at once rather than at their next timed retry.
actor CapacityWaitlist {
    private var order: [(jobID: String, priority: Int)] = []
    private var members = Set<String>()

    func add(_ jobID: String, priority: Int = 0) {
        guard members.insert(jobID).inserted else { return }
        // Before the first entry of lower priority: higher priority first, then arrival.
        let index = order.firstIndex { $0.priority < priority } ?? order.endIndex
        order.insert((jobID, priority), at: index)
    }

    func remove(_ jobID: String) {
        guard members.remove(jobID) != nil else { return }
        order.removeAll { $0.jobID == jobID }
    }

    /// Up to `count` waiting jobs, which stay listed until their plan places them.
    func first(_ count: Int) -> [String] {
        order.prefix(count).map(\.jobID)
    }

    var all: [String] { order.map(\.jobID) }
}
