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

    /// Invalid results per node, over every engine and artifact.
    static func invalidResults(_ db: Database) throws -> [String: Int] {
        try Row.fetchAll(db, sql: "SELECT nodeID, SUM(invalid) AS invalid FROM reputation GROUP BY nodeID")
            .reduce(into: [:]) { $0[$1["nodeID"]] = $1["invalid"] }
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
