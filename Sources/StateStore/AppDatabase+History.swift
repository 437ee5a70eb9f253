import Foundation
import GRDB
public import Models
import Wire

/// The history estimates rest on: what each completed execution used, by the program it ran
/// (``ProgramIdentity``). It outlives pruned jobs.
extension AppDatabase {
    static func registerHistory(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v12-program-history") { db in
            try db.execute(sql: """
                CREATE TABLE programHistory (
                    executionID TEXT PRIMARY KEY NOT NULL,
                    program TEXT NOT NULL,
                    nodeID TEXT NOT NULL,
                    inputBytes INTEGER NOT NULL,
                    usage BLOB NOT NULL,
                    time INTEGER NOT NULL
                );
                CREATE INDEX programHistoryByProgram ON programHistory (program, time);
                """)
        }
    }

    /// Remembers what a completed execution used, for estimates of its program's next runs.
    static func recordHistory(of execution: Execution, usage: Usage, now: Int64, _ db: Database) throws {
        guard let job = try fetchJob(execution.jobID, db) else { return }
        let task = execution.isReduce ? (job.reduceTask ?? job.task) : job.task
        let input = usage.bytesReadLocally &+ usage.bytesReadFromPeers &+ usage.bytesReadFromOutside
        try db.execute(
            sql: "INSERT OR IGNORE INTO programHistory (executionID, program, nodeID, inputBytes, usage, time) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [execution.id, ProgramIdentity.of(task), execution.nodeID, Int64(clamping: input), try encode(usage), now])
    }

    /// The newest `limit` runs of `program` that ended before `before`, newest first.
    public func programHistory(_ program: String, before: Int64 = .max, limit: Int = 200) async throws -> [ProgramSample] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT program, nodeID, inputBytes, usage FROM programHistory WHERE program = ? AND time < ? ORDER BY time DESC LIMIT ?
                    """, arguments: [program, before, limit]
            ).map(Self.sample)
        }
    }

    /// What a job's executions used, for estimates from a sample run (`--sample`).
    public func samples(ofJob jobID: String) async throws -> [ProgramSample] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT h.program, h.nodeID, h.inputBytes, h.usage FROM programHistory h JOIN executions e ON e.id = h.executionID
                    WHERE e.jobID = ? ORDER BY h.time
                    """, arguments: [jobID]
            ).map(Self.sample)
        }
    }

    /// A `programHistory` row (program, nodeID, inputBytes, usage) as a sample.
    static func sample(_ row: Row) throws -> ProgramSample {
        let input: Int64 = row["inputBytes"]
        return ProgramSample(program: row["program"], nodeID: row["nodeID"], inputBytes: UInt64(max(input, 0)), usage: try decode(Usage.self, row["usage"]))
    }
}
