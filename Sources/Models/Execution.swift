/// One attempt to run one partition of a job on one node.
public struct Execution: Codable, Sendable, Hashable, Identifiable {
    public var id: String
    public var namespace: String
    public var jobID: String
    public var evalID: String
    public var nodeID: String
    public var jobVersion: UInt64
    public var partitionIndex: Int
    public var allocatedResources: Resources
    public var desiredState: State<ExecutionDesiredStateType>
    public var computeState: State<ExecutionStateType>
    public var publishedResult: SpecConfig
    public var runOutput: RunCommandResult?
    public var previousExecution: String
    public var nextExecution: String
    public var followupEvalID: String
    public var revision: UInt64
    public var createTime: Int64
    public var modifyTime: Int64
    /// The job's reduce task's name when this execution reduces the partitions' outputs; nil for
    /// the job's first (map) task.
    public var taskName: String?
    /// What the execution read of its `ipfs` inputs locally and over the network.
    public var inputStats: InputStats?
    /// Why it failed, when it did: the scheduler's retry rules and the CLI read this.
    public var failure: ExecutionFailure?
    /// For a verified job's replica: whether its result agreed with the accepted one; nil
    /// before a quorum decided (and for jobs that are not verified).
    public var verdict: Verdict?
    /// For an Adaptive verified job: this replica runs its partition alone, its node's
    /// reputation allowing it; nil otherwise.
    public var alone: Bool?
    /// The CID of the node's signed receipt for it (a DSSE envelope in the orchestrator's
    /// store), once it reported one that verified.
    public var receipt: String?
    /// For an audit, a re-run of an accepted result on another node (a spot check, or a
    /// re-check of a node caught lying): the ID of the execution whose result it checks. An
    /// audit is no attempt of its partition: the job neither waits for it nor retries it.
    public var auditOf: String?
    /// For an accepted result being audited: why, and once decided, what the audit found.
    public var check: ResultCheck?
    /// What it used, as its node measured it (once it ended on a node that meters).
    public var usage: Usage?
    /// The node's price list when the execution was placed on it: what it is priced by, even
    /// if the node changes its prices later. Nil for a node that publishes none.
    public var quote: PriceList?
    /// What it cost in micro-credits: its usage priced by its quote, once it reported usage.
    public var cost: Int64?

