import Foundation
import GRDB
public import Models
public import Scheduler
public import Wire

/// The result of a compute node's handshake.
public struct HandshakeOutcome: Sendable {
    /// The last compute message the orchestrator handled in this node's current session.
    public var lastComputeSeq: UInt64
    /// Unacknowledged messages to resend, in order.
    public var replay: [OutboxMessage]
    /// Jobs whose executions the node no longer has; they need evaluating.
    public var affectedJobs: [String]
    /// The node's membership; a rejected node is refused and nothing else is recorded.
    public var membership: NodeMembership
}

/// The result of handling a compute node's report.
public struct ComputeUpdateOutcome: Sendable {
    /// False for duplicates and reports that arrive after the execution ended.
    public var changed: Bool
    public var jobID: String?
    /// The follow-up evaluation stored with the report, when it ended the execution.
    public var evaluation: Evaluation?
    /// A result that arrived for an execution already given up (its node was lost meanwhile):
    /// the result DAG uploaded for it is not needed.
    public var discardedResultCID: String?

    public init(changed: Bool, jobID: String?, evaluation: Evaluation? = nil, discardedResultCID: String? = nil) {
        self.changed = changed
        self.jobID = jobID
        self.evaluation = evaluation
        self.discardedResultCID = discardedResultCID
    }
}

extension AppDatabase {
    /// Every node, with the last refused hello for its ID where there was one.
    public func nodes() async throws -> [NodeState] {
        try await writer.read { db in
            let refusals = try Row.fetchAll(db, sql: "SELECT nodeID, lastRefusal FROM nodeKeys WHERE lastRefusal IS NOT NULL")
                .reduce(into: [String: String]()) { $0[$1["nodeID"]] = $1["lastRefusal"] }
            let invalid = try Self.invalidResults(db)
            let keys = try Row.fetchAll(db, sql: "SELECT nodeID, publicKey FROM nodeKeys")
                .reduce(into: [String: String]()) { $0[$1["nodeID"]] = $1["publicKey"] }
            return try Self.fetchNodes(db).map { node in
                var node = node
                node.lastRefusal = refusals[node.info.nodeID]
                node.publicKey = keys[node.info.nodeID]
                node.invalidResults = invalid[node.info.nodeID] ?? 0
                return node
            }
        }
    }

    /// Every node as stored, without what ``nodes()`` adds (refusals, keys, invalid results):
    /// what pricing a submission needs, read cheaply.
    public func nodeRecords() async throws -> [NodeState] {
        try await writer.read { db in try Self.fetchNodes(db) }
    }

    static func fetchNodes(_ db: Database) throws -> [NodeState] {
        try Row.fetchAll(db, sql: "SELECT id, data FROM nodes ORDER BY id").map { try decodeNode(id: $0["id"], data: $0["data"]) }
    }

