public import Models

/// `PUT /api/v1/orchestrator/jobs` request.
public struct PutJobRequest: Codable, Sendable {
    public var job: Job
    public var force: Bool?
    public var idempotencyToken: String?

    public init(job: Job, force: Bool? = nil) {
        self.job = job
        self.force = force
    }

    enum CodingKeys: String, CodingKey {
        case job = "Job", force = "Force", idempotencyToken = "IdempotencyToken"
    }
}

/// `PUT /api/v1/orchestrator/jobs` response.
public struct PutJobResponse: Codable, Sendable {
    public var jobID: String
    public var evaluationID: String
    public var warnings: [String]

    public init(jobID: String, evaluationID: String, warnings: [String]) {
        self.jobID = jobID
        self.evaluationID = evaluationID
        self.warnings = warnings
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "JobID", evaluationID = "EvaluationID", warnings = "Warnings"
    }
}

/// A page of items: `{"Items": [...], "NextToken": "..."}`.
public struct ListResponse<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var nextToken: String

    public init(items: [Item], nextToken: String = "") {
        self.items = items
        self.nextToken = nextToken
    }

    enum CodingKeys: String, CodingKey {
        case items = "Items", nextToken = "NextToken"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        items = try c.decodeIfPresent([Item].self, forKey: .items) ?? []
        nextToken = try c.decodeIfPresent(String.self, forKey: .nextToken) ?? ""
    }
}

/// `GET /api/v1/orchestrator/jobs/{id}` response.
public struct GetJobResponse: Codable, Sendable {
    public var job: Job
    public var history: ListResponse<JobHistory>?
    public var executions: ListResponse<Execution>?

    public init(job: Job, history: ListResponse<JobHistory>? = nil, executions: ListResponse<Execution>? = nil) {
        self.job = job
        self.history = history
        self.executions = executions
    }

    enum CodingKeys: String, CodingKey {
        case job = "Job", history = "History", executions = "Executions"
    }
}

/// `PUT /api/v1/orchestrator/jobs/{id}/rerun` request (Bacalhau's shape; every field optional).
public struct RerunJobRequest: Codable, Sendable {
    public var jobIDOrName: String?
    public var jobVersion: UInt64?
    public var reason: String?
    public init(jobIDOrName: String? = nil, jobVersion: UInt64? = nil, reason: String? = nil) {
        self.jobIDOrName = jobIDOrName
        self.jobVersion = jobVersion
        self.reason = reason
    }
    enum CodingKeys: String, CodingKey { case jobIDOrName = "JobIDOrName", jobVersion = "JobVersion", reason = "Reason" }
}

/// `PUT /api/v1/orchestrator/jobs/{id}/rerun` response.
public struct RerunJobResponse: Codable, Sendable {
    public var jobID: String
    public var jobVersion: UInt64
    public var evaluationID: String
    public var warnings: [String]
    public init(jobID: String, jobVersion: UInt64, evaluationID: String, warnings: [String] = []) {
        self.jobID = jobID
        self.jobVersion = jobVersion
        self.evaluationID = evaluationID
        self.warnings = warnings
    }
    enum CodingKeys: String, CodingKey {
        case jobID = "JobID", jobVersion = "JobVersion", evaluationID = "EvaluationID", warnings = "Warnings"
    }
}

/// `DELETE /api/v1/orchestrator/jobs/{id}` response.
public struct StopJobResponse: Codable, Sendable {
    public var evaluationID: String
    public init(evaluationID: String) { self.evaluationID = evaluationID }
    enum CodingKeys: String, CodingKey { case evaluationID = "EvaluationID" }
}

/// `GET /api/v1/orchestrator/nodes` response (Bacalhau names the list `Nodes`).
public struct ListNodesResponse: Codable, Sendable {
    public var nodes: [NodeState]
    public var nextToken: String

    public init(nodes: [NodeState], nextToken: String = "") {
        self.nodes = nodes
        self.nextToken = nextToken
    }

    // Lower case as in Bacalhau's swagger (its Python client needs it; Go clients ignore case).
    enum CodingKeys: String, CodingKey { case nodes, nextToken = "NextToken" }
}

