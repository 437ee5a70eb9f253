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

/// Tunables of the batch scheduler.
public struct SchedulerSettings: Sendable, Hashable {
    /// Resources a WASM task gets when it asks for none: modules are small and sandboxed
    /// in-process, so many fit on a node.
    public var defaultResources: Resources
    /// Resources a container or host-process task gets when it asks for none (as Bacalhau's
    /// defaults: half a core, 1 GiB); it is limited to them.
    public var defaultProgramResources: Resources
    /// How many times a partition is retried after a retryable failure (node lost, bid rejected).
    public var maxRetries: Int
    /// Delay before a queued job is looked at again, in nanoseconds.
    public var queueBackoff: Int64

    public init(
        defaultResources: Resources = Resources(cpu: 0.1, memory: 64 * 1_048_576),
        defaultProgramResources: Resources = Resources(cpu: 0.5, memory: 1 << 30),
        maxRetries: Int = 3, queueBackoff: Int64 = 5_000_000_000
    ) {
        self.defaultResources = defaultResources
        self.defaultProgramResources = defaultProgramResources
        self.maxRetries = maxRetries
        self.queueBackoff = queueBackoff
    }
}

/// The batch scheduler: compares what a job wants (N completed partitions) with what exists
/// (executions) and returns a ``Plan``. Pure: no clock, no I/O, randomness seeded by the
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
        var plan = scheduleWithoutDeadline(input)
        // A job with a total timeout is looked at again when it runs out, whatever else happens.
        // Every plan renews it: a plan supersedes the job's earlier delayed evaluations.
        let job = input.job
        let placed = input.executions.filter { $0.jobVersion == job.version } + plan.newExecutions
        if let deadline = Self.totalDeadline(of: job, versionExecutions: placed),
            !(plan.jobState?.stateType.isTerminal ?? job.state.stateType.isTerminal)
        {
            var ids = IDGenerator(rng: SplitMix64(seedString: input.evaluation.id + "/deadline"))
            plan.newEvaluations.append(Self.lookAgain(at: max(input.now, deadline), job: job, now: input.now, ids: &ids))
        }
        return plan
    }

    /// When `Timeouts.TotalTimeout` runs out for the job's current version (Unix nanoseconds):
    /// from submission, or for a rerun from its first placement; nil without a total timeout or
    /// before a rerun is placed.
    static func totalDeadline(of job: Job, versionExecutions: [Execution]) -> Int64? {
        let timeout = job.task.timeouts.totalTimeout
        guard timeout > 0 else { return nil }
        let start = job.version <= 1 ? job.createTime : versionExecutions.map(\.createTime).min()
        return start.map { Deadline.after($0, seconds: timeout) }
    }

    /// A delayed evaluation of the job, due at `waitUntil`.
    static func lookAgain(at waitUntil: Int64, job: Job, now: Int64, ids: inout IDGenerator<SplitMix64>) -> Evaluation {
        Evaluation(
            id: ids.evaluationID(), namespace: job.namespace, jobID: job.id, triggeredBy: .jobQueue, priority: job.priority,
            type: job.type, waitUntil: waitUntil, createTime: now, modifyTime: now)
    }

    func scheduleWithoutDeadline(_ input: SchedulingInput) -> Plan {
        var plan = Plan(evaluation: input.evaluation, jobID: input.job.id, expectedJobRevision: input.job.revision)
        let job = input.job
        let executions = input.executions.filter { $0.jobVersion == job.version }
        var rng = SplitMix64(seedString: input.evaluation.id)
        var ids = IDGenerator(rng: SplitMix64(seedString: input.evaluation.id + "/ids"))

        func event(_ message: String, topic: String, execution: Execution? = nil, details: [String: String] = [:]) {
            plan.events.append(
                JobHistory(
                    type: execution == nil ? .job : .execution, jobID: job.id, jobVersion: job.version,
                    executionID: execution?.id ?? "", nodeID: execution?.nodeID ?? "",
                    event: Event(message: message, topic: topic, timestamp: input.now, details: details),
                    time: input.now))
        }
        func setJobState(_ state: JobStateType, _ message: String) {
            guard job.state.stateType != state || job.state.message != message else { return }
            guard job.state.stateType.canTransition(to: state) else { return }
            plan.jobState = JobState(state, message: message)
            var details = ["NewState": state.rawValue]
            if state == .failed { details["IsError"] = "true" }
            event(message.isEmpty ? "Job \(state.rawValue.lowercased())" : message, topic: "State Update", details: details)
        }
        /// Looks at the job again after the queue backoff (nodes are full, or a replica just failed).
        func followUp() {
            plan.newEvaluations.append(Self.lookAgain(at: input.now.addingReportingOverflow(settings.queueBackoff).partialValue, job: job, now: input.now, ids: &ids))
        }
        let requested = requestedResources(job)
        func stop(_ execution: Execution, _ message: String) {
            plan.updatedExecutions.append(ExecutionUpdate(executionID: execution.id, desiredState: .stopped, message: message))
            event(message, topic: "Execution", execution: execution)
        }

        // 0. A rerun supersedes what earlier versions still run.
        for execution in input.executions where execution.isActive && execution.jobVersion < job.version {
            stop(execution, "superseded by version \(job.version) of the job")
        }

        // 1. A job that has ended, or was stopped, keeps nothing running.
        if job.state.stateType.isTerminal {
            for execution in input.executions where execution.isActive && execution.jobVersion >= job.version {
                stop(execution, "job \(job.state.stateType.rawValue.lowercased()): \(job.state.message)")
            }
            return plan
        }

        // 1b. Timeouts.TotalTimeout bounds the whole job, queueing included: past it, the job
        // fails and whatever still runs is stopped. The clock starts at submission (for a rerun,
        // when the version's first execution was placed).
        if let deadline = Self.totalDeadline(of: job, versionExecutions: executions), input.now >= deadline {
            for execution in executions where execution.isActive { stop(execution, "the job exceeded its total timeout") }
            setJobState(.failed, "job exceeded Timeouts.TotalTimeout (\(job.task.timeouts.totalTimeout)s) before it completed")
            return plan
        }

        // 2. Executions on nodes that are gone have failed; their partitions get retried.
        let nodesByID = Dictionary(input.nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var lost = Set<String>()
        for execution in executions where execution.isActive {
            let node = nodesByID[execution.nodeID]
            let rejected = node?.state.membership == .rejected
            if node == nil || node?.state.connection == .disconnected || rejected {
                let what = rejected ? Self.rejectedNode : Self.lostNode
                lost.insert(execution.id)
                plan.updatedExecutions.append(
                    ExecutionUpdate(
                        executionID: execution.id, desiredState: .stopped, computeState: .failed,
                        message: "node \(shortID(execution.nodeID)) \(what)"))
                event("node \(shortID(execution.nodeID)) \(what); the partition will be retried", topic: "Execution", execution: execution,
                    details: ["IsError": "true", "Retryable": "true"])
            }
        }

        // Ops and daemon jobs run once on every matching node rather than in partitions.
        // `ops`: one execution on every node that matches when the job is first placed; done when
        // all of them complete. `daemon`: the same, and nodes that match later (they join, or are
        // approved) get one too; it runs until stopped. A node's failure fails the job, as there
        // is no other node to do that node's part; a lost node's part is given up, with its reason.
        func scheduleOnEveryNode() {
            let daemon = job.type == "daemon"

            // A node's part that failed for good (or whose node is gone) fails the job.
            for execution in executions where execution.computeState.stateType == .failed || lost.contains(execution.id) {
                // A daemon outlives its nodes: one that leaves drops out and gets a new
                // execution if it comes back.
                if daemon, lost.contains(execution.id) || Self.isNodeLoss(execution.computeState.message) { continue }
                let retryLater = !lost.contains(execution.id) && isRetryable(execution, lost: lost)
                    && executions.filter({ $0.nodeID == execution.nodeID }).count <= settings.maxRetries
                if retryLater { continue }
                for other in executions where other.isActive && !lost.contains(other.id) { stop(other, "the job failed on another node") }
                let reason = lost.contains(execution.id)
                    ? "node \(shortID(execution.nodeID)) \(input.nodes.first { $0.id == execution.nodeID }?.state.membership == .rejected ? Self.rejectedNode : Self.lostNode)"
                    : failureReason(execution)
                setJobState(.failed, "\(job.type) job failed on node \(shortID(execution.nodeID)): \(reason)")
                return
            }

            // Which nodes need an execution: every matching node the first time; after that, for
            // daemons, newly matching ones too; and nodes whose last attempt may be retried.
            let byNode = Dictionary(grouping: executions, by: \.nodeID)
            let firstPlacement = executions.isEmpty
            var reasons: [String: String] = [:]
            var waiting = 0
            var placedAny = false
            for node in input.nodes.sorted(by: { $0.id < $1.id }) {
                let attempts = byNode[node.id] ?? []
                let needsOne: Bool
                if attempts.isEmpty {
                    needsOne = firstPlacement || daemon
                } else {
                    needsOne = !attempts.contains { $0.isActive || $0.computeState.stateType == .completed }
                }
                guard needsOne else { continue }
                switch feasibility(of: node, job: job, requested: requested, allocated: node.allocated) {
                case .infeasible(let reason):
                    reasons[node.id] = reason
                    continue
                case .busy(let reason):
                    reasons[node.id] = reason
                    waiting += 1
                    continue
                case .fits:
                    break
                }
                let previous = attempts.max { $0.createTime < $1.createTime }
                let execution = Execution(
                    id: ids.executionID(), namespace: job.namespace, jobID: job.id, evalID: input.evaluation.id, nodeID: node.id,
                    jobVersion: job.version, partitionIndex: 0, allocatedResources: requested, desiredState: State(.running),
                    computeState: State(.new), previousExecution: previous?.id ?? "", createTime: input.now, modifyTime: input.now)
                plan.newExecutions.append(execution)
                placedAny = true
                event("Scheduled on node \(shortID(node.id))\(previous == nil ? "" : " (retry)")", topic: "Scheduling", execution: execution)
            }

            let active = executions.filter { $0.isActive && !lost.contains($0.id) }.count + plan.newExecutions.count
            if firstPlacement && !placedAny && waiting == 0 {
                let summary = input.nodes.isEmpty
                    ? "no compute nodes are connected"
                    : input.nodes.map { "node \(shortID($0.id)): \(reasons[$0.id] ?? "no reason")" }.sorted().joined(separator: "; ")
                setJobState(.failed, "no node can run this \(job.type) job. \(summary)")
                return
            }
            if waiting > 0 {
                // Matching nodes that are full now: look again later.
                followUp()
            }
            if !daemon && active == 0 && waiting == 0 {
                setJobState(.completed, "")
                return
            }
            if active == 0 && waiting > 0 {
                setJobState(.queued, "waiting for capacity on \(waiting) node\(waiting == 1 ? "" : "s")")
                return
            }
            setJobState(.running, "")
        }
        if job.type == "ops" || job.type == "daemon" {
            scheduleOnEveryNode()
            return plan
        }

        if let problem = input.partitioning?.problem {
            for execution in executions where execution.isActive && !lost.contains(execution.id) { stop(execution, "the job's dataset is gone") }
            setJobState(.failed, problem)
            return plan
        }
        let reduceExecutions = executions.filter { $0.isReduce }
        let mapExecutions = executions.filter { !$0.isReduce }

        // 3. Classify each partition.
        let count = job.partitionCount
        var needsPlacement: [Int] = []
        var failedPartitions: [(Int, String)] = []
        var completed = 0
        var running = 0
        let service = job.type == "service"
        var backingOff = 0
        for partition in 0..<count {
            let attempts = mapExecutions.filter { $0.partitionIndex == partition }
            if attempts.contains(where: { $0.isActive && !lost.contains($0.id) }) {
                running += 1
                continue
            }
            if service {
                // A replica that ended is replaced, however it ended, unless it keeps failing:
                // the last attempts all failed for good means the program cannot run.
                let ended = attempts.filter { !$0.isActive || lost.contains($0.id) }.sorted { $0.createTime < $1.createTime }
                let recent = ended.suffix(settings.maxRetries + 1)
                if recent.count == settings.maxRetries + 1,
                    recent.allSatisfy({ $0.computeState.stateType == .failed && !isRetryable($0, lost: lost) })
                {
                    failedPartitions.append((partition, "replica keeps failing; last: \(failureReason(recent.last!))"))
                } else if let last = ended.last, last.computeState.stateType == .failed,
                    input.now - last.modifyTime < settings.queueBackoff
                {
                    // A replica that just failed is replaced after a pause, not in a tight loop.
                    backingOff += 1
                } else {
                    needsPlacement.append(partition)
                }
                continue
            }
            if attempts.contains(where: { $0.computeState.stateType == .completed }) {
                completed += 1
                continue
            }
            // No active attempt: retry when the last failure allows it, else the partition failed.
            let ended = attempts.filter { !$0.isActive || lost.contains($0.id) }
            let nonRetryable = ended.first { $0.computeState.stateType == .failed && !isRetryable($0, lost: lost) }
            if let nonRetryable {
                failedPartitions.append((partition, failureReason(nonRetryable)))
            } else if ended.count > settings.maxRetries {
                let last = ended.max { $0.modifyTime < $1.modifyTime }!
                failedPartitions.append((partition, "gave up after \(ended.count) attempts; last: \(failureReason(last))"))
            } else {
                needsPlacement.append(partition)
            }
        }

        // 4. A failed partition fails the job; stop whatever else still runs.
        if let (partition, reason) = failedPartitions.first {
            for execution in mapExecutions where execution.isActive && !lost.contains(execution.id) {
                stop(execution, "another partition failed")
            }
            let prefix = count > 1 ? "partition \(partition) failed: " : ""
            setJobState(.failed, prefix + reason)
            return plan
        }
        if completed == count && !service {
            if let reduce = job.reduceTask {
                switch reduceStep(reduce, input: input, executions: reduceExecutions, lost: lost, ids: &ids, rng: &rng) {
                case .completed:
                    setJobState(.completed, "")
                case .running:
                    setJobState(.running, "")
                case .failed(let message):
                    setJobState(.failed, message)
                case .waiting:
                    setJobState(.running, "")
                    followUp()
                case .place(let execution, let retry):
                    plan.newExecutions.append(execution)
                    event("Scheduled reduce task \(execution.taskName ?? "reduce") on node \(shortID(execution.nodeID))\(retry ? " (retry)" : "")",
                        topic: "Scheduling", execution: execution)
                    setJobState(.running, "")
                }
                return plan
            }
            setJobState(.completed, "")
            return plan
        }

        // 5. Place the partitions that need an execution.
        var allocated = Dictionary(input.nodes.map { ($0.id, $0.allocated) }, uniquingKeysWith: { first, _ in first })
        var jobLoad: [String: Int] = [:]
        for execution in mapExecutions where execution.isActive && !lost.contains(execution.id) {
            jobLoad[execution.nodeID, default: 0] += 1
        }
        var unplaced: [Int] = []
        var reasons: [String: String] = [:]
        // Partitions that no connected node could ever read locally (Locality: local).
        var withoutData: [Int] = []
        for partition in needsPlacement {
            let triedNodes = Set(mapExecutions.filter { $0.partitionIndex == partition }.map(\.nodeID))
            var best: (node: NodeCandidate, score: Double)?
            var holderExists = false
            for node in input.nodes {
                // Data first: with Locality local only nodes holding the partition's whole slice
                // can run it; otherwise nodes holding more of it come first.
                var locality = 0.0
                if let data = input.partitioning {
                    let (held, total) = data.local(partition, on: node)
                    if data.locality == .local, held < total {
                        reasons[node.id] = reasons[node.id] ?? "does not hold partition \(partition)'s data (Locality local)"
                        continue
                    }
                    locality = total == 0 ? 1 : Double(held) / Double(total)
                    if held == total, canEverRun(node, job: job, requested: requested) { holderExists = true }
                }
                switch feasibility(of: node, job: job, requested: requested, allocated: allocated[node.id] ?? Resources()) {
                case .infeasible(let reason):
                    reasons[node.id] = reason
                    continue
                case .busy(let reason):
                    reasons[node.id] = reason
                    continue
                case .fits(let free):
                    // Spread: fewer executions of this job first, then more free capacity; nodes
                    // that already failed this partition come last.
                    var score = -Double(jobLoad[node.id, default: 0]) * 10
                    score += free.cpu + Double(free.memory) / 1e10
                    if triedNodes.contains(node.id) { score -= 1000 }
                    score += locality * 100_000
                    score += Double(rng.next() % 1000) / 1e6
                    if best == nil || score > best!.score { best = (node, score) }
                }
            }
            guard let chosen = best?.node else {
                unplaced.append(partition)
                if input.partitioning?.locality == .local, !holderExists { withoutData.append(partition) }
                continue
            }
            let previous = mapExecutions.filter { $0.partitionIndex == partition }.max { $0.createTime < $1.createTime }
            let execution = Execution(
                id: ids.executionID(), namespace: job.namespace, jobID: job.id, evalID: input.evaluation.id,
                nodeID: chosen.id, jobVersion: job.version, partitionIndex: partition, allocatedResources: requested,
                desiredState: State(.running), computeState: State(.new), previousExecution: previous?.id ?? "",
                createTime: input.now, modifyTime: input.now)
            plan.newExecutions.append(execution)
            allocated[chosen.id] = (allocated[chosen.id] ?? Resources()) + requested
            jobLoad[chosen.id, default: 0] += 1
            let attempt = previous == nil ? "" : " (retry)"
            event("Scheduled partition \(partition) on node \(shortID(chosen.id))\(attempt)", topic: "Scheduling", execution: execution)
        }
        let busyOnly = !unplaced.isEmpty && withoutData.isEmpty && input.nodes.contains { node in
            if case .busy = feasibility(of: node, job: job, requested: requested, allocated: Resources()) { return true }
            if case .fits = feasibility(of: node, job: job, requested: requested, allocated: Resources()) { return true }
            return false
        }

        // 6. Partitions nobody can take: wait for capacity, or fail with every node's reason.
        if !unplaced.isEmpty {
            let summary = input.nodes.isEmpty
                ? "no compute nodes are connected"
                : input.nodes.map { "node \(shortID($0.id)): \(reasons[$0.id] ?? "busy with this job's other partitions")" }
                    .sorted().joined(separator: "; ")
            let queueDeadline = job.task.timeouts.queueTimeout > 0
                ? Deadline.after(job.createTime, seconds: job.task.timeouts.queueTimeout) : nil
            let totalDeadline = job.task.timeouts.totalTimeout > 0
                ? Deadline.after(job.createTime, seconds: job.task.timeouts.totalTimeout) : nil
            let withinQueue = queueDeadline.map { input.now < $0 } ?? false
            let withinTotal = totalDeadline.map { input.now < $0 } ?? true
            if (busyOnly && withinTotal) || (withinQueue && withinTotal) {
                // Wait: feasible nodes are full (or the user allowed queueing). Look again later;
                // any execution that ends also triggers a new evaluation.
                let message = withoutData.isEmpty
                    ? "waiting for capacity: \(unplaced.count) of \(count) partitions not placed yet (\(summary))"
                    : "waiting for a node that holds partition \(withoutData[0])'s data (Locality local): \(withoutData.count) partitions wait (\(summary))"
                if running + plan.newExecutions.count == 0 {
                    setJobState(.queued, message)
                } else {
                    setJobState(.running, "")
                }
                followUp()
                return plan
            }
            let suitable = input.nodes.filter { reasons[$0.id] == nil }.count
            plan.newExecutions.removeAll()
            for execution in mapExecutions where execution.isActive && !lost.contains(execution.id) {
                stop(execution, "job cannot be placed")
            }
            if let partition = withoutData.first, let data = input.partitioning, data.slices.indices.contains(partition) {
                let shards = data.slices[partition].shards.joined(separator: ", ")
                setJobState(
                    .failed,
                    "partition \(partition) cannot run: no connected node holds its data (shard \(shards)) and the input's Locality is local. "
                        + "Bring back a node that holds it, add replicas (cod data add --replication), or set Locality: any. (\(summary))")
                return plan
            }
            setJobState(
                .failed,
                "not enough nodes to run job. requested: \(count), available: \(input.nodes.count), suitable: \(suitable). \(summary)"
            )
            return plan
        }
        if backingOff > 0 {
            followUp()
        }
        setJobState(.running, "")
        return plan
    }

    /// Whether a node could run the job's task at all (ignoring what it runs now).
    func canEverRun(_ node: NodeCandidate, job: Job, requested: Resources) -> Bool {
        if case .infeasible = feasibility(of: node, job: job, requested: requested, allocated: Resources()) { return false }
        return true
    }

    /// What the reduce phase does next.
    enum ReduceStep {
        case completed, running, waiting
        case failed(String)
        case place(Execution, retry: Bool)
    }

    /// The reduce phase: once every partition completed, one execution of the reduce task
    /// reads their outputs; the job completes when it does and fails when it fails for good.
    func reduceStep(
        _ reduce: JobTask, input: SchedulingInput, executions: [Execution], lost: Set<String>,
        ids: inout IDGenerator<SplitMix64>, rng: inout SplitMix64
    ) -> ReduceStep {
        let job = input.job
        var reduceJob = job
        reduceJob.tasks = [reduce]
        let name = reduce.name.isEmpty ? "reduce" : reduce.name
        if executions.contains(where: { $0.computeState.stateType == .completed }) { return .completed }
        if executions.contains(where: { $0.isActive && !lost.contains($0.id) }) { return .running }
        let ended = executions.filter { !$0.isActive || lost.contains($0.id) }
        if let failed = ended.first(where: { $0.computeState.stateType == .failed && !isRetryable($0, lost: lost) }) {
            return .failed("reduce task \(name) failed: \(failureReason(failed))")
        }
        if ended.count > settings.maxRetries, let last = ended.max(by: { $0.modifyTime < $1.modifyTime }) {
            return .failed("reduce task \(name) gave up after \(ended.count) attempts; last: \(failureReason(last))")
        }
        let requested = requestedResources(reduceJob)
        let tried = Set(ended.map(\.nodeID))
        var best: (node: NodeCandidate, score: Double)?
        var reasons: [String] = []
        var busy = false
        for node in input.nodes {
            switch feasibility(of: node, job: reduceJob, requested: requested, allocated: node.allocated) {
            case .infeasible(let reason):
                reasons.append("node \(shortID(node.id)): \(reason)")
            case .busy(let reason):
                reasons.append("node \(shortID(node.id)): \(reason)")
                busy = true
            case .fits(let free):
                var score = free.cpu + Double(free.memory) / 1e10 + Double(rng.next() % 1000) / 1e6
                if tried.contains(node.id) { score -= 1000 }
                if best == nil || score > best!.score { best = (node, score) }
            }
        }
        guard let chosen = best?.node else {
            if busy { return .waiting }
            let summary = input.nodes.isEmpty ? "no compute nodes are connected" : reasons.sorted().joined(separator: "; ")
            return .failed("no node can run the reduce task \(name): \(summary)")
        }
        let previous = ended.max { $0.createTime < $1.createTime }
        let execution = Execution(
            id: ids.executionID(), namespace: job.namespace, jobID: job.id, evalID: input.evaluation.id, nodeID: chosen.id,
            jobVersion: job.version, partitionIndex: 0, allocatedResources: requested, desiredState: State(.running),
            computeState: State(.new), previousExecution: previous?.id ?? "", createTime: input.now, modifyTime: input.now,
            taskName: name)
        return .place(execution, retry: previous != nil)
    }

    /// What a task is allocated: what it asks for, the rest from its engine's defaults.
    func requestedResources(_ job: Job) -> Resources {
        let defaults = ["docker", "process"].contains(job.task.engine.normalizedType)
            ? settings.defaultProgramResources : settings.defaultResources
        return ResourceParsing.resources(job.task.resources, defaults: defaults) ?? defaults
    }

    enum Feasibility {
        case fits(free: Resources)
        /// Could run it, but not now.
        case busy(String)
        /// Can never run it.
        case infeasible(String)
    }

    func feasibility(of node: NodeCandidate, job: Job, requested: Resources, allocated: Resources) -> Feasibility {
        let state = node.state
        let info = state.info.computeNodeInfo
        if state.membership != .approved { return .infeasible("membership is \(state.membership.rawValue)") }
        if state.connection != .connected { return .infeasible("disconnected") }
        if state.liveness == .suspect { return .busy("suspect: its heartbeats stopped; waiting to see if it recovers") }
        let task = job.task
        let engine = task.engine.normalizedType
        if !info.executionEngines.map({ $0.lowercased() }).contains(engine) {
            return .infeasible("engine \(engine) not supported (has \(info.executionEngines.joined(separator: ", ")))")
        }
        let publisher = task.publisher.normalizedType
        if !info.publishers.map({ $0.lowercased() }).contains(publisher) {
            return .infeasible("publisher \(publisher) not supported (has \(info.publishers.joined(separator: ", ")))")
        }
        for input in task.inputSources {
            let type = input.source.normalizedType
            if !info.storageSources.map({ $0.lowercased() }).contains(type) {
                return .infeasible("input type \(input.source.type) not supported (has \(info.storageSources.joined(separator: ", ")))")
            }
        }
        let network = NetworkMode.of(task)
        if task.engine.normalizedType != "wasm", !info.networks.map({ $0.lowercased() }).contains(network.rawValue) {
            if network == .http {
                return .infeasible("network HTTP (a domain allowlist) is not offered (allows \(info.networks.joined(separator: ", ")); ask for Full on a node that allows it)")
            }
            return .infeasible("network \(network.rawValue) not allowed (allows \(info.networks.joined(separator: ", ")))")
        }
        if let mismatch = LabelSelector.firstMismatch(job.constraints, labels: state.info.labels) {
            return .infeasible(mismatch)
        }
        if requested.gpu > 0, info.maxCapacity.gpu == 0 {
            return .infeasible("job needs \(requested.gpu) GPU\(requested.gpu == 1 ? "" : "s"); the node has none")
        }
        let shortfallAtAll = requested.shortfall(against: info.maxCapacity)
        if !shortfallAtAll.isEmpty {
            return .infeasible("job needs more \(shortfallAtAll.joined(separator: " and ")) than the node has in total (\(describe(requested)) requested, \(describe(info.maxCapacity)) total)")
        }
        let free = info.maxCapacity - allocated
        let shortfallNow = requested.shortfall(against: free)
        if !shortfallNow.isEmpty {
            return .busy("not enough free \(shortfallNow.joined(separator: " and ")) right now")
        }
        return .fits(free: free)
    }

    func describe(_ resources: Resources) -> String {
        let cpu = (resources.cpu * 1000).rounded() / 1000
        return "cpu \(cpu), memory \(ResourceParsing.formatBytes(resources.memory))"
    }

    /// Failures the compute node marked retryable, rejected bids and lost nodes are retried;
    /// a module that traps or times out would do the same again, so it is not.
    func isRetryable(_ execution: Execution, lost: Set<String>) -> Bool {
        if lost.contains(execution.id) { return true }
        switch execution.computeState.stateType {
        case .askForBidRejected, .bidRejected, .cancelled: return true
        case .failed:
            // The orchestrator prefixes the state message of failures the node reported as
            // retryable; older nodes put the marker in the run output's error instead.
            return execution.computeState.message.hasPrefix(Self.retryableMarker)
                || execution.runOutput?.errorMsg.hasPrefix(Self.retryableMarker) == true
        case .undefined, .new, .askForBid, .askForBidAccepted, .bidAccepted, .running, .publishing, .completed:
            return true
        }
    }

    static let lostNode = "was lost"
    static let rejectedNode = "was rejected by an administrator"

    /// Whether a failure message is the scheduler's own note that the node went away.
    static func isNodeLoss(_ message: String) -> Bool {
        message.hasPrefix("node ") && (message.hasSuffix(lostNode) || message.hasSuffix(rejectedNode))
    }

    /// Compute nodes prefix messages of failures worth retrying elsewhere with this marker.
    public static let retryableMarker = "[retryable] "

    func failureReason(_ execution: Execution) -> String {
        let message = execution.computeState.message.isEmpty
            ? (execution.runOutput?.errorMsg ?? "") : execution.computeState.message
        let clean = message.hasPrefix(Self.retryableMarker) ? String(message.dropFirst(Self.retryableMarker.count)) : message
        return "execution \(shortID(execution.id)) on node \(shortID(execution.nodeID)) \(execution.computeState.stateType.name.lowercased())"
            + (clean.isEmpty ? "" : ": \(clean)")
    }
}
