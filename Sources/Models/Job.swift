/// A job as submitted by a user and stored by the orchestrator: Bacalhau's v1 `Job`.
///
/// Every field decodes leniently (absent or `null` means the default), so job files written for
/// Bacalhau load unchanged. Normalisation and validation happen in ``JobValidator``.
///
/// ```swift
/// let job = Job(name: "hello", tasks: [JobTask(name: "main", engine: SpecConfig(type: "wasm"))])
/// ```
public struct Job: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var namespace: String
    public var type: String
    public var priority: Int
    /// Number of partitions (batch). `nil` when the spec left it out; normalised to 1.
    public var count: Int?
    public var constraints: [LabelSelectorRequirement]
    public var meta: [String: String]
    public var labels: [String: String]
    public var tasks: [JobTask]
    public var state: JobState
    public var version: UInt64
    public var revision: UInt64
    /// Unix nanoseconds.
    public var createTime: Int64
    /// Unix nanoseconds.
    public var modifyTime: Int64
    /// When the current version was made (a rerun or an update), Unix nanoseconds; 0 for the
    /// first version, which starts at `createTime`. Queue and total timeouts count from here.
    public var versionCreateTime: Int64
    /// The user who submitted the current version (the orchestrator's record, never the
    /// submitter's claim); empty for jobs submitted before users existed.
    public var owner: String
    /// How its results are checked; nil for `Fast` (one execution per partition).
    public var verification: Verification?
    /// How price weighs in placement, and the most the job pays per unit.
    public var pricing: Pricing?
    /// The most the job may cost; the hold taken when it is submitted is at most this.
    public var budget: Budget?
    /// Whether (and how far) the job may start child jobs while it runs; nil: it may not.
    public var children: ChildLimits?
    /// The job and execution that started this one, set by the orchestrator (never the
    /// submitter's claim); nil for a job a person or schedule submitted.
    public var parentJobID: String?
    public var parentExecutionID: String?

    public init(
        id: String = "", name: String = "", namespace: String = "", type: String = "batch",
        priority: Int = 0, count: Int? = nil, constraints: [LabelSelectorRequirement] = [],
        meta: [String: String] = [:], labels: [String: String] = [:], tasks: [JobTask] = [],
        state: JobState = JobState(), version: UInt64 = 0, revision: UInt64 = 0,
        createTime: Int64 = 0, modifyTime: Int64 = 0
    ) {
        self.id = id
        self.name = name
        self.namespace = namespace
        self.type = type
        self.priority = priority
        self.count = count
        self.constraints = constraints
        self.meta = meta
        self.labels = labels
        self.tasks = tasks
        self.state = state
        self.version = version
        self.revision = revision
        self.createTime = createTime
        self.modifyTime = modifyTime
        self.versionCreateTime = 0
        self.owner = ""
        self.verification = nil
        self.pricing = nil
        self.budget = nil
        self.children = nil
        self.parentJobID = nil
        self.parentExecutionID = nil
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", name = "Name", namespace = "Namespace", type = "Type", priority = "Priority"
        case count = "Count", constraints = "Constraints", meta = "Meta", labels = "Labels"
        case tasks = "Tasks", state = "State", version = "Version", revision = "Revision"
        case createTime = "CreateTime", modifyTime = "ModifyTime", versionCreateTime = "VersionCreateTime"
        case owner = "Owner", verification = "Verification", pricing = "Pricing", budget = "Budget"
        case children = "Children", parentJobID = "ParentJobID", parentExecutionID = "ParentExecutionID"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id) ?? ""
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        namespace = try c.decodeIfPresent(String.self, forKey: .namespace) ?? ""
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
        priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 0
        count = try c.decodeIfPresent(Int.self, forKey: .count)
        constraints = try c.decodeIfPresent([LabelSelectorRequirement].self, forKey: .constraints) ?? []
        meta = try c.decodeIfPresent([String: String].self, forKey: .meta) ?? [:]
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        tasks = try c.decodeIfPresent([JobTask].self, forKey: .tasks) ?? []
        state = try c.decodeIfPresent(JobState.self, forKey: .state) ?? JobState()
        version = try c.decodeIfPresent(UInt64.self, forKey: .version) ?? 0
        revision = try c.decodeIfPresent(UInt64.self, forKey: .revision) ?? 0
        createTime = try c.decodeIfPresent(Int64.self, forKey: .createTime) ?? 0
        modifyTime = try c.decodeIfPresent(Int64.self, forKey: .modifyTime) ?? 0
        versionCreateTime = try c.decodeIfPresent(Int64.self, forKey: .versionCreateTime) ?? 0
        owner = try c.decodeIfPresent(String.self, forKey: .owner) ?? ""
        verification = try c.decodeIfPresent(Verification.self, forKey: .verification)
        pricing = try c.decodeIfPresent(Pricing.self, forKey: .pricing)
        budget = try c.decodeIfPresent(Budget.self, forKey: .budget)
        children = try c.decodeIfPresent(ChildLimits.self, forKey: .children)
        parentJobID = try c.decodeIfPresent(String.self, forKey: .parentJobID)
        parentExecutionID = try c.decodeIfPresent(String.self, forKey: .parentExecutionID)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(namespace, forKey: .namespace)
        try c.encode(type, forKey: .type)
        try c.encode(priority, forKey: .priority)
        try c.encode(count ?? 1, forKey: .count)
        try c.encode(constraints, forKey: .constraints)
        try c.encode(meta, forKey: .meta)
        try c.encode(labels, forKey: .labels)
        try c.encode(tasks, forKey: .tasks)
        try c.encode(state, forKey: .state)
        try c.encode(version, forKey: .version)
        try c.encode(revision, forKey: .revision)
        try c.encode(createTime, forKey: .createTime)
        try c.encode(modifyTime, forKey: .modifyTime)
        if versionCreateTime != 0 { try c.encode(versionCreateTime, forKey: .versionCreateTime) }
        if !owner.isEmpty { try c.encode(owner, forKey: .owner) }
        try c.encodeIfPresent(verification, forKey: .verification)
        try c.encodeIfPresent(pricing, forKey: .pricing)
        try c.encodeIfPresent(budget, forKey: .budget)
        try c.encodeIfPresent(children, forKey: .children)
        try c.encodeIfPresent(parentJobID, forKey: .parentJobID)
        try c.encodeIfPresent(parentExecutionID, forKey: .parentExecutionID)
    }

    /// Whether results are accepted only by a quorum of replicas.
    public var isVerified: Bool { verification?.isVerified == true }

    /// Whether `execution`'s result counts as the job's: it completed and, for a verified job,
    /// the quorum accepted it. A result an audit overturned never counts; an audit's own result
    /// counts once the audit found it valid.
    public func accepts(_ execution: Execution) -> Bool {
        guard execution.computeState.stateType == .completed else { return false }
        if execution.isReduce { return true }
        if execution.verdict == .invalid { return false }
        if execution.isAudit { return execution.verdict == .valid }
        return !isVerified || execution.verdict == .valid || execution.verdict == .unchecked
    }

    /// The result each partition contributes: its earliest accepted execution of the current
    /// version (replicas that agree have the same compared content), by partition.
    public func acceptedResults(among executions: [Execution]) -> [Execution] {
        var chosen: [Int: Execution] = [:]
        for execution in executions where !execution.isReduce && execution.jobVersion == version && accepts(execution) {
            if let current = chosen[execution.partitionIndex], (current.createTime, current.id) <= (execution.createTime, execution.id) { continue }
            chosen[execution.partitionIndex] = execution
        }
        return chosen.values.sorted { $0.partitionIndex < $1.partitionIndex }
    }

    /// Whether a partition of this Fast job is re-run later on another node to check it: a
    /// fixed draw per (job, version, partition) against `Verification.SpotCheck`.
    public func spotChecks(partition: Int) -> Bool {
        guard let fraction = verification?.spotCheck, fraction > 0, verification?.mode == .fast else { return false }
        var rng = SplitMix64(seedString: "\(id)/\(version)/spot-check/\(partition)")
        return Double(rng.next() >> 11) / Double(UInt64(1) << 53) < fraction
    }

    /// The number of partitions this job runs as.
    public var partitionCount: Int { max(count ?? 1, 0) }

    /// The job's main task (Bacalhau supports exactly one): with a partitioned input, the map.
    public var task: JobTask { tasks.first ?? JobTask() }

    /// The reduce task: a batch job's second task, run once after every partition completed,
    /// with each partition's outputs at `/inputs/<partition>`.
    public var reduceTask: JobTask? { tasks.count > 1 ? tasks[1] : nil }
}