    static func save(node: NodeState, _ db: Database) throws {
        // What is worked out when nodes are read is never stored with them.
        var node = node
        node.invalidResults = 0
        node.quarantine = nil
        node.publicKey = nil
        let data = try encode(node)
        try db.execute(
            sql: "INSERT INTO nodes (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            arguments: [node.info.nodeID, data])
        nodeCache.insert(id: node.info.nodeID, data: data, node)
    }

    /// Decoded node records by their exact stored bytes. Every scheduling pass reads all nodes
    /// and every heartbeat one; with a thousand nodes, decoding their JSON each time was most
    /// of the cost. Keyed by content, a stale entry can never be returned.
    static let nodeCache = NodeRecordCache()

    static func decodeNode(id: String, data: Data) throws -> NodeState {
        if let node = nodeCache.lookup(id: id, data: data) { return node }
        let node = try decode(NodeState.self, data)
        nodeCache.insert(id: id, data: data, node)
        return node
    }

    static func fetchNode(_ id: String, _ db: Database) throws -> NodeState? {
        try Data.fetchOne(db, sql: "SELECT data FROM nodes WHERE id = ?", arguments: [id]).map { try decodeNode(id: id, data: $0) }
    }

    /// Records a node's handshake. A new compute session (the node process restarted) means
    /// its earlier executions are gone: they fail as retryable, and its stale outbox is dropped.
    public func handshake(
        info: NodeInfo, session: String, lastOrchestratorSeq: UInt64, activeExecutions: Set<String>, now: Int64,
        newMembership: NodeMembership = .approved, resumed: Bool = false, reportedExecutions: Set<String> = []
    ) async throws -> HandshakeOutcome {
        try await writer.write { db in
            let existing = try Self.fetchNode(info.nodeID, db)
            if existing?.membership == .rejected {
                return HandshakeOutcome(lastComputeSeq: 0, replay: [], affectedJobs: [], membership: .rejected)
            }
            let membership = existing?.membership ?? newMembership
            let node = NodeState(
                info: info, membership: membership, connection: .connected, lastHeartbeat: now, connectedSince: now,
                liveness: .healthy)
            try Self.save(node: node, db)
            try db.execute(
                sql: """
                    INSERT INTO nodeStreams (nodeID, nextOutSeq, ackedOutSeq, lastInSeq, computeSession) VALUES (?, 1, 0, 0, ?)
                    ON CONFLICT(nodeID) DO NOTHING
                    """, arguments: [info.nodeID, session])
            let storedSession = try String.fetchOne(
                db, sql: "SELECT computeSession FROM nodeStreams WHERE nodeID = ?", arguments: [info.nodeID]) ?? ""
            var affected = Set<String>()
            if HandshakeRules.isNewSession(stored: storedSession, hello: session) {
                // The node restarted: forget its message streams.
                try db.execute(
                    sql: "UPDATE nodeStreams SET lastInSeq = 0, computeSession = ?, ackedOutSeq = nextOutSeq - 1 WHERE nodeID = ?",
                    arguments: [session, info.nodeID])
                try db.execute(sql: "DELETE FROM outbox WHERE nodeID = ?", arguments: [info.nodeID])
            }
            let live = !HandshakeRules.mayHaveLostWork(stored: storedSession, hello: session, resumed: resumed) ? [] : try Data.fetchAll(
                db, sql: "SELECT data FROM executions WHERE nodeID = ? AND active = 1", arguments: [info.nodeID]
            ).map { try Self.decode(Execution.self, $0) }
            for (lost, failure, message) in HandshakeRules.lost(live, nodeID: info.nodeID, running: activeExecutions, reported: reportedExecutions) {
                var execution = lost
                execution.failure = failure
                execution.computeState = State(.failed, message: message)
                execution.desiredState = State(.stopped, message: message)
                execution.revision += 1
                execution.modifyTime = now
                try Self.update(execution: execution, db)
                try Self.append(
                    JobHistory(
                        type: .execution, jobID: execution.jobID, jobVersion: execution.jobVersion, executionID: execution.id,
                        nodeID: info.nodeID,
                        event: Event(
                            message: "node restarted; execution lost, will be retried", topic: "Execution", timestamp: now,
                            details: ["IsError": "true", "Retryable": "true", "Reason": failure.reason.rawValue]), time: now), db)
                affected.insert(execution.jobID)
            }
            // Work the node still runs that was given up meanwhile (or is unknown here) is
            // stopped: the cancel goes out with the replay below.
            for executionID in activeExecutions.sorted() {
                let execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [executionID])
                    .map { try Self.decode(Execution.self, $0) }
                guard let reason = HandshakeRules.stopReason(running: execution, nodeID: info.nodeID) else { continue }
                _ = try Self.enqueue(.cancelExecution(.init(executionID: executionID, reason: reason)), to: info.nodeID, db)
            }
            let lastIn = try UInt64.fetchOne(db, sql: "SELECT lastInSeq FROM nodeStreams WHERE nodeID = ?", arguments: [info.nodeID]) ?? 0
            // A new session's outbox was emptied above: all it holds now is new.
            let replay = try Self.unacked(nodeID: info.nodeID, after: storedSession == session ? lastOrchestratorSeq : 0, db)
            return HandshakeOutcome(lastComputeSeq: lastIn, replay: replay, affectedJobs: affected.sorted(), membership: membership)
        }
    }

