import Crypto
import Foundation
import GRDB
public import Models
import Wire

/// Jobs that start jobs: each child's link to its parent (columns, so a tree is read by index),
/// the limits its parent set, checked in the transaction that inserts it, and the API keys
/// scoped to one running execution of a parent.
extension AppDatabase {
    static func registerJobTree(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v15-job-tree") { db in
            try db.execute(sql: """
                ALTER TABLE jobs ADD COLUMN parentJobID TEXT;
                ALTER TABLE jobs ADD COLUMN parentExecutionID TEXT;
                CREATE INDEX jobsByParent ON jobs (parentJobID) WHERE parentJobID IS NOT NULL;
                CREATE INDEX jobsByParentExecution ON jobs (parentExecutionID) WHERE parentExecutionID IS NOT NULL;
                CREATE TABLE executionKeys (
                    keyHash TEXT PRIMARY KEY NOT NULL,
                    executionID TEXT NOT NULL UNIQUE REFERENCES executions(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                    jobID TEXT NOT NULL
                );
                """)
        }
    }

    static let unfinished = "('Undefined','Pending','Queued','Running')"

    /// Inserts a child job with its hold, after checking in the same transaction what its
    /// parent allows: at most `MaxJobs` children in all, `MaxConcurrent` unfinished at once,
    /// and their holds within `Budget`. A refusal names the limit's field.
    public func createChildJob(_ job: Job, of parent: Job, limits: ChildLimits, evaluation: Evaluation, event: JobHistory, hold: Int64) async throws {
        do {
            try await writer.write { db in
                let started = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM jobs WHERE parentJobID = ?", arguments: [parent.id]) ?? 0
                guard started < limits.maxJobs else {
                    throw CodError(
                        .badRequest, "Children.MaxJobs: job \(shortID(parent.id)) may start \(limits.maxJobs) children and has started \(started)",
                        hint: "raise Children.MaxJobs in the parent's spec, or give each child more work")
                }
                let running = try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM jobs WHERE parentJobID = ? AND state IN \(Self.unfinished)", arguments: [parent.id]) ?? 0
                guard running < limits.maxConcurrent else {
                    throw CodError(
                        .conflict, "Children.MaxConcurrent: job \(shortID(parent.id)) has \(running) unfinished children, the most it may have at once",
                        hint: "submit it again when one has finished (the spawn folder does this by itself)")
                }
                if let budget = limits.budget {
                    let held = try Int64.fetchOne(
                        db, sql: "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE kind = 'Hold' AND jobID IN (SELECT id FROM jobs WHERE parentJobID = ?)",
                        arguments: [parent.id]) ?? 0
                    guard held + hold <= budget else {
                        throw CodError(
                            .paymentRequired,
                            "Children.Budget: job \(shortID(parent.id))'s children may hold \(budget) micro-credits; they hold \(held) and this one needs \(hold)",
                            hint: "raise Children.Budget, or give the child a lower Budget.Max or a shorter timeout")
                    }
                }
                try Self.insertJob(job, evaluation: evaluation, event: event, hold: hold, db)
            }
        } catch let short as InsufficientFunds {
            throw Self.refusal(short)
        }
    }

    /// A job's children, oldest first.
    public func children(of jobID: String) async throws -> [Job] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM jobs WHERE parentJobID = ? ORDER BY createTime, id", arguments: [jobID])
                .map { try Self.decode(Job.self, $0) }
        }
    }

    /// Whether `jobID` is `ancestor` or one of its descendants (walking up at most
    /// `ChildLimits.deepest` levels).
    public func isInTree(_ jobID: String, of ancestor: String) async throws -> Bool {
        try await writer.read { db in
            var current: String? = jobID
            for _ in 0...ChildLimits.deepest {
                guard let id = current else { return false }
                if id == ancestor { return true }
                current = try String.fetchOne(db, sql: "SELECT parentJobID FROM jobs WHERE id = ?", arguments: [id])
            }
            return false
        }
    }

    /// Unfinished children whose parent ended stopped or failed and asked (CancelWithParent)
    /// that its children end with it, and the parent's state.
    public func orphansToStop(limit: Int = 500) async throws -> [(child: String, parent: Job)] {
        try await writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT c.id AS child, p.data AS parent FROM jobs c JOIN jobs p ON p.id = c.parentJobID
                    WHERE c.parentJobID IS NOT NULL AND c.state IN \(Self.unfinished) AND p.state IN ('Failed', 'Stopped')
                    LIMIT ?
                    """, arguments: [limit])
            return try rows.compactMap { row in
                let parent = try Self.decode(Job.self, row["parent"] as Data)
                return parent.children?.cancelWithParent == false ? nil : (row["child"], parent)
            }
        }
    }

    /// Mints the API key of a running execution of a job that may start children (stored as a
    /// hash; the execution's node gets the key in its run message). Nil for other jobs.
    static func mintKey(for execution: Execution, of job: Job, _ db: Database) throws -> String? {
        guard job.children != nil, !execution.isReduce else { return nil }
        let key = "cx_" + KeyMaterial.randomBytes(24).hexString
        try db.execute(
            sql: "INSERT OR REPLACE INTO executionKeys (keyHash, executionID, jobID) VALUES (?, ?, ?)",
            arguments: [KeyMaterial.hash(key), execution.id, job.id])
        return key
    }

    /// The execution and job an execution's API key belongs to, while both still run; nil for
    /// an unknown key or one whose execution or job has ended.
    public func executionKey(_ key: String) async throws -> (execution: Execution, job: Job)? {
        try await writer.read { db in
            guard let executionID = try String.fetchOne(
                db, sql: "SELECT executionID FROM executionKeys WHERE keyHash = ?", arguments: [KeyMaterial.hash(key)]),
                let execution = try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [executionID])
                    .map({ try Self.decode(Execution.self, $0) }),
                execution.isActive,
                let job = try Self.fetchJob(execution.jobID, db), !job.state.stateType.isTerminal
            else { return nil }
            return (execution, job)
        }
    }
}

/// The secure randomness and hash of API keys, one implementation for the store and the
/// orchestrator's credentials.
public enum KeyMaterial {
    /// `count` bytes from the system's secure generator.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// What the store keeps of an API key. (A key has 256 bits of entropy, so a fast hash is
    /// enough: nothing can be guessed from it.)
    public static func hash(_ key: String) -> String {
        SHA256.hash(data: Data(key.utf8)).hexString
    }
}
