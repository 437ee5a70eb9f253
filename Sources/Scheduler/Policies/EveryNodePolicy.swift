import Models

/// Ops and daemon jobs run once on every matching node rather than in partitions. `ops`: one
/// execution on every node that matches when the job is first placed; done when all of them
/// complete. `daemon`: the same, and nodes that match later (they join, or are approved) get
/// one too; it runs until stopped. A node's part that fails for good fails the job, as no
/// other node can do it; so does an ops node that is gone. A daemon outlives its nodes: one
/// that fails drops out and gets a new execution when it is back.
struct EveryNodePolicy {
    var settings: SchedulerSettings

    func apply(_ plan: inout PlanBuilder) {
        guard let retries = retryDecisions(&plan) else { return }
        let job = plan.job
        let daemon = job.jobType == .daemon
        let requested = settings.requestedResources(job)
        let byNode = Dictionary(grouping: plan.executions, by: \.nodeID)
        let firstPlacement = plan.executions.isEmpty
        var reasons: [String: String] = [:]
        var waiting = 0
        var backingOff: Int64?
        for node in plan.input.nodes.sorted(by: { $0.id < $1.id }) {
            let attempts = byNode[node.id] ?? []
            let needsOne = attempts.isEmpty
                ? firstPlacement || daemon
                : !attempts.contains { $0.isActive || $0.computeState.stateType == .completed }
            guard needsOne else { continue }
            if case .backoff(let until)? = retries[node.id] {
                backingOff = min(backingOff ?? until, until)
                continue
            }
            switch Feasibility.of(node, job: job, requested: requested, allocated: node.allocated) {
            case .infeasible(let reason):
                reasons[node.id] = reason
            case .busy(let reason):
                reasons[node.id] = reason
                waiting += 1
            case .fits:
                let previous = attempts.max { $0.createTime < $1.createTime }
                let execution = plan.place(on: node.id, partition: 0, resources: requested, previous: previous)
                plan.event("Scheduled on node \(shortID(node.id))\(previous == nil ? "" : " (retry)")", topic: "Scheduling", execution: execution)
            }
        }
        settle(&plan, firstPlacement: firstPlacement, waiting: waiting, backingOff: backingOff, reasons: reasons)
    }

    /// The retry decision for each node whose attempts all ended; nil when one fails the job
    /// (the plan then says so and stops the rest).
    private func retryDecisions(_ plan: inout PlanBuilder) -> [String: RetryDecision]? {
        let job = plan.job
        let daemon = job.jobType == .daemon
        let budget = RetryBudget(settings: settings)
        var decisions: [String: RetryDecision] = [:]
        let buckets = plan.buckets
        for (nodeID, attempts) in Dictionary(grouping: plan.executions, by: \.nodeID).sorted(by: { $0.key < $1.key }) {
            guard !attempts.contains(where: { buckets.isLive($0) || $0.computeState.stateType == .completed }) else { continue }
            var ended = attempts.filter { buckets.isEnded($0) }
            // A daemon's node that failed just drops out; the daemon goes on elsewhere.
            if daemon { ended.removeAll { buckets.failure(of: $0)?.reason.isInfrastructure == true } }
            guard !ended.isEmpty else { continue }
            var decision = budget.decide(ended: ended, buckets: buckets, now: plan.now)
            if !daemon, let lost = ended.first(where: { buckets.bucket($0) == .lost }), let failure = buckets.failure(of: lost) {
                // The node an ops job's part belongs to is gone: nobody else can do that part.
                decision = .exhausted("node \(shortID(lost.nodeID)) \(PlanBuilder.words(failure.reason))")
            }
            if case .failedForGood(let execution) = decision { decision = .exhausted(execution.failureSummary) }
            if case .exhausted(let reason) = decision {
                plan.stopLive("the job failed on another node")
                plan.setJobState(.failed, "\(job.type) job failed on node \(shortID(nodeID)): \(reason)")
                return nil
            }
            decisions[nodeID] = decision
        }
        return decisions
    }

    /// The job's state after placement, and when to look again.
    private func settle(
        _ plan: inout PlanBuilder, firstPlacement: Bool, waiting: Int, backingOff: Int64?, reasons: [String: String]
    ) {
        let job = plan.job
        let active = plan.executions.filter { plan.buckets.isLive($0) }.count + plan.plan.newExecutions.count
        if firstPlacement && active == 0 && waiting == 0 {
            plan.setJobState(.failed, "no node can run this \(job.type) job. \(plan.summary(reasons, default: "no reason"))")
            return
        }
        if waiting > 0 { plan.waitAndLookAgain(.capacity) }
        if let backingOff { plan.waitAndLookAgain(.backoff, at: backingOff) }
        if job.jobType != .daemon && active == 0 && waiting == 0 && backingOff == nil {
            plan.setJobState(.completed)
            return
        }
        if active == 0 && waiting > 0 {
            plan.setJobState(.queued, "waiting for capacity on \(waiting) node\(waiting == 1 ? "" : "s")")
            return
        }
        plan.setJobState(.running)
    }
}