    static func unacked(nodeID: String, after seq: UInt64, _ db: Database) throws -> [OutboxMessage] {
        guard seq < UInt64(Int64.max) else { return [] }
        return try Row.fetchAll(
            db, sql: "SELECT seq, data FROM outbox WHERE nodeID = ? AND seq > ? ORDER BY seq", arguments: [nodeID, Int64(seq)]
        ).map { row in
            let envelope = try decode(Envelope.self, row["data"])
            return OutboxMessage(nodeID: nodeID, seq: row["seq"], message: envelope.message)
        }
    }

    /// The node acknowledged our messages up to `seq`: drop them from the outbox.
    public func acknowledge(nodeID: String, upTo seq: UInt64) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM outbox WHERE nodeID = ? AND seq <= ?", arguments: [nodeID, Int64(seq)])
            try db.execute(
                sql: "UPDATE nodeStreams SET ackedOutSeq = MAX(ackedOutSeq, ?) WHERE nodeID = ?", arguments: [Int64(seq), nodeID])
        }
    }

    /// Updates liveness and capacity from a heartbeat.
    /// Returns the node's liveness before the heartbeat (nil for an unknown node).
    @discardableResult
    public func heartbeat(
        nodeID: String, capacity: Resources, running: Int, heldRoots: [String]? = nil, now: Int64
    ) async throws -> NodeLiveness? {
        try await writer.write { db in
            guard var node = try Self.fetchNode(nodeID, db)
            else { return nil }
            let before = node.liveness
            // A node given up as lost must say hello again before its heartbeats count.
            guard node.connection == .connected else { return before }
            node.lastHeartbeat = now
            node.liveness = .healthy
            node.info.computeNodeInfo.availableCapacity = capacity
            node.info.computeNodeInfo.runningExecutions = running
            if let heldRoots { node.info.computeNodeInfo.heldRoots = heldRoots }
            try Self.save(node: node, db)
            return before
        }
    }

    /// Records a node's new liveness (suspect or healthy again; lost goes through ``disconnect``).
    public func setLiveness(nodeID: String, to liveness: NodeLiveness) async throws {
        try await writer.write { db in
            guard var node = try Self.fetchNode(nodeID, db), node.connection == .connected
            else { return }
            node.liveness = liveness
            try Self.save(node: node, db)
        }
    }

    /// Sets a node's membership; returns the jobs with active executions on it (they need
    /// evaluating when the node is rejected).
    public func setMembership(nodeID: String, to membership: NodeMembership) async throws -> [String] {
        try await writer.write { db in
            guard var node = try Self.fetchNode(nodeID, db)
            else { throw CodError(.notFound, "node \(nodeID) not found") }
            node.membership = membership
            try Self.save(node: node, db)
            return try String.fetchAll(
                db, sql: "SELECT DISTINCT jobID FROM executions WHERE nodeID = ? AND active = 1", arguments: [nodeID])
        }
    }

    /// Forgets a node: its record, message streams and outbox. Returns the jobs with active
    /// executions on it. If it connects again it joins as a new node.
    public func deleteNode(nodeID: String) async throws -> [String] {
        try await writer.write { db in
            guard try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM nodes WHERE id = ?", arguments: [nodeID]) ?? 0 > 0 else {
                throw CodError(.notFound, "node \(nodeID) not found")
            }
            try db.execute(sql: "DELETE FROM nodes WHERE id = ?", arguments: [nodeID])
            Self.nodeCache.remove(id: nodeID)
            try db.execute(sql: "DELETE FROM nodeStreams WHERE nodeID = ?", arguments: [nodeID])
            try db.execute(sql: "DELETE FROM outbox WHERE nodeID = ?", arguments: [nodeID])
            // Forgotten with its key: whoever connects with the ID again enrolls anew.
            try db.execute(sql: "DELETE FROM nodeKeys WHERE nodeID = ?", arguments: [nodeID])
            return try String.fetchAll(
                db, sql: "SELECT DISTINCT jobID FROM executions WHERE nodeID = ? AND active = 1", arguments: [nodeID])
        }
    }

    /// Marks nodes disconnected; returns the jobs with active executions on them.
    public func disconnect(nodeIDs: [String], now: Int64) async throws -> [String] {
        try await writer.write { db in
            var jobs = Set<String>()
            for nodeID in nodeIDs {
                guard var node = try Self.fetchNode(nodeID, db)
                else { continue }
                node.connection = .disconnected
                node.liveness = .lost
                try Self.save(node: node, db)
                jobs.formUnion(try String.fetchAll(
                    db, sql: "SELECT DISTINCT jobID FROM executions WHERE nodeID = ? AND active = 1", arguments: [nodeID]))
            }
            return jobs.sorted()
        }
    }

    /// Handles one reliable message from a compute node exactly once per sequence number: the
    /// execution moves only along legal transitions, history is appended, and the sequence
    /// number is recorded in the same transaction.
    /// When the report ends the execution, `followUp` (an evaluation of its job) is stored in
    /// the same transaction and returned in the outcome.
    public func recordComputeMessage(
        nodeID: String, seq: UInt64, message: NodeMessage, now: Int64, receiptCID: String? = nil,
        followUp: (@Sendable (Job) -> Evaluation)? = nil
    ) async throws -> ComputeUpdateOutcome {
        try await writer.write { db in
            let lastIn = try UInt64.fetchOne(db, sql: "SELECT lastInSeq FROM nodeStreams WHERE nodeID = ?", arguments: [nodeID]) ?? 0
            if seq != 0, seq <= lastIn { return ComputeUpdateOutcome(changed: false, jobID: nil) }
            if seq != 0 {
                try db.execute(sql: "UPDATE nodeStreams SET lastInSeq = ? WHERE nodeID = ?", arguments: [Int64(seq), nodeID])
            }
            guard let transition = ReportTransition.of(message) else { return ComputeUpdateOutcome(changed: false, jobID: nil) }
            let executionID = transition.executionID
            let newState = transition.newState
            guard var execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [executionID])
                .map({ try Self.decode(Execution.self, $0) })
            else { return ComputeUpdateOutcome(changed: false, jobID: nil) }
            guard execution.nodeID == nodeID, execution.computeState.stateType.canTransition(to: newState) else {
                var late: String?
                if execution.nodeID == nodeID, case .runResult(let result) = message,
                    execution.publishedResult.params["CID"]?.stringValue != result.resultCID
                {
                    late = result.resultCID
                }
                return ComputeUpdateOutcome(changed: false, jobID: execution.jobID, discardedResultCID: late)
            }
            if let bundle = transition.storedBundle {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO results (executionID, size, sha256) VALUES (?, ?, ?)",
                    arguments: [executionID, bundle.size, bundle.sha256])
            }
            if var failure = transition.failure {
                // Whether the work had started is this store's record, not the report's claim:
                // work that started costs an attempt whatever the node says.
                if [.running, .publishing].contains(execution.computeState.stateType) { failure.neverStarted = false }
                execution.failure = failure
                if let job = try Self.fetchJob(execution.jobID, db), let event = Self.reputationEvent(of: execution, failure: failure, in: job) {
                    try Self.record(event, nodeID: nodeID, job: job, db)
                }
            }
            execution.computeState = State(newState, message: transition.stateMessage)
            if let output = transition.output { execution.runOutput = output }
            if let published = transition.published { execution.publishedResult = published }
            if let inputStats = transition.inputStats { execution.inputStats = inputStats }
            if let quote = transition.quote, let placed = execution.quote {
                // A script may lower the published prices the execution was placed at, never raise them.
                execution.quote = quote.capped(by: placed)
            }
            if let usage = transition.usage {
                execution.usage = usage
                execution.cost = execution.quote?.cost(of: usage).microCredits
                if newState == .completed { try Self.recordHistory(of: execution, usage: usage, now: now, db) }
            }
            if let receiptCID { execution.receipt = receiptCID }
            if newState.isTerminal { execution.desiredState = State(.stopped, message: execution.desiredState.message) }
            execution.revision += 1
            execution.modifyTime = now
            try Self.update(execution: execution, db)
            try Self.settle(jobID: execution.jobID, now: now, db)
            var details = transition.details
            details["NewState"] = newState.name
            try Self.append(
                JobHistory(
                    type: .execution, jobID: execution.jobID, jobVersion: execution.jobVersion, executionID: execution.id,
                    nodeID: nodeID, event: Event(message: transition.event, topic: "Execution", timestamp: now, details: details),
                    time: now), db)
            var evaluation: Evaluation?
            // The follow-up is built from the job itself, so it keeps its namespace and priority.
            if newState.isTerminal, let followUp, let job = try Self.fetchJob(execution.jobID, db) {
                let next = followUp(job)
                try Self.insert(evaluation: next, db)
                evaluation = next
            }
            return ComputeUpdateOutcome(changed: true, jobID: execution.jobID, evaluation: evaluation)
        }
    }

    /// Metadata of a stored result bundle.
    public func resultInfo(executionID: String) async throws -> (size: Int64, sha256: String)? {
        try await writer.read { db in
            try Row.fetchOne(db, sql: "SELECT size, sha256 FROM results WHERE executionID = ?", arguments: [executionID])
                .map { ($0["size"], $0["sha256"]) }
        }
    }

    /// The jobs that are waiting for capacity, for re-evaluation when some frees up.
    /// Unfinished jobs of a type (e.g. `daemon`, which grows onto nodes that join).
    public func unfinishedJobIDs(type: JobType) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: """
                    SELECT id FROM jobs WHERE state IN ('Queued', 'Pending', 'Running')
                    AND json_extract(CAST(data AS TEXT), '$.Type') = ? ORDER BY createTime
                    """, arguments: [type.rawValue])
        }
    }

    /// Executions that hold a place on a node (not yet ended).
    public func activeExecutionIDs() async throws -> Set<String> {
        try await writer.read { db in Set(try String.fetchAll(db, sql: "SELECT id FROM executions WHERE active = 1")) }
    }

    public func queuedJobIDs(limit: Int) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM jobs WHERE state IN ('Queued', 'Pending', 'Running') ORDER BY createTime LIMIT ?",
                arguments: [limit])
        }
    }
}

