import Models

/// What happens to work (a partition, a node's part, the reduce task) whose attempts all ended.
enum RetryDecision: Equatable {
    /// Place another attempt now.
    case retry
    /// Place another attempt at this time (Unix nanoseconds): a pause after repeated failures.
    case backoff(until: Int64)
    /// Give up: this attempt failed in a way that would happen again.
    case failedForGood(Execution)
    /// Give up: the budget is spent; the words say how.
    case exhausted(String)
}

/// The retry rule, with two budgets. The program's own retryable failures may be retried
/// `maxRetries` times. Node failures under started work (lost, restarted, rejected) have their
/// own budget of `maxInfrastructureRetries`, pausing longer after each one past the first.
/// Work that was only queued on a node that failed costs nothing: it goes back to placement,
/// up to `maxAttempts` attempts in all. So does a bid a node rejected (it had no room when the
/// work arrived: nothing about the program), pausing like node failures when it repeats.
struct RetryBudget {
    var settings: SchedulerSettings

    /// `ended`: the attempts of one piece of work, all ended; `buckets` knows each one's bucket
    /// and typed failure.
    func decide(
        ended: [Execution], buckets: Buckets, now: Int64
    ) -> RetryDecision {
        let ordered = ended.sorted { $0.modifyTime < $1.modifyTime }
        guard let last = ordered.last else { return .retry }
        if let failed = ordered.first(where: { buckets.bucket($0) == .failedForGood }) {
            return .failedForGood(failed)
        }
        var program = 0
        var infrastructure = 0
        var rejectedBids = 0
        for attempt in ordered {
            let failure = buckets.failure(of: attempt)
            if failure?.reason.isInfrastructure == true {
                if failure?.neverStarted != true { infrastructure += 1 }
            } else if Self.isRejectedBid(attempt, failure) {
                rejectedBids += 1
            } else {
                program += 1
            }
        }
        if program > settings.maxRetries {
            return .exhausted("gave up after \(ended.count) attempts; last: \(last.failureSummary)")
        }
        if infrastructure > settings.maxInfrastructureRetries {
            return .exhausted("gave up after \(infrastructure) node failures (\(ended.count) attempts); last: \(last.failureSummary)")
        }
        if ended.count >= settings.maxAttempts {
            return .exhausted("gave up after \(ended.count) attempts, most on nodes that failed before starting it; last: \(last.failureSummary)")
        }
        // The first node failure (or rejected bid) is retried at once elsewhere; each further
        // one pauses longer.
        let lastFailure = buckets.failure(of: last)
        let pauses: Int
        if lastFailure?.reason.isInfrastructure == true, lastFailure?.neverStarted != true, infrastructure > 1 {
            pauses = infrastructure
        } else if Self.isRejectedBid(last, lastFailure), rejectedBids > 1 {
            pauses = rejectedBids
        } else {
            return .retry
        }
        // Work lost with its node in this very plan ended now.
        let endTime = buckets.bucket(last) == .lost ? now : last.modifyTime
        let until = endTime.addingReportingOverflow(backoff(afterNodeFailures: pauses)).partialValue
        return now < until ? .backoff(until: until) : .retry
    }

    static func isRejectedBid(_ attempt: Execution, _ failure: ExecutionFailure?) -> Bool {
        failure?.reason == .bidRejected || attempt.computeState.stateType == .askForBidRejected
    }

    /// The pause before the next attempt after `count` node failures: the queue backoff,
    /// doubling from the second, at most `maxBackoff`.
    func backoff(afterNodeFailures count: Int) -> Int64 {
        let doublings = min(max(count - 2, 0), 20)
        let (delay, overflow) = settings.queueBackoff.multipliedReportingOverflow(by: Int64(1) << doublings)
        return overflow ? settings.maxBackoff : min(delay, settings.maxBackoff)
    }
}