/// `GET /api/v1/orchestrator/nodes/{id}` response.
public struct GetNodeResponse: Codable, Sendable {
    public var node: NodeState
    public init(node: NodeState) { self.node = node }
    enum CodingKeys: String, CodingKey { case node }
}

/// `PUT /api/v1/orchestrator/nodes/{id}` (or `POST /api/v1/orchestrator/nodes`) request: an
/// administrator's decision about a node.
public struct PutNodeRequest: Codable, Sendable {
    public var nodeID: String
    /// `approve`, `reject` or `delete`.
    public var action: String
    public var message: String

    public init(nodeID: String = "", action: String, message: String = "") {
        self.nodeID = nodeID
        self.action = action
        self.message = message
    }

    enum CodingKeys: String, CodingKey { case nodeID = "NodeID", action = "Action", message = "Message" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nodeID = try c.decodeIfPresent(String.self, forKey: .nodeID) ?? ""
        action = try c.decodeIfPresent(String.self, forKey: .action) ?? ""
        message = try c.decodeIfPresent(String.self, forKey: .message) ?? ""
    }
}

/// Answer to ``PutNodeRequest``.
public struct PutNodeResponse: Codable, Sendable {
    public var success: Bool
    public var error: String
    public var node: NodeState?

    public init(success: Bool, error: String = "", node: NodeState? = nil) {
        self.success = success
        self.error = error
        self.node = node
    }

    enum CodingKeys: String, CodingKey { case success = "Success", error = "Error", node = "Node" }
}

/// `GET /api/v1/agent/alive` response.
public struct AliveResponse: Codable, Sendable {
    public var status: String
    public init(status: String = "OK") { self.status = status }
    enum CodingKeys: String, CodingKey { case status = "Status" }
}

/// The JSON body of every API error.
public struct ErrorResponse: Codable, Sendable {
    public var error: String
    public var message: String
    public var code: String
    public var status: Int
    public var hint: String?
    public var requestID: String?

    public init(message: String, code: String, status: Int, hint: String? = nil, requestID: String? = nil) {
        self.error = message
        self.message = message
        self.code = code
        self.status = status
        self.hint = hint
        self.requestID = requestID
    }

    enum CodingKeys: String, CodingKey {
        case error, message = "Message", code = "Code", status = "Status", hint = "Hint", requestID = "RequestID"
    }
}

/// One line of a job's logs, as streamed by `/logs`.
public struct ExecutionLog: Codable, Sendable {
    /// 1 = stdout, 2 = stderr.
    public var type: Int
    public var line: String
    public var executionID: String

    public init(type: Int, line: String, executionID: String) {
        self.type = type
        self.line = line
        self.executionID = executionID
    }

    enum CodingKeys: String, CodingKey { case type = "Type", line = "Line", executionID = "ExecutionID" }
}

/// `PUT /api/v1/data/car` response.
public struct DataImportResponse: Codable, Sendable {
    public var roots: [String]
    public var blocks: Int
    public init(roots: [String], blocks: Int) {
        self.roots = roots
        self.blocks = blocks
    }
    enum CodingKeys: String, CodingKey { case roots = "Roots", blocks = "Blocks" }
}

/// One entry of `GET /api/v1/data/ls/{cid}`.
public struct DataEntry: Codable, Sendable {
    public var name: String
    public var cid: String
    public var size: UInt64
    public var type: String
    public init(name: String, cid: String, size: UInt64, type: String) {
        self.name = name
        self.cid = cid
        self.size = size
        self.type = type
    }
    enum CodingKeys: String, CodingKey { case name = "Name", cid = "CID", size = "Size", type = "Type" }
}

public struct DataListResponse: Codable, Sendable {
    public var entries: [DataEntry]
    public init(entries: [DataEntry]) { self.entries = entries }
    enum CodingKeys: String, CodingKey { case entries = "Entries" }
}

/// `GET /api/v1/data/stat` response.
public struct DataStatResponse: Codable, Sendable {
    public var blocks: Int
    public var bytes: UInt64
    public var pins: [String]
    public init(blocks: Int, bytes: UInt64, pins: [String]) {
        self.blocks = blocks
        self.bytes = bytes
        self.pins = pins
    }
    enum CodingKeys: String, CodingKey { case blocks = "Blocks", bytes = "Bytes", pins = "Pins" }
}

