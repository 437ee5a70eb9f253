import Models

/// The reduce phase: once every partition completed, one execution of the reduce task reads
/// their outputs; the job completes when it does and fails when it fails for good or its
/// retries are spent.
struct ReducePolicy {
    var settings: SchedulerSettings

    func apply(_ plan: inout PlanBuilder, task: JobTask) {
        let name = task.name.isEmpty ? "reduce" : task.name
        let attempts = plan.executions.filter(\.isReduce)
        if attempts.contains(where: { plan.buckets.bucket($0) == .completed }) { return plan.setJobState(.completed) }
        if attempts.contains(where: plan.buckets.isLive) { return plan.setJobState(.running) }
        let ended = attempts.filter(plan.buckets.isEnded)
        switch RetryBudget(settings: settings).decide(ended: ended, buckets: plan.buckets, now: plan.now) {
        case .failedForGood(let execution):
            return plan.setJobState(.failed, "reduce task \(name) failed: \(execution.failureSummary)")
        case .exhausted(let reason):
            return plan.setJobState(.failed, "reduce task \(name) \(reason)")
        case .backoff(let until):
            plan.waitAndLookAgain(.backoff, at: until)
            return plan.setJobState(.running)
        case .retry:
            break
        }
        var job = plan.job
        job.tasks = [task]
        let requested = settings.requestedResources(job)
        let tried = Set(ended.map(\.nodeID))
        var candidates: [(NodeCandidate, Ranking)] = []
        var reasons: [String: String] = [:]
        var busy = false
        for node in plan.input.nodes {
            let feasibility = Feasibility.of(node, job: job, requested: requested, allocated: node.allocated)
            switch feasibility {
            case .infeasible(let reason): reasons[node.id] = reason
            case .busy(let reason):
                reasons[node.id] = reason
                busy = true
            case .fits(let free): candidates.append((node, Ranking(alreadyTried: tried.contains(node.id), free: free)))
            }
        }
        guard let chosen = Ranking.best(candidates, rng: &plan.rng) else {
            if busy {
                plan.waitAndLookAgain(.reduce)
                return plan.setJobState(.running)
            }
            return plan.setJobState(.failed, "no node can run the reduce task \(name): \(plan.summary(reasons, default: "no reason"))")
        }
        let previous = ended.max { $0.createTime < $1.createTime }
        let execution = plan.place(on: chosen.id, partition: 0, resources: requested, previous: previous, taskName: name)
        plan.event("Scheduled reduce task \(name) on node \(shortID(chosen.id))\(previous == nil ? "" : " (retry)")", topic: "Scheduling", execution: execution)
        plan.setJobState(.running)
    }
}
