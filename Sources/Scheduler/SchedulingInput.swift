public import Models

/// What the scheduler reads: one job, its executions, the nodes, and the time.
public struct SchedulingInput: Sendable {
    public var evaluation: Evaluation
    public var job: Job
    public var executions: [Execution]
    public var nodes: [NodeCandidate]
    /// Unix nanoseconds.
    public var now: Int64
    /// For a job with a partitioned input: what each partition reads.
    public var partitioning: PartitionedData?
    /// For a verified job: the comparison key of each completed execution's result (the CID of
    /// the compared part of its result DAG), by execution ID; a result the orchestrator could
    /// not read has none.
    public var resultKeys: [String: String] = [:]
    /// For a verified job: each node's reputation for its engine and artifact, by NodeID.
    public var reputation: [String: NodeReputation] = [:]

    public init(
        evaluation: Evaluation, job: Job, executions: [Execution], nodes: [NodeCandidate], now: Int64,
        partitioning: PartitionedData? = nil
    ) {
        self.evaluation = evaluation
        self.job = job
        self.executions = executions
        self.nodes = nodes
        self.now = now
        self.partitioning = partitioning
    }
}

/// The data a partitioned job's partitions read, for placing each where its data is.
public struct PartitionedData: Sendable, Hashable {
    public var slices: [PartitionSlice]
    public var locality: DataLocality
    /// Why the partitions cannot be worked out (the dataset's manifest is gone).
    public var problem: String?

    public init(slices: [PartitionSlice], locality: DataLocality, problem: String? = nil) {
        self.slices = slices
        self.locality = locality
        self.problem = problem
    }

    /// How many bytes of `partition`'s slice `node` holds, and the slice's size.
    func local(_ partition: Int, on node: NodeCandidate) -> (held: UInt64, total: UInt64) {
        guard slices.indices.contains(partition) else { return (0, 0) }
        let slice = slices[partition]
        return (slice.localBytes(held: Set(node.state.info.computeNodeInfo.heldRoots)), slice.bytes)
    }
}

/// A node as the scheduler sees it: its state plus what active executions (of all jobs) hold.
public struct NodeCandidate: Sendable, Hashable {
    public var state: NodeState
    public var allocated: Resources

    public init(state: NodeState, allocated: Resources = Resources()) {
        self.state = state
        self.allocated = allocated
    }

    public var id: String { state.info.nodeID }
}

/// Tunables of the scheduler.
public struct SchedulerSettings: Sendable, Hashable {
    /// Resources a WASM task gets when it asks for none: modules are small and sandboxed
    /// in-process, so many fit on a node.
    public var defaultResources: Resources
    /// Resources a container or host-process task gets when it asks for none (as Bacalhau's
    /// defaults: half a core, 1 GiB); it is limited to them.
    public var defaultProgramResources: Resources
    /// How many times a partition is retried after failures of its own (a retryable engine
    /// error, a rejected bid).
    public var maxRetries: Int
    /// How many times a partition is retried after its node failed under a started execution
    /// (lost, restarted, rejected): machines fail more often than programs, so this budget
    /// is larger and separate.
    public var maxInfrastructureRetries: Int
    /// Attempts of one partition in all, whatever ended them: the bound on work that keeps
    /// landing on nodes that restart before it starts.
    public var maxAttempts: Int
    /// Delay before a queued job is looked at again, and the first retry pause, in nanoseconds.
    public var queueBackoff: Int64
    /// The longest pause between retries after repeated node failures, in nanoseconds.
    public var maxBackoff: Int64

    public init(
        defaultResources: Resources = Resources(cpu: 0.1, memory: 64 * 1_048_576),
        defaultProgramResources: Resources = Resources(cpu: 0.5, memory: 1 << 30),
        maxRetries: Int = 3, maxInfrastructureRetries: Int = 10, maxAttempts: Int = 100,
        queueBackoff: Int64 = 5_000_000_000, maxBackoff: Int64 = 60_000_000_000
    ) {
        self.defaultResources = defaultResources
        self.defaultProgramResources = defaultProgramResources
        self.maxRetries = maxRetries
        self.maxInfrastructureRetries = maxInfrastructureRetries
        self.maxAttempts = maxAttempts
        self.queueBackoff = queueBackoff
        self.maxBackoff = maxBackoff
    }
}
