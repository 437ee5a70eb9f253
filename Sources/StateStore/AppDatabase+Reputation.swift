import Foundation
import GRDB
public import Models
import Wire

/// Per-node reputation for verified work, keyed by (node, engine, artifact): counted in the
/// transaction that records the verdict or the failure, so a restart loses no count.
extension AppDatabase {
    /// What a replica's end says about its node, for a verified job; nil for anything else
    /// (a job that is not verified, a reduce task, work that never started, a cancel).
    static func reputationEvent(of execution: Execution, failure: ExecutionFailure?, in job: Job) -> NodeReputation.Event? {
        guard job.isVerified, !execution.isReduce, let failure, !failure.neverStarted else { return nil }
        switch failure.reason {
        case .cancelled, .bidRejected: return nil
        // A node that went silent gave no reply in time (BOINC's NO_REPLY).
        case .timeout, .nodeLost: return .timeout
        default: return .error
        }
    }

    static func record(_ event: NodeReputation.Event, nodeID: String, job: Job, _ db: Database) throws {
        let (engine, artifact) = ArtifactIdentity.of(job.task)
        let current = try fetchReputation(nodeID: nodeID, engine: engine, artifact: artifact, db)
            ?? NodeReputation(nodeID: nodeID, engine: engine, artifact: artifact)
        let next = current.recording(event)
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO reputation (nodeID, engine, artifact, consecutiveValid, valid, invalid, errors, timeouts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [nodeID, engine, artifact, next.consecutiveValid, next.valid, next.invalid, next.errors, next.timeouts])
    }

    static func fetchReputation(nodeID: String, engine: String, artifact: String, _ db: Database) throws -> NodeReputation? {
        try Row.fetchOne(
            db, sql: "SELECT * FROM reputation WHERE nodeID = ? AND engine = ? AND artifact = ?", arguments: [nodeID, engine, artifact]
        ).map(Self.reputation(row:))
    }

    static func reputation(row: Row) -> NodeReputation {
        NodeReputation(
            nodeID: row["nodeID"], engine: row["engine"], artifact: row["artifact"], consecutiveValid: row["consecutiveValid"],
            valid: row["valid"], invalid: row["invalid"], errors: row["errors"], timeouts: row["timeouts"])
    }

