import ContentAddressing
import Foundation
import GRDB
public import Models
public import Scheduler
public import Wire

/// A message to a node, stored in the outbox in the transaction that caused it.
public struct OutboxMessage: Sendable {
    public var nodeID: String
    public var seq: UInt64
    public var message: NodeMessage

    public init(nodeID: String, seq: UInt64, message: NodeMessage) {
        self.nodeID = nodeID
        self.seq = seq
        self.message = message
    }
}

/// What applying a plan did, for the caller to act on after the commit.
public struct PlanOutcome: Sendable {
    /// False when the job changed since the snapshot: recompute and retry.
    public var applied: Bool
    public var outbox: [OutboxMessage]
    public var newEvaluations: [Evaluation]
    /// The job's state after the plan, when it changed.
    public var jobState: JobState?
    /// Executions failed instead of sent: their message would not fit in one frame to the
    /// node (a slice of a huge dataset, say). The job needs another look.
    public var undeliverable: [String] = []
}

extension AppDatabase {
    /// Pending evaluations, oldest first; the broker decides which are ready.
    public func pendingEvaluations() async throws -> [Evaluation] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM evaluations WHERE status = 'pending' ORDER BY createTime")
                // A record that no longer decodes is skipped, never a reason to stop recovering.
                .compactMap { try? Self.decode(Evaluation.self, $0) }
        }
    }

    /// Everything the scheduler needs for one evaluation, read in one consistent snapshot.
    public func schedulingInput(for evaluation: Evaluation, now: Int64) async throws -> SchedulingInput? {
        try await writer.read { db in
            guard let job = try Self.fetchJob(evaluation.jobID, db) else { return nil }
            return try Self.schedulingInput(job: job, evaluation: evaluation, now: now, db)
        }
    }

    /// The same for a job not stored (an estimate's): where it would run if submitted now.
    public func schedulingInput(proposed job: Job, evaluation: Evaluation, now: Int64) async throws -> SchedulingInput {
        try await writer.read { db in try Self.schedulingInput(job: job, evaluation: evaluation, now: now, db) }
    }

    static func schedulingInput(job: Job, evaluation: Evaluation, now: Int64, _ db: Database) throws -> SchedulingInput {
        let executions = try Self.fetchExecutions(jobID: job.id, db)
        let invalid = try Self.invalidResults(db)
        let nodes = try Self.fetchNodes(db).map { node in
            var node = node
            node.invalidResults = invalid[node.info.nodeID] ?? 0
            return node
        }
        // An execution waiting on unfinished children lends its CPU (its memory stays), so a
        // parent on a one-slot node leaves room for its child.
        var allocated: [String: Resources] = [:]
        let rows = try Row.fetchAll(
            db, sql: """
                SELECT nodeID,
                    SUM(CASE WHEN EXISTS (SELECT 1 FROM jobs c WHERE c.parentExecutionID = executions.id AND c.state IN \(Self.unfinished))
                        THEN 0 ELSE cpu END) AS cpu,
                    SUM(memory) AS memory, SUM(disk) AS disk, SUM(gpu) AS gpu
                FROM executions WHERE active = 1 GROUP BY nodeID
                """)
        for row in rows {
            let memory: Int64 = row["memory"], disk: Int64 = row["disk"], gpu: Int64 = row["gpu"]
            allocated[row["nodeID"]] = Resources(
                cpu: row["cpu"], memory: UInt64(max(memory, 0)), disk: UInt64(max(disk, 0)), gpu: UInt64(max(gpu, 0)))
        }
        let candidates = nodes.map { NodeCandidate(state: $0, allocated: allocated[$0.info.nodeID] ?? Resources()) }
        var input = SchedulingInput(evaluation: evaluation, job: job, executions: executions, nodes: candidates, now: now)
        if job.isVerified { input.reputation = try Self.reputations(for: job.task, db) }
        do {
            if let (spec, slices) = try Self.partitionSlices(of: job, db) {
                input.partitioning = PartitionedData(slices: slices, locality: spec.locality)
            }
        } catch {
            // The dataset's manifest is gone (it was checked at submission).
            input.partitioning = PartitionedData(slices: [], locality: .local, problem: "\(error)")
        }
        return input
    }

    /// Applies a plan in one transaction: job state, executions, follow-up evaluations, history,
    /// and the outbox messages the changes imply. Other pending evaluations of the same job are
    /// completed too: this plan already reflects the state they were created for.
    public func apply(_ plan: Plan, now: Int64) async throws -> PlanOutcome {
        try await writer.write { db in
            guard var job = try Self.fetchJob(plan.jobID, db) else {
                try Self.complete(evaluationsOf: plan.jobID, status: .cancelled, db)
                return PlanOutcome(applied: true, outbox: [], newEvaluations: [], jobState: nil)
            }
            guard job.revision == plan.expectedJobRevision else {
                return PlanOutcome(applied: false, outbox: [], newEvaluations: [], jobState: nil)
            }
            if let state = plan.jobState {
                job.state = state
                job.revision += 1
                job.modifyTime = now
                try Self.update(job: job, db)
            }
            var outbox: [OutboxMessage] = []
            let verifiedJob = job.isVerified ? job : nil
            // Verdicts first: a reduce placed by this same plan reads the accepted results.
            var caught: [String: Execution] = [:]
            for update in plan.updatedExecutions {
                guard let verdict = update.verdict,
                      var execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [update.executionID])
                        .map({ try Self.decode(Execution.self, $0) }),
                      execution.verdict != verdict
                else { continue }
                execution.verdict = verdict
                if verdict == .unchecked {
                    // An unchecked acceptance does not count toward the node's reputation; it is
                    // remembered, to re-check should the node be caught lying.
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO unchecked (executionID, nodeID, jobID, createTime) VALUES (?, ?, ?, ?)",
                        arguments: [execution.id, execution.nodeID, execution.jobID, execution.createTime])
                } else {
                    // A comparison's outcome (a quorum's or an audit's) counts toward it.
                    try Self.record(verdict == .valid ? .valid : .invalid, nodeID: execution.nodeID, job: job, db)
                    if verdict == .invalid {
                        caught[execution.nodeID] = caught[execution.nodeID] ?? execution
                        try Self.refund(execution, now: now, db)
                    }
                }
                try Self.update(execution: execution, db)
            }
            var newEvaluations = plan.newEvaluations
            if !caught.isEmpty {
                var ids = IDGenerator(rng: SplitMix64(seedString: plan.evaluation.id + "/recheck"))
                for (nodeID, execution) in caught.sorted(by: { $0.key < $1.key }) {
                    for rechecked in try Self.startRechecks(of: nodeID, caughtBy: execution, now: now, db) {
                        let evaluation = Evaluation(
                            id: ids.evaluationID(), namespace: rechecked.namespace, jobID: rechecked.id, triggeredBy: .recheck,
                            priority: rechecked.priority, type: rechecked.type, createTime: now, modifyTime: now)
                        try Self.insert(evaluation: evaluation, db)
                        newEvaluations.append(evaluation)
                    }
                }
            }
            let slices = plan.newExecutions.isEmpty ? nil : try? Self.partitionSlices(of: job, db)?.slices
            // Node records are read once, and only when an execution has `ipfs` inputs.
            var nodes: [NodeState]?
            var undeliverable: [String] = []
            for planned in plan.newExecutions {
                var execution = planned
                var queued: OutboxMessage?
                if execution.desiredState.stateType == .running {
                    // Each execution sees its own part: a partition's files, or the reduce task.
                    let view = try Self.executionView(of: job, for: execution, slices: slices, db)
                    let sources = try Self.contentSources(for: view) {
                        if nodes == nil { nodes = try Self.fetchNodes(db) }
                        return nodes ?? []
                    }
                    let message = NodeMessage.RunExecution(
                        execution: execution, job: view, contentSources: sources.isEmpty ? nil : sources,
                        apiKey: try Self.mintKey(for: execution, of: job, db))
                    do {
                        queued = try Self.enqueue(.runExecution(message), to: execution.nodeID, db)
                    } catch let error as UndeliverableMessage {
                        // It would block every later message to the node: the execution fails instead.
                        let reason = "the execution's message to its node would be \(error.size) bytes, more than the \(NodeMessage.maxFrameBytes)-byte frame limit; put large inline data in the content store (cod data add) or split the input into more partitions"
                        execution.computeState = State(.failed, message: reason)
                        execution.failure = ExecutionFailure(.engineError, retryable: false, neverStarted: true)
                        execution.desiredState = State(.stopped, message: reason)
                        undeliverable.append(execution.id)
                    }
                }
                try Self.insert(execution: execution, db)
                if let queued { outbox.append(queued) }
            }
            for update in plan.updatedExecutions {
                guard var execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [update.executionID])
                    .map({ try Self.decode(Execution.self, $0) })
                else { continue }
                let wasLive = !execution.computeState.stateType.isTerminal
                if let desired = update.desiredState { execution.desiredState = State(desired, message: update.message) }
                if let compute = update.computeState, execution.computeState.stateType.canTransition(to: compute) {
                    execution.computeState = State(compute, message: update.message)
                    if let failure = update.failure {
                        execution.failure = failure
                        if let job = verifiedJob, let event = Self.reputationEvent(of: execution, failure: failure, in: job) {
                            try Self.record(event, nodeID: execution.nodeID, job: job, db)
                        }
                    }
                }

                if let check = update.check {
                    execution.check = check
                    try db.execute(sql: "DELETE FROM unchecked WHERE executionID = ?", arguments: [execution.id])
                }
                execution.revision += 1
                execution.modifyTime = now
                try Self.update(execution: execution, db)
                // A stop for work the node may still be doing becomes a cancel message.
                if update.desiredState == .stopped, wasLive, update.computeState == nil {
                    outbox.append(
                        try Self.enqueue(.cancelExecution(.init(executionID: execution.id, reason: update.message)), to: execution.nodeID, db))
                }
            }
            for evaluation in plan.newEvaluations { try Self.insert(evaluation: evaluation, db) }
            for event in plan.events { try Self.append(event, db) }
            try Self.complete(evaluationsOf: plan.jobID, status: .complete, createdBefore: plan.evaluation.createTime, db)
            try db.execute(
                sql: "UPDATE evaluations SET status = 'complete' WHERE id = ?", arguments: [plan.evaluation.id])
            try Self.settle(jobID: plan.jobID, now: now, db)
            return PlanOutcome(
                applied: true, outbox: outbox, newEvaluations: newEvaluations, jobState: plan.jobState, undeliverable: undeliverable)
        }
    }

    /// For each `ipfs` input of the job, the API addresses of connected nodes that announced
    /// holding it, so the executing node can fetch from a peer. A partition's files are
    /// fetched from the nodes that hold their shards.
    static func contentSources(for job: Job, nodes: () throws -> [NodeState]) rethrows -> [String: [String]] {
        var wanted: [(cid: String, heldAs: String)] = []
        for input in job.task.inputSources where input.source.normalizedType == "ipfs" {
            if let files = DatasetPartitioner.sliceFiles(of: input.source) {
                wanted += files.map { ($0.file.cid, $0.shard) }
            } else if let cid = input.source.params["CID"]?.stringValue {
                // Announcements are CIDv1 strings; an input may name the same content as CIDv0.
                wanted.append((cid, CID.v1String(cid)))
            }
        }
        guard !wanted.isEmpty else { return [:] }
        var sources: [String: [String]] = [:]
        for node in try nodes() where node.connection == .connected && !node.info.computeNodeInfo.address.isEmpty {
            let held = Set(node.info.computeNodeInfo.heldRoots)
            for (cid, heldAs) in wanted where held.contains(heldAs) {
                sources[cid, default: []].append(node.info.computeNodeInfo.address)
            }
        }
        return sources
    }

    /// Marks an evaluation failed (the scheduler could not run it), keeping why in its comment.
    public func failEvaluation(id: String, reason: String) async throws {
        try await writer.write { db in
            guard var evaluation = try Data.fetchOne(db, sql: "SELECT data FROM evaluations WHERE id = ?", arguments: [id])
                .map({ try Self.decode(Evaluation.self, $0) })
            else { return }
            evaluation.status = .failed
            evaluation.comment = reason
            try db.execute(
                sql: "UPDATE evaluations SET status = 'failed', data = ? WHERE id = ?", arguments: [try Self.encode(evaluation), id])
        }
    }

    /// Adds an evaluation for a job (an execution changed, a node left).
    public func addEvaluation(_ evaluation: Evaluation) async throws {
        try await writer.write { db in try Self.insert(evaluation: evaluation, db) }
    }

    static func complete(evaluationsOf jobID: String, status: Evaluation.Status, createdBefore: Int64 = .max, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE evaluations SET status = ? WHERE jobID = ? AND status = 'pending' AND createTime <= ? AND waitUntil = 0",
            arguments: [status.rawValue, jobID, createdBefore])
    }

    /// Appends a message to a node's outbox with the node's next sequence number. A message
    /// whose envelope would not fit in one frame (with 4 KiB to spare) could never be
    /// delivered and would hold up everything queued after it: it is not queued, and
    /// `UndeliverableMessage` says how large it was.
    static func enqueue(_ message: NodeMessage, to nodeID: String, _ db: Database) throws -> OutboxMessage {
        try db.execute(
            sql: """
                INSERT INTO nodeStreams (nodeID, nextOutSeq, ackedOutSeq, lastInSeq, computeSession) VALUES (?, 1, 0, 0, '')
                ON CONFLICT(nodeID) DO NOTHING
                """, arguments: [nodeID])
        let seq = try UInt64.fetchOne(db, sql: "SELECT nextOutSeq FROM nodeStreams WHERE nodeID = ?", arguments: [nodeID]) ?? 1
        let data = try encode(Envelope(seq: seq, message: message))
        guard data.count <= NodeMessage.maxFrameBytes - 4096 else { throw UndeliverableMessage(size: data.count) }
        try db.execute(sql: "UPDATE nodeStreams SET nextOutSeq = ? WHERE nodeID = ?", arguments: [seq + 1, nodeID])
        try db.execute(sql: "INSERT INTO outbox (nodeID, seq, data) VALUES (?, ?, ?)", arguments: [nodeID, seq, data])
        return OutboxMessage(nodeID: nodeID, seq: seq, message: message)
    }
}

/// A message too large for one frame to its node; nothing was queued.
struct UndeliverableMessage: Error {
    let size: Int
}
