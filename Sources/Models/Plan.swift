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
    /// Why the job waits, when the plan leaves work for later: the orchestrator puts jobs that
    /// wait for capacity or data on the list that freed capacity and joining nodes serve.
    public var waiting: WaitReason?

    public init(evaluation: Evaluation, jobID: String, expectedJobRevision: UInt64) {
        self.evaluation = evaluation
        self.jobID = jobID
        self.expectedJobRevision = expectedJobRevision
        self.jobState = nil
        self.newExecutions = []
        self.updatedExecutions = []
        self.newEvaluations = []
        self.events = []
        self.waiting = nil
    }

    /// True when applying the plan would change nothing but the evaluation's status.
    public var isNoOp: Bool {
        jobState == nil && newExecutions.isEmpty && updatedExecutions.isEmpty && newEvaluations.isEmpty && events.isEmpty
    }
}

/// Why a plan leaves part of a job for a later evaluation.
public enum WaitReason: String, Sendable, Hashable {
    /// Nodes that could run it are full.
    case capacity
    /// A retry pauses after a failure before it is placed again.
    case backoff
    /// No connected node holds a partition's data and the input's Locality is local.
    case data
    /// Every partition completed; the reduce task waits for a node with room.
    case reduce

    /// Whether freed capacity or a joining node should wake the job.
    public var wantsWakeUps: Bool { self != .backoff }
}

/// A change to an existing execution decided by the scheduler.
public struct ExecutionUpdate: Sendable, Hashable {
    public var executionID: String
    public var desiredState: ExecutionDesiredStateType?
    /// Set when the orchestrator itself concludes the execution's outcome (e.g. its node is lost).
    public var computeState: ExecutionStateType?
    /// Why it failed, when the orchestrator concludes it failed.
    public var failure: ExecutionFailure?
    /// The verification's verdict on its result, when a quorum decided.
    public var verdict: Verdict?
    /// An audit of its accepted result starts, or ends with this outcome.
    public var check: ResultCheck?
    public var message: String

    public init(
        executionID: String, desiredState: ExecutionDesiredStateType? = nil, computeState: ExecutionStateType? = nil,
        failure: ExecutionFailure? = nil, verdict: Verdict? = nil, check: ResultCheck? = nil, message: String
    ) {
        self.check = check
        self.executionID = executionID
        self.desiredState = desiredState
        self.computeState = computeState
        self.failure = failure
        self.verdict = verdict
        self.message = message
    }
}
