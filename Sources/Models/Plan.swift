/// The scheduler's decision for one evaluation, applied by the store in one transaction.
public struct Plan: Sendable, Hashable {
    public var evaluation: Evaluation
    public var jobID: String
    /// The job revision the plan was computed against; a plan for a stale job is rejected.
    public var expectedJobRevision: UInt64
    /// The job's new state, or nil to leave it.
    public var jobState: JobState?
    public var newExecutions: [Execution]
    public var updatedExecutions: [ExecutionUpdate]
    public var newEvaluations: [Evaluation]
    public var events: [JobHistory]

    public init(evaluation: Evaluation, jobID: String, expectedJobRevision: UInt64) {
        self.evaluation = evaluation
        self.jobID = jobID
        self.expectedJobRevision = expectedJobRevision
        self.jobState = nil
        self.newExecutions = []
        self.updatedExecutions = []
        self.newEvaluations = []
        self.events = []
    }

    /// True when applying the plan would change nothing but the evaluation's status.
    public var isNoOp: Bool {
        jobState == nil && newExecutions.isEmpty && updatedExecutions.isEmpty && newEvaluations.isEmpty && events.isEmpty
    }
}

/// A change to an existing execution decided by the scheduler.
public struct ExecutionUpdate: Sendable, Hashable {
    public var executionID: String
    public var desiredState: ExecutionDesiredStateType?
    /// Set when the orchestrator itself concludes the execution's outcome (e.g. its node is lost).
    public var computeState: ExecutionStateType?
    public var message: String

    public init(
        executionID: String, desiredState: ExecutionDesiredStateType? = nil, computeState: ExecutionStateType? = nil,
        message: String
    ) {
        self.executionID = executionID
        self.desiredState = desiredState
        self.computeState = computeState
        self.message = message
    }
}
