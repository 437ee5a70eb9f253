public import Models

/// The scheduler, a reconciler in Nomad's shape: it compares what a job wants with what exists
/// and returns a ``Plan``. Every execution is first sorted into a bucket by the rule table
/// (``AttemptRules``); the job type's policy turns the buckets into decisions; feasibility
/// (``Feasibility``), ranking (``Ranking``), retries (``RetryBudget``) and deadlines
/// (``JobDeadlines``) are one rule each. Pure: no clock, no I/O, randomness seeded by the
/// evaluation ID.
///
/// Executions are created pre-approved (desired `Running`): the node either starts the work or
/// rejects it, which saves the separate approval round trip Bacalhau's batch flow makes.
public struct BatchScheduler: Sendable {
    public var settings: SchedulerSettings

    public init(settings: SchedulerSettings = SchedulerSettings()) {
        self.settings = settings
    }

    public func schedule(_ input: SchedulingInput) -> Plan {
        var builder = PlanBuilder(input, settings: settings)
        reconcile(&builder)
        var plan = builder.plan
        // A job with a total timeout is looked at again when it runs out, whatever else happens.
        // Every plan renews it: a plan supersedes the job's earlier delayed evaluations.
        let job = input.job
        let placed = builder.executions + plan.newExecutions
        if let deadline = JobDeadlines(job: job, versionExecutions: placed).total,
            !(plan.jobState?.stateType.isTerminal ?? job.state.stateType.isTerminal)
        {
            var ids = IDGenerator(rng: SplitMix64(seedString: input.evaluation.id + "/deadline"))
            plan.newEvaluations.append(
                PlanBuilder.lookAgain(at: max(input.now, deadline), job: job, now: input.now, trigger: .jobTimeout, ids: &ids))
        }
        return plan
    }

    /// The steps every job type shares, then its policy.
    func reconcile(_ plan: inout PlanBuilder) {
        let job = plan.job
        for execution in plan.input.executions where plan.buckets.bucket(execution) == .superseded {
            plan.stop(execution, "superseded by version \(job.version) of the job")
        }
        // A job that has ended, or was stopped, keeps nothing running but the audits of a
        // completed job's results.
        if job.state.stateType.isTerminal {
            let auditing = job.state.stateType == .completed
            for execution in plan.input.executions where execution.isActive && execution.jobVersion >= job.version {
                if auditing, execution.isAudit, execution.jobVersion == job.version { continue }
                plan.stop(execution, "job \(job.state.stateType.rawValue.lowercased()): \(job.state.message)")
            }
            let maps = plan.executions.filter { !$0.isReduce }
            if let verification = job.verification, verification.isVerified {
                VerifiedPartitions(verification: verification).judgeLate(&plan, maps: maps.filter { !$0.isAudit })
            }
            if auditing { Audits(settings: settings).apply(&plan, maps: maps) }
            return
        }
        // Timeouts.TotalTimeout bounds the whole version, queueing included: past it, the job
        // fails and whatever still runs is stopped.
        if plan.deadlines.totalExpired(at: plan.now) {
            for execution in plan.executions where execution.isActive { plan.stop(execution, "the job exceeded its total timeout") }
            plan.setJobState(.failed, "job exceeded Timeouts.TotalTimeout (\(job.task.timeouts.totalTimeout)s) before it completed")
            return
        }
        // Executions on nodes that are gone have failed with them.
        for execution in plan.buckets.executions(in: .lost) { plan.fail(lost: execution) }

        switch job.jobType {
        case .ops, .daemon:
            EveryNodePolicy(settings: settings).apply(&plan)
        case .batch, .service:
            PartitionPolicy(settings: settings).apply(&plan)
        }
    }
}