    /// Every node's reputation for the task's engine and artifact, by NodeID.
    static func reputations(for task: JobTask, _ db: Database) throws -> [String: NodeReputation] {
        let (engine, artifact) = ArtifactIdentity.of(task)
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM reputation WHERE engine = ? AND artifact = ?", arguments: [engine, artifact])
        return Dictionary(rows.map(Self.reputation(row:)).map { ($0.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Invalid results per node, over every engine and artifact, since an operator last
    /// released it from quarantine (`cod node release`): what `--quarantine-after` counts.
    static func invalidResults(_ db: Database) throws -> [String: Int] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT r.nodeID AS nodeID, MAX(SUM(r.invalid) - COALESCE(q.forgiven, 0), 0) AS invalid
                FROM reputation r LEFT JOIN quarantineReleases q ON q.nodeID = r.nodeID
                GROUP BY r.nodeID
                """)
            .reduce(into: [:]) { $0[$1["nodeID"]] = $1["invalid"] }
    }

    /// An operator lets a quarantined node work again: the invalid results it has so far no
    /// longer count toward `--quarantine-after` (its reputation keeps them). Returns how many
    /// were forgiven.
    public func releaseQuarantine(nodeID: String, message: String, now: Int64) async throws -> Int {
        try await writer.write { db in
            guard try Self.fetchNode(nodeID, db) != nil else { throw CodError(.notFound, "node \(nodeID) not found") }
            let total = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(invalid), 0) FROM reputation WHERE nodeID = ?", arguments: [nodeID]) ?? 0
            let before = try Int.fetchOne(db, sql: "SELECT forgiven FROM quarantineReleases WHERE nodeID = ?", arguments: [nodeID]) ?? 0
            try db.execute(
                sql: "INSERT OR REPLACE INTO quarantineReleases (nodeID, forgiven, time, message) VALUES (?, ?, ?, ?)",
                arguments: [nodeID, total, now, message])
            return max(total - before, 0)
        }
    }

    /// A node's reputation (every engine and artifact it ran verified work for), or every node's.
    public func reputation(nodeID: String? = nil) async throws -> [NodeReputation] {
        try await writer.read { db in
            let rows = if let nodeID {
                try Row.fetchAll(db, sql: "SELECT * FROM reputation WHERE nodeID = ? ORDER BY engine, artifact", arguments: [nodeID])
            } else {
                try Row.fetchAll(db, sql: "SELECT * FROM reputation ORDER BY nodeID, engine, artifact")
            }
            return rows.map(Self.reputation(row:))
        }
    }
}

// MARK: Receipts

extension AppDatabase {
    /// Records a node's receipt (once; a replayed one changes nothing). Returns whether its
    /// `Prev` is the node's last receipt recorded here (or empty for its first): false is a gap
    /// or a fork in the node's chain.
    @discardableResult
    public func recordReceipt(cid: String, nodeID: String, executionID: String, prev: String, now: Int64) async throws -> Bool {
        try await writer.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM receipts WHERE cid = ?", arguments: [cid]) != nil { return true }
            let last = try String.fetchOne(
                db, sql: "SELECT cid FROM receipts WHERE nodeID = ? ORDER BY received DESC, rowid DESC LIMIT 1", arguments: [nodeID])
            try db.execute(
                sql: "INSERT INTO receipts (cid, nodeID, executionID, prev, received) VALUES (?, ?, ?, ?, ?)",
                arguments: [cid, nodeID, executionID, prev, now])
            return prev == (last ?? "")
        }
    }

    /// A node's receipts in the order they arrived: (CID, execution).
    public func receipts(nodeID: String) async throws -> [(cid: String, executionID: String)] {
        try await writer.read { db in
            try Row.fetchAll(db, sql: "SELECT cid, executionID FROM receipts WHERE nodeID = ? ORDER BY received, rowid", arguments: [nodeID])
                .map { ($0["cid"], $0["executionID"]) }
        }
    }
}

extension AppDatabase {
    /// The most results a caught node's re-check reopens: its newest ones accepted unchecked.
    static let recheckLimit = 100

    /// `nodeID` was caught returning a wrong result (`cause`): its newest results that were
    /// accepted unchecked, in jobs that completed or still run, are marked for re-checking, and
    /// its older unchecked ones are let go. Returns the jobs that need another look.
    static func startRechecks(of nodeID: String, caughtBy cause: Execution, now: Int64, _ db: Database) throws -> [Job] {
        let ids = try String.fetchAll(
            db, sql: "SELECT executionID FROM unchecked WHERE nodeID = ? ORDER BY createTime DESC LIMIT ?",
            arguments: [nodeID, recheckLimit])
        try db.execute(sql: "DELETE FROM unchecked WHERE nodeID = ?", arguments: [nodeID])
        var jobs: [String: Job] = [:]
        var order: [String] = []
        for id in ids {
            guard var execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [id])
                .map({ try decode(Execution.self, $0) }),
                execution.check == nil, execution.verdict == Verdict.unchecked,
                let job = try jobs[execution.jobID] ?? fetchJob(execution.jobID, db),
                execution.jobVersion == job.version, [JobStateType.completed, .running, .queued, .pending].contains(job.state.stateType)
            else { continue }
            let message = "Re-check: node \(shortID(nodeID)) was caught returning a wrong result (execution \(shortID(cause.id)) of job "
                + "\(shortID(cause.jobID))), so partition \(execution.partitionIndex)'s result, which it produced unchecked, is re-run on other nodes"
            execution.check = ResultCheck(.recheck, message: message)
            execution.revision += 1
            execution.modifyTime = now
            try update(execution: execution, db)
            try append(
                JobHistory(
                    type: .execution, jobID: job.id, jobVersion: job.version, executionID: execution.id, nodeID: nodeID,
                    event: Event(message: message, topic: "Verification", timestamp: now, details: ["Check": ResultCheck.Reason.recheck.rawValue]),
                    time: now), db)
            if jobs[job.id] == nil { order.append(job.id) }
            jobs[job.id] = job
        }
        return order.compactMap { jobs[$0] }
    }
}
