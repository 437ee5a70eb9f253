import Models

/// Batch and service jobs: `Count` partitions (a service's replicas), each placed where its
/// data is; ``BatchPolicy`` and ``ServicePolicy`` decide what happens to a partition whose
/// attempts ended. A batch job completes when every partition did (and its reduce task, if
/// any); a service replaces replicas that end, pausing after a failure, until one keeps failing.
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
        // Audits re-run accepted results: they are no attempts of their partitions.
        let all = plan.executions.filter { !$0.isReduce }
        let maps = all.filter { !$0.isAudit }
        let census: Census
        if let verification = job.verification, verification.isVerified {
            census = VerifiedPartitions(verification: verification).census(&plan, maps: maps)
        } else {
            census = self.census(plan, maps: maps)
        }
        let audits = Audits(settings: settings)
        if let (partition, reason) = census.failed.first {
            plan.stopLive("another partition failed", among: all)
            plan.setJobState(.failed, (job.partitionCount > 1 ? "partition \(partition) failed: " : "") + reason)
            return
        }
        if census.completed == job.partitionCount && job.jobType != .service {
            let auditing = audits.apply(&plan, maps: all)
            if let reduce = job.reduceTask {
                // The reduce reads only results that passed their checks.
                if auditing {
                    plan.setJobState(.running)
                    return
                }
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
            if plan.endsJob {
                plan.stopLive("the job failed", among: all.filter(\.isAudit))
            } else {
                audits.apply(&plan, maps: all)
            }
            return
        }
        if let until = census.backoffUntil { plan.waitAndLookAgain(.backoff, at: until) }
        audits.apply(&plan, maps: all)
        plan.setJobState(.running)
    }

    /// Sorts the partitions: running, completed, failed for good, to place, or pausing; the job
    /// type's policy decides each partition whose attempts all ended.
    func census(_ plan: PlanBuilder, maps: [Execution]) -> Census {
        var census = Census()
        let byPartition = Dictionary(grouping: maps, by: \.partitionIndex)
        let policy: any PartitionRetryPolicy = plan.job.jobType == .service ? ServicePolicy(settings: settings) : BatchPolicy(settings: settings)
        for partition in 0..<plan.job.partitionCount {
            let attempts = byPartition[partition] ?? []
            if attempts.contains(where: plan.buckets.isLive) {
                census.running += 1
                continue
            }
            policy.decide(plan, partition: partition, attempts: attempts, into: &census)
        }
        return census
    }
}

/// What happens to a partition with no live attempt, by job type.
protocol PartitionRetryPolicy {
    func decide(_ plan: PlanBuilder, partition: Int, attempts: [Execution], into census: inout PartitionPolicy.Census)
}