/// `POST /api/v1/data/gc` response.
public struct DataGCResponse: Codable, Sendable {
    public var removedBlocks: Int
    public var freedBytes: UInt64
    public init(removedBlocks: Int, freedBytes: UInt64) {
        self.removedBlocks = removedBlocks
        self.freedBytes = freedBytes
    }
    enum CodingKeys: String, CodingKey { case removedBlocks = "RemovedBlocks", freedBytes = "FreedBytes" }
}

/// What one garbage-collection pass of ended jobs removed (`POST /api/v1/orchestrator/gc`).
public struct GarbageCollectionResponse: Codable, Sendable {
    public var jobs: Int
    public var executions: Int
    public var bundleBytes: Int64
    public var blocks: Int
    public var blockBytes: UInt64

    public init(jobs: Int = 0, executions: Int = 0, bundleBytes: Int64 = 0, blocks: Int = 0, blockBytes: UInt64 = 0) {
        self.jobs = jobs
        self.executions = executions
        self.bundleBytes = bundleBytes
        self.blocks = blocks
        self.blockBytes = blockBytes
    }

    enum CodingKeys: String, CodingKey {
        case jobs = "Jobs", executions = "Executions", bundleBytes = "ResultBundleBytes", blocks = "ResultBlocks"
        case blockBytes = "ResultBlockBytes"
    }
}

// MARK: Datasets

/// `POST /api/v1/orchestrator/datasets/placement`: where to put the shards of a new dataset.
public struct DatasetPlacementRequest: Codable, Sendable {
    public var shards: Int
    public var replication: Int
    public init(shards: Int, replication: Int) {
        self.shards = shards
        self.replication = replication
    }
    enum CodingKeys: String, CodingKey { case shards = "Shards", replication = "Replication" }
}

/// A compute node that can take a shard, with the API address data is uploaded to.
public struct DatasetNode: Codable, Sendable, Hashable {
    public var nodeID: String
    public var address: String
    public init(nodeID: String, address: String) {
        self.nodeID = nodeID
        self.address = address
    }
    enum CodingKeys: String, CodingKey { case nodeID = "NodeID", address = "Address" }
}

/// For each shard, the nodes to try in order (the first `Replication` are the choice; the rest
/// stand in for any that cannot be reached).
public struct DatasetPlacementResponse: Codable, Sendable {
    public var candidates: [[DatasetNode]]
    public init(candidates: [[DatasetNode]]) { self.candidates = candidates }
    enum CodingKeys: String, CodingKey { case candidates = "Candidates" }
}

/// `PUT /api/v1/orchestrator/datasets`. With `After`, the manifest is the next version of the
/// named dataset `Dataset.Name`, which must stand at version `After` (0: it does not exist
/// yet); otherwise the request is refused with a conflict and stores nothing.
public struct PutDatasetRequest: Codable, Sendable {
    public var dataset: DatasetManifest
    public var after: Int?
    public init(dataset: DatasetManifest, after: Int? = nil) {
        self.dataset = dataset
        self.after = after
    }
    enum CodingKeys: String, CodingKey { case dataset = "Dataset", after = "After" }
}

/// A dataset and, per shard, the connected nodes that announce holding it now; when it was just
/// stored or looked up as a named dataset's version, that version's number.
public struct DatasetInfo: Codable, Sendable {
    public var dataset: DatasetManifest
    public var holders: [[String]]
    public var version: Int?
    public init(dataset: DatasetManifest, holders: [[String]], version: Int? = nil) {
        self.dataset = dataset
        self.holders = holders
        self.version = version
    }
    enum CodingKeys: String, CodingKey { case dataset = "Dataset", holders = "Holders", version = "Version" }
}

/// `GET /api/v1/orchestrator/jobs/{id}/verification`: how each partition's replicas compare.
public struct JobVerificationResponse: Codable, Sendable {
    public var jobID: String
    /// The job's settings; nil for a job that is not verified.
    public var verification: Verification?
    public var partitions: [PartitionVerification]

    public init(jobID: String, verification: Verification?, partitions: [PartitionVerification]) {
        self.jobID = jobID
        self.verification = verification
        self.partitions = partitions
    }

    enum CodingKeys: String, CodingKey { case jobID = "JobID", verification = "Verification", partitions = "Partitions" }
}