/// The last decoded record of each node, with the bytes it was decoded from.
final class NodeRecordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [String: (data: Data, node: NodeState)] = [:]

    func lookup(id: String, data: Data) -> NodeState? {
        lock.withLock {
            guard let entry = entries[id], entry.data == data else { return nil }
            return entry.node
        }
    }

    func insert(id: String, data: Data, _ node: NodeState) {
        lock.withLock { entries[id] = (data, node) }
    }

    func remove(id: String) {
        lock.withLock { entries[id] = nil }
    }
}

// MARK: Node keys

extension AppDatabase {
    /// Whether the store has a record of the node.
    public func hasNode(_ nodeID: String) async throws -> Bool {
        try await writer.read { db in try Int.fetchOne(db, sql: "SELECT 1 FROM nodes WHERE id = ?", arguments: [nodeID]) != nil }
    }

    /// The public key (base64) a node enrolled with; nil for a node not enrolled yet.
    public func nodeKey(nodeID: String) async throws -> String? {
        try await writer.read { db in
            try String.fetchOne(db, sql: "SELECT publicKey FROM nodeKeys WHERE nodeID = ?", arguments: [nodeID])
        }
    }

    /// Enrolls `publicKey` for `nodeID` unless another key holds it; returns the key that
    /// holds the ID afterwards (the given one when enrolled).
    public func enroll(nodeID: String, publicKey: String, now: Int64) async throws -> String {
        try await writer.write { db in
            try db.execute(
                sql: "INSERT INTO nodeKeys (nodeID, publicKey, enrollTime) VALUES (?, ?, ?) ON CONFLICT(nodeID) DO NOTHING",
                arguments: [nodeID, publicKey, now])
            return try String.fetchOne(db, sql: "SELECT publicKey FROM nodeKeys WHERE nodeID = ?", arguments: [nodeID]) ?? publicKey
        }
    }

    /// Records why a hello naming `nodeID` was refused, for `cod node list`.
    public func recordRefusal(nodeID: String, reason: String, now: Int64) async throws {
        try await writer.write { db in
            try db.execute(
                sql: "UPDATE nodeKeys SET lastRefusal = ?, refusalTime = ?, refusals = refusals + 1 WHERE nodeID = ?",
                arguments: [reason, now, nodeID])
        }
    }
}
