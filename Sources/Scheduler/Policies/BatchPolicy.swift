import Models

/// Batch: a completed partition is done; otherwise the retry budget decides.
struct BatchPolicy: PartitionRetryPolicy {
    var settings: SchedulerSettings

    func decide(_ plan: PlanBuilder, partition: Int, attempts: [Execution], into census: inout PartitionPolicy.Census) {
        if attempts.contains(where: { plan.buckets.bucket($0) == .completed }) {
            census.completed += 1
            return
        }
        let ended = attempts.filter(plan.buckets.isEnded)
        switch RetryBudget(settings: settings).decide(ended: ended, buckets: plan.buckets, now: plan.now) {
        case .retry: census.needsPlacement.append(partition)
        case .backoff(let until): census.backoffUntil = min(census.backoffUntil ?? until, until)
        case .failedForGood(let execution): census.failed.append((partition, execution.failureSummary))
        case .exhausted(let reason): census.failed.append((partition, reason))
        }
    }
}