/// One partition's replicas: their results grouped by comparison key, and where the quorum stands.
public struct PartitionVerification: Codable, Sendable {
    /// `Accepted`, `Deciding`, `NoConsensus` or `TooManyErrors`; for an audited partition
    /// `Checking` or the audit's outcome (`Confirmed`, `Overturned`, `NoConsensus`, `Abandoned`);
    /// for a Fast job's partition that is not audited, `Unchecked`.
    public var state: String
    public var partition: Int
    public var acceptedKey: String?
    public var groups: [VerificationGroup]
    public var running: [String]
    public var failed: [String]
    /// The audit of the partition's accepted result (a spot check or a re-check), when it has
    /// one: its groups are then the audited result and its re-runs.
    public var check: ResultCheck?

    public init(
        state: String, partition: Int, acceptedKey: String?, groups: [VerificationGroup], running: [String], failed: [String],
        check: ResultCheck? = nil
    ) {
        self.state = state
        self.partition = partition
        self.acceptedKey = acceptedKey
        self.groups = groups
        self.running = running
        self.failed = failed
        self.check = check
    }

    enum CodingKeys: String, CodingKey {
        case state = "State", partition = "Partition", acceptedKey = "AcceptedKey", groups = "Groups", running = "Running", failed = "Failed"
        case check = "Check"
    }
}

/// Replicas whose results share one comparison key.
public struct VerificationGroup: Codable, Sendable {
    public var key: String
    public var executions: [VerifiedReplica]

    public init(key: String, executions: [VerifiedReplica]) {
        self.key = key
        self.executions = executions
    }

    enum CodingKeys: String, CodingKey { case key = "Key", executions = "Executions" }
}

public struct VerifiedReplica: Codable, Sendable {
    public var executionID: String
    public var nodeID: String
    public var verdict: Verdict?

    public init(executionID: String, nodeID: String, verdict: Verdict?) {
        self.executionID = executionID
        self.nodeID = nodeID
        self.verdict = verdict
    }

    enum CodingKeys: String, CodingKey { case executionID = "ExecutionID", nodeID = "NodeID", verdict = "Verdict" }
}

/// `POST /api/v1/orchestrator/accounts/{id}/deposit` and `/payout`: an admin moves credits
/// into a user's account from outside, or a node's earnings out.
public struct AccountTransferRequest: Codable, Sendable {
    /// Micro-credits, from 1.
    public var amount: Int64
    public var memo: String

    public init(amount: Int64, memo: String = "") {
        self.amount = amount
        self.memo = memo
    }

    enum CodingKeys: String, CodingKey { case amount = "Amount", memo = "Memo" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        amount = try c.decode(Int64.self, forKey: .amount)
        memo = try c.decodeIfPresent(String.self, forKey: .memo) ?? ""
    }
}

/// `POST /api/v1/orchestrator/jobs/estimate`: what a job would use and cost. With `Sample`, the
/// orchestrator submits its first partition as a job of its own and answers with that job's
/// ID; asked again with `SampleJobID` once it ended, it estimates from that run.
public struct EstimateJobRequest: Codable, Sendable {
    public var job: Job
    public var sample: Bool
    public var sampleJobID: String?

    public init(job: Job, sample: Bool = false, sampleJobID: String? = nil) {
        self.job = job
        self.sample = sample
        self.sampleJobID = sampleJobID
    }

    enum CodingKeys: String, CodingKey { case job = "Job", sample = "Sample", sampleJobID = "SampleJobID" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        job = try c.decode(Job.self, forKey: .job)
        sample = try c.decodeIfPresent(Bool.self, forKey: .sample) ?? false
        sampleJobID = try c.decodeIfPresent(String.self, forKey: .sampleJobID)
    }
}

/// The estimate, or (for a request with `Sample`) the sample job to wait for.
public struct EstimateJobResponse: Codable, Sendable {
    public var estimate: JobEstimate?
    public var sampleJobID: String?

    public init(estimate: JobEstimate? = nil, sampleJobID: String? = nil) {
        self.estimate = estimate
        self.sampleJobID = sampleJobID
    }

    enum CodingKeys: String, CodingKey { case estimate = "Estimate", sampleJobID = "SampleJobID" }
}
