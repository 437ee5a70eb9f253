import Models

/// The plan under construction, and the few ways a policy changes it: events, the job's
/// state, stops, lost executions, placements, and a later look with the reason it waits.
struct PlanBuilder {
    private(set) var plan: Plan
    let input: SchedulingInput
    let settings: SchedulerSettings
    let buckets: Buckets
    /// The current version's queue and total deadlines.
    let deadlines: JobDeadlines
    var rng: SplitMix64
    var ids: IDGenerator<SplitMix64>

    init(_ input: SchedulingInput, settings: SchedulerSettings) {
        self.input = input
        self.settings = settings
        plan = Plan(evaluation: input.evaluation, jobID: input.job.id, expectedJobRevision: input.job.revision)
        buckets = Buckets(input)
        deadlines = JobDeadlines(job: input.job, versionExecutions: buckets.current)
        rng = SplitMix64(seedString: input.evaluation.id)
        ids = IDGenerator(rng: SplitMix64(seedString: input.evaluation.id + "/ids"))
    }

    var job: Job { input.job }
    var now: Int64 { input.now }
    /// The current version's executions.
    var executions: [Execution] { buckets.current }
    /// Whether the plan ends the job.
    var endsJob: Bool { plan.jobState?.stateType.isTerminal ?? false }

    mutating func event(_ message: String, topic: String, execution: Execution? = nil, details: [String: String] = [:]) {
        plan.events.append(
            JobHistory(
                type: execution == nil ? .job : .execution, jobID: job.id, jobVersion: job.version,
                executionID: execution?.id ?? "", nodeID: execution?.nodeID ?? "",
                event: Event(message: message, topic: topic, timestamp: now, details: details),
                time: now))
    }

    mutating func setJobState(_ state: JobStateType, _ message: String = "") {
        guard job.state.stateType != state || job.state.message != message else { return }
        guard job.state.stateType.canTransition(to: state) else { return }
        plan.jobState = JobState(state, message: message)
        var details = ["NewState": state.rawValue]
        if state == .failed { details["IsError"] = "true" }
        event(message.isEmpty ? "Job \(state.rawValue.lowercased())" : message, topic: "State Update", details: details)
    }

    mutating func stop(_ execution: Execution, _ message: String) {
        plan.updatedExecutions.append(ExecutionUpdate(executionID: execution.id, desiredState: .stopped, message: message))
        event(message, topic: "Execution", execution: execution)
    }

    /// Records the verification's verdict on a replica's result.
    mutating func record(_ verdict: Verdict, of execution: Execution, _ message: String) {
        plan.updatedExecutions.append(ExecutionUpdate(executionID: execution.id, verdict: verdict, message: message))
        event(message, topic: "Verification", execution: execution, details: ["Verdict": verdict.rawValue])
    }

    /// Starts or settles the audit of an accepted result.
    mutating func check(_ execution: Execution, _ check: ResultCheck) {
        plan.updatedExecutions.append(ExecutionUpdate(executionID: execution.id, check: check, message: check.message))
        var details = ["Check": check.reason.rawValue]
        if let outcome = check.outcome { details["Outcome"] = outcome.rawValue }
        event(check.message, topic: "Verification", execution: execution, details: details)
    }

    /// Stops every live execution of the current version (not the lost ones: they are failed).
    mutating func stopLive(_ message: String, among list: [Execution]? = nil) {
        for execution in list ?? executions where buckets.isLive(execution) { stop(execution, message) }
    }

    /// Records that a lost execution failed with its node.
    mutating func fail(lost execution: Execution) {
        let failure = buckets.failure(of: execution) ?? ExecutionFailure(.nodeLost, retryable: true)
        let message = "node \(shortID(execution.nodeID)) \(Self.words(failure.reason))"
        plan.updatedExecutions.append(
            ExecutionUpdate(executionID: execution.id, desiredState: .stopped, computeState: .failed, failure: failure, message: message))
        event("\(message); the work will be retried", topic: "Execution", execution: execution,
            details: ["IsError": "true", "Retryable": "true"])
    }

    /// Looks at the job again at `time` (default: after the queue backoff), saying why it waits.
    mutating func waitAndLookAgain(_ reason: WaitReason, at time: Int64? = nil) {
        plan.waiting = plan.waiting ?? reason
        let due = time ?? now.addingReportingOverflow(settings.queueBackoff).partialValue
        plan.newEvaluations.append(Self.lookAgain(at: due, job: job, now: now, trigger: .jobQueue, ids: &ids))
    }

    /// A new execution of the job's current version on `node`.
    mutating func place(
        on node: String, partition: Int, resources: Resources, previous: Execution?, taskName: String? = nil, alone: Bool = false,
        auditOf: String? = nil
    ) -> Execution {
        var execution = Execution(
            id: ids.executionID(), namespace: job.namespace, jobID: job.id, evalID: input.evaluation.id, nodeID: node,
            jobVersion: job.version, partitionIndex: partition, allocatedResources: resources, desiredState: State(.running),
            computeState: State(.new), previousExecution: previous?.id ?? "", createTime: now, modifyTime: now,
            taskName: taskName)
        if alone { execution.alone = true }
        execution.auditOf = auditOf
        execution.quote = input.nodes.first { $0.id == node }?.state.info.computeNodeInfo.priceList
        plan.newExecutions.append(execution)
        return execution
    }

    /// Takes back this plan's placements (and their events): the job fails instead.
    mutating func discardPlacements() {
        let placed = Set(plan.newExecutions.map(\.id))
        plan.newExecutions.removeAll()
        plan.events.removeAll { placed.contains($0.executionID) }
    }

    /// Every node's reason it took no work, or that none is connected.
    func summary(_ reasons: [String: String], default fallback: String) -> String {
        if input.nodes.isEmpty { return "no compute nodes are connected" }
        return input.nodes.map { "node \(shortID($0.id)): \(reasons[$0.id] ?? fallback)" }.sorted().joined(separator: "; ")
    }

    static func words(_ reason: ExecutionFailure.Reason) -> String {
        reason == .nodeRejected ? "was rejected by an administrator" : "was lost"
    }

    /// A delayed evaluation of the job, due at `waitUntil`.
    static func lookAgain(
        at waitUntil: Int64, job: Job, now: Int64, trigger: Evaluation.Trigger, ids: inout IDGenerator<SplitMix64>
    ) -> Evaluation {
        Evaluation(
            id: ids.evaluationID(), namespace: job.namespace, jobID: job.id, triggeredBy: trigger, priority: job.priority,
            type: job.type, waitUntil: waitUntil, createTime: now, modifyTime: now)
    }
}

extension Execution {
    /// Words for an execution's failure in the job's message.
    var failureSummary: String {
        let message = computeState.message.isEmpty ? (runOutput?.errorMsg ?? "") : computeState.message
        return "execution \(shortID(id)) on node \(shortID(nodeID)) \(computeState.stateType.name.lowercased())"
            + (message.isEmpty ? "" : ": \(message)")
    }
}
