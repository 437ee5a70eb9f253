import Models

/// Batch and service jobs: `Count` partitions (a service's replicas), each placed where its
/// data is and retried by the ``RetryBudget``. A batch job completes when every partition
/// did (and its reduce task, if any); a service replaces replicas that end, pausing after a
/// failure, until one keeps failing.
struct PartitionPolicy {
    var settings: SchedulerSettings

    /// Where each partition stands.
    struct Census {
        var needsPlacement: [Int] = []
        var failed: [(partition: Int, reason: String)] = []
        var completed = 0
        var running = 0
        /// The earliest time a partition that backs off may be placed again.
        var backoffUntil: Int64?
    }

    func apply(_ plan: inout PlanBuilder) {
        if let problem = plan.input.partitioning?.problem {
            plan.stopLive("the job's dataset is gone")
            plan.setJobState(.failed, problem)
            return
        }
        let job = plan.job
        let maps = plan.executions.filter { !$0.isReduce }
        let census = self.census(plan, maps: maps)
        if let (partition, reason) = census.failed.first {
            plan.stopLive("another partition failed", among: maps)
            plan.setJobState(.failed, (job.partitionCount > 1 ? "partition \(partition) failed: " : "") + reason)
            return
        }
        if census.completed == job.partitionCount && job.jobType != .service {
            if let reduce = job.reduceTask {
                ReducePolicy(settings: settings).apply(&plan, task: reduce)
            } else {
                plan.setJobState(.completed)
            }
            return
        }
        var placement = Placement(settings: settings, plan: plan, maps: maps)
        placement.place(census.needsPlacement, into: &plan)
        if !placement.unplaced.isEmpty {
            placement.settleUnplaced(&plan, running: census.running, count: job.partitionCount)
            return
        }
        if let until = census.backoffUntil { plan.waitAndLookAgain(.backoff, at: until) }
        plan.setJobState(.running)
    }

    /// Sorts the partitions: running, completed, failed for good, to place, or pausing.
    func census(_ plan: PlanBuilder, maps: [Execution]) -> Census {
        var census = Census()
        let byPartition = Dictionary(grouping: maps, by: \.partitionIndex)
        let budget = RetryBudget(settings: settings)
        for partition in 0..<plan.job.partitionCount {
            let attempts = byPartition[partition] ?? []
            if attempts.contains(where: plan.buckets.isLive) {
                census.running += 1
                continue
            }
            if plan.job.jobType == .service {
                replicaDecision(plan, partition: partition, attempts: attempts, into: &census)
                continue
            }
            if attempts.contains(where: { plan.buckets.bucket($0) == .completed }) {
                census.completed += 1
                continue
            }
            let ended = attempts.filter(plan.buckets.isEnded)
            switch budget.decide(ended: ended, buckets: plan.buckets, now: plan.now, describe: plan.failureReason) {
            case .retry: census.needsPlacement.append(partition)
            case .backoff(let until): census.backoffUntil = min(census.backoffUntil ?? until, until)
            case .failedForGood(let execution): census.failed.append((partition, plan.failureReason(execution)))
            case .exhausted(let reason): census.failed.append((partition, reason))
            }
        }
        return census
    }

    /// A replica that ended is replaced, however it ended, unless it keeps failing: the last
    /// attempts all failed for good means the program cannot run. One that just failed is
    /// replaced after a pause, not in a tight loop.
    private func replicaDecision(_ plan: PlanBuilder, partition: Int, attempts: [Execution], into census: inout Census) {
        let ended = attempts.filter { !plan.buckets.isLive($0) }.sorted { $0.createTime < $1.createTime }
        let recent = ended.suffix(settings.maxRetries + 1)
        if recent.count == settings.maxRetries + 1, recent.allSatisfy({ plan.buckets.bucket($0) == .failedForGood }) {
            census.failed.append((partition, "replica keeps failing; last: \(plan.failureReason(recent.last!))"))
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