    public init(
        id: String, namespace: String, jobID: String, evalID: String, nodeID: String, jobVersion: UInt64,
        partitionIndex: Int, allocatedResources: Resources = Resources(),
        desiredState: State<ExecutionDesiredStateType> = State(.pending),
        computeState: State<ExecutionStateType> = State(.new), publishedResult: SpecConfig = SpecConfig(type: ""),
        runOutput: RunCommandResult? = nil, previousExecution: String = "", nextExecution: String = "",
        followupEvalID: String = "", revision: UInt64 = 1, createTime: Int64, modifyTime: Int64,
        taskName: String? = nil, inputStats: InputStats? = nil, failure: ExecutionFailure? = nil
    ) {
        self.id = id
        self.namespace = namespace
        self.jobID = jobID
        self.evalID = evalID
        self.nodeID = nodeID
        self.jobVersion = jobVersion
        self.partitionIndex = partitionIndex
        self.allocatedResources = allocatedResources
        self.desiredState = desiredState
        self.computeState = computeState
        self.publishedResult = publishedResult
        self.runOutput = runOutput
        self.previousExecution = previousExecution
        self.nextExecution = nextExecution
        self.followupEvalID = followupEvalID
        self.revision = revision
        self.createTime = createTime
        self.modifyTime = modifyTime
        self.taskName = taskName
        self.inputStats = inputStats
        self.failure = failure
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", namespace = "Namespace", jobID = "JobID", evalID = "EvalID", nodeID = "NodeID"
        case jobVersion = "JobVersion", partitionIndex = "PartitionIndex"
        case allocatedResources = "AllocatedResources", desiredState = "DesiredState"
        case computeState = "ComputeState", publishedResult = "PublishedResult", runOutput = "RunOutput"
        case previousExecution = "PreviousExecution", nextExecution = "NextExecution"
        case followupEvalID = "FollowupEvalID", revision = "Revision", createTime = "CreateTime"
        case modifyTime = "ModifyTime", taskName = "TaskName", inputStats = "InputStats", failure = "Failure", verdict = "Verdict", alone = "Alone", receipt = "Receipt"
        case auditOf = "AuditOf", check = "Check", usage = "Usage", quote = "Quote", cost = "Cost"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        namespace = try c.decode(String.self, forKey: .namespace)
        jobID = try c.decode(String.self, forKey: .jobID)
        evalID = try c.decode(String.self, forKey: .evalID)
        nodeID = try c.decode(String.self, forKey: .nodeID)
        jobVersion = try c.decode(UInt64.self, forKey: .jobVersion)
        partitionIndex = try c.decode(Int.self, forKey: .partitionIndex)
        allocatedResources = try c.decode(Resources.self, forKey: .allocatedResources)
        desiredState = try c.decode(State<ExecutionDesiredStateType>.self, forKey: .desiredState)
        computeState = try c.decode(State<ExecutionStateType>.self, forKey: .computeState)
        publishedResult = try c.decode(SpecConfig.self, forKey: .publishedResult)
        runOutput = try c.decodeIfPresent(RunCommandResult.self, forKey: .runOutput)
        previousExecution = try c.decode(String.self, forKey: .previousExecution)
        nextExecution = try c.decode(String.self, forKey: .nextExecution)
        followupEvalID = try c.decode(String.self, forKey: .followupEvalID)
        revision = try c.decode(UInt64.self, forKey: .revision)
        createTime = try c.decode(Int64.self, forKey: .createTime)
        modifyTime = try c.decode(Int64.self, forKey: .modifyTime)
        taskName = try c.decodeIfPresent(String.self, forKey: .taskName)
        inputStats = try c.decodeIfPresent(InputStats.self, forKey: .inputStats)
        failure = try c.decodeIfPresent(ExecutionFailure.self, forKey: .failure)
        verdict = try c.decodeIfPresent(Verdict.self, forKey: .verdict)
        alone = try c.decodeIfPresent(Bool.self, forKey: .alone)
        receipt = try c.decodeIfPresent(String.self, forKey: .receipt)
        auditOf = try c.decodeIfPresent(String.self, forKey: .auditOf)
        check = try c.decodeIfPresent(ResultCheck.self, forKey: .check)
        usage = try c.decodeIfPresent(Usage.self, forKey: .usage)
        quote = try c.decodeIfPresent(PriceList.self, forKey: .quote)
        cost = try c.decodeIfPresent(Int64.self, forKey: .cost)
        if failure == nil, computeState.stateType == .failed {
            // A record from before failures were typed: the marker in its message says (older
            // nodes put it in the run output's error instead).
            let (legacy, message) = ExecutionFailure.legacy(message: computeState.message)
            failure = legacy ?? ExecutionFailure.legacy(message: runOutput?.errorMsg ?? "").failure
            computeState.message = message
        }
    }

    /// Whether this execution runs the job's reduce task.
    public var isReduce: Bool { taskName != nil }

    /// Whether it re-runs another execution's accepted result to check it.
    public var isAudit: Bool { auditOf != nil }

    /// Active: not terminal, and not told to stop.
    public var isActive: Bool {
        !computeState.stateType.isTerminal && desiredState.stateType != .stopped
    }
}

/// An audit of one accepted result: re-runs on other nodes whose results are compared with
/// it by the quorum rule (2 agreeing of at most 3), after the job may have completed.
public struct ResultCheck: Codable, Sendable, Hashable {
    public enum Reason: String, Codable, Sendable, Hashable {
        /// A Fast job's `SpotCheck` fraction chose the partition.
        case spotCheck = "SpotCheck"
        /// The node that produced it, unchecked, was later caught returning a wrong result.
        case recheck = "Recheck"
    }

