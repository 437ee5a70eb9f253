import Models

/// Service: replicas run until stopped.
struct ServicePolicy: PartitionRetryPolicy {
    var settings: SchedulerSettings

    /// A replica that ended is replaced, however it ended, unless it keeps failing: the last
    /// attempts all failed for good means the program cannot run. One that just failed is
    /// replaced after a pause, not in a tight loop.
    func decide(_ plan: PlanBuilder, partition: Int, attempts: [Execution], into census: inout PartitionPolicy.Census) {
        let ended = attempts.filter { !plan.buckets.isLive($0) }.sorted { $0.createTime < $1.createTime }
        let recent = ended.suffix(settings.maxRetries + 1)
        if recent.count == settings.maxRetries + 1, recent.allSatisfy({ plan.buckets.bucket($0) == .failedForGood }) {
            census.failed.append((partition, "replica keeps failing; last: \(recent.last!.failureSummary)"))
        } else if let last = ended.last, last.computeState.stateType == .failed,
            plan.now - last.modifyTime < settings.queueBackoff
        {
            let until = last.modifyTime.addingReportingOverflow(settings.queueBackoff).partialValue
            census.backoffUntil = min(census.backoffUntil ?? until, until)
        } else {
            census.needsPlacement.append(partition)
        }
    }
}