/// A job's state with an explanation: `{"StateType": "Failed", "Message": "..."}`.
public struct JobState: Codable, Sendable, Hashable {
    public var stateType: JobStateType
    public var message: String

    public init(_ stateType: JobStateType = .pending, message: String = "") {
        self.stateType = stateType
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case stateType = "StateType", message = "Message"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stateType = try c.decodeIfPresent(JobStateType.self, forKey: .stateType) ?? .undefined
        message = try c.decodeIfPresent(String.self, forKey: .message) ?? ""
    }
}

/// A label selector, as in Kubernetes: `{Key: region, Operator: in, Values: [eu, us]}`.
public struct LabelSelectorRequirement: Codable, Sendable, Hashable {
    public var key: String
    public var `operator`: String
    public var values: [String]

    public init(key: String, operator: String, values: [String] = []) {
        self.key = key
        self.operator = `operator`
        self.values = values
    }

    enum CodingKeys: String, CodingKey {
        case key = "Key", `operator` = "Operator", values = "Values"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        key = try c.decodeIfPresent(String.self, forKey: .key) ?? ""
        `operator` = try c.decodeIfPresent(String.self, forKey: .operator) ?? ""
        values = try c.decodeIfPresent([String].self, forKey: .values) ?? []
    }
}

/// Deadlines from timeouts that come from job specs: saturating, so no stored job, however
/// old or odd its numbers, can make the scheduler trap.
public enum Deadline {
    /// `start` (Unix nanoseconds) plus `seconds`, clamped to the representable range.
    public static func after(_ start: Int64, seconds: Int64) -> Int64 {
        let (nanos, overflowMultiplying) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflowMultiplying { return seconds > 0 ? .max : .min }
        let (sum, overflowAdding) = start.addingReportingOverflow(nanos)
        if overflowAdding { return nanos > 0 ? .max : .min }
        return sum
    }
}