    public enum Outcome: String, Codable, Sendable, Hashable {
        /// Another node's result agreed: it stands, and is now valid.
        case confirmed = "Confirmed"
        /// Two other nodes agreed on a different result, which replaces it; it is invalid.
        case overturned = "Overturned"
        /// The re-runs agreed neither with it nor with each other; it stands, unconfirmed.
        case noConsensus = "NoConsensus"
        /// No re-run could be made or finished (no other node can run it, or they failed).
        case abandoned = "Abandoned"
    }

    public var reason: Reason
    /// Nil while the audit runs.
    public var outcome: Outcome?
    public var message: String

    public init(_ reason: Reason, outcome: Outcome? = nil, message: String = "") {
        self.reason = reason
        self.outcome = outcome
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case reason = "Reason", outcome = "Outcome", message = "Message"
    }
}

/// What a run printed and returned. Note Bacalhau's lower-case `stderr` key, kept for clients.
public struct RunCommandResult: Codable, Sendable, Hashable {
    public var stdout: String
    public var stdoutTruncated: Bool
    public var stderr: String
    public var stderrTruncated: Bool
    public var exitCode: Int
    public var errorMsg: String

    /// How much of each stream the execution record keeps; the full logs stay with the result.
    public static let summaryLimit = 2048

    public init(
        stdout: String = "", stdoutTruncated: Bool = false, stderr: String = "", stderrTruncated: Bool = false,
        exitCode: Int = 0, errorMsg: String = ""
    ) {
        self.stdout = stdout
        self.stdoutTruncated = stdoutTruncated
        self.stderr = stderr
        self.stderrTruncated = stderrTruncated
        self.exitCode = exitCode
        self.errorMsg = errorMsg
    }

    enum CodingKeys: String, CodingKey {
        case stdout = "Stdout", stdoutTruncated = "StdoutTruncated", stderr = "stderr"
        case stderrTruncated = "StderrTruncated", exitCode = "ExitCode", errorMsg = "ErrorMsg"
    }
}

/// Concrete resource amounts: CPU in cores, memory and disk in bytes, GPU count.
public struct Resources: Codable, Sendable, Hashable {
    public var cpu: Double
    public var memory: UInt64
    public var disk: UInt64
    public var gpu: UInt64

    public init(cpu: Double = 0, memory: UInt64 = 0, disk: UInt64 = 0, gpu: UInt64 = 0) {
        self.cpu = cpu
        self.memory = memory
        self.disk = disk
        self.gpu = gpu
    }

    enum CodingKeys: String, CodingKey {
        case cpu = "CPU", memory = "Memory", disk = "Disk", gpu = "GPU"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpu = try c.decodeIfPresent(Double.self, forKey: .cpu) ?? 0
        memory = try c.decodeIfPresent(UInt64.self, forKey: .memory) ?? 0
        disk = try c.decodeIfPresent(UInt64.self, forKey: .disk) ?? 0
        gpu = try c.decodeIfPresent(UInt64.self, forKey: .gpu) ?? 0
    }

    public static func + (lhs: Resources, rhs: Resources) -> Resources {
        Resources(cpu: lhs.cpu + rhs.cpu, memory: lhs.memory + rhs.memory, disk: lhs.disk + rhs.disk, gpu: lhs.gpu + rhs.gpu)
    }

    /// Subtraction that stops at zero.
    public static func - (lhs: Resources, rhs: Resources) -> Resources {
        Resources(
            cpu: max(lhs.cpu - rhs.cpu, 0), memory: lhs.memory > rhs.memory ? lhs.memory - rhs.memory : 0,
            disk: lhs.disk > rhs.disk ? lhs.disk - rhs.disk : 0, gpu: lhs.gpu > rhs.gpu ? lhs.gpu - rhs.gpu : 0)
    }

    /// Names of the dimensions where `self` needs more than `available` has, e.g. `["memory"]`.
    public func shortfall(against available: Resources) -> [String] {
        var missing: [String] = []
        if cpu > available.cpu + 1e-9 { missing.append("cpu") }
        if memory > available.memory { missing.append("memory") }
        if disk > available.disk { missing.append("disk") }
        if gpu > available.gpu { missing.append("gpu") }
        return missing
    }
}
