import Models

/// The one deadline rule: `QueueTimeout` and `TotalTimeout` count from when the job's current
/// version began, which is its submission for the first version and the rerun (or update) for
/// later ones. Records from before versions kept their start time count from the version's
/// first placement, else from submission.
struct JobDeadlines: Equatable {
    /// When the version must have completed, Unix nanoseconds; nil without a total timeout.
    var total: Int64?
    /// Until when the version may wait for capacity, Unix nanoseconds; nil without a queue timeout.
    var queue: Int64?

    init(job: Job, versionExecutions: [Execution]) {
        let start = Self.versionStart(job, versionExecutions)
        let timeouts = job.task.timeouts
        total = timeouts.totalTimeout > 0 ? Deadline.after(start, seconds: timeouts.totalTimeout) : nil
        queue = timeouts.queueTimeout > 0 ? Deadline.after(start, seconds: timeouts.queueTimeout) : nil
    }

    static func versionStart(_ job: Job, _ versionExecutions: [Execution]) -> Int64 {
        if job.versionCreateTime > 0 { return job.versionCreateTime }
        if job.version > 1, let first = versionExecutions.map(\.createTime).min() { return first }
        return job.createTime
    }

    func totalExpired(at now: Int64) -> Bool { total.map { now >= $0 } ?? false }

    /// Whether unplaced work may keep waiting: nodes that could run it are only busy (or the
    /// user allowed queueing with a queue timeout that has not run out), within the total.
    func mayWait(at now: Int64, onlyBusy: Bool) -> Bool {
        guard !totalExpired(at: now) else { return false }
        return onlyBusy || (queue.map { now < $0 } ?? false)
    }
}
