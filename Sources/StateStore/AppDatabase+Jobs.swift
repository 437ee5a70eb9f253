import Foundation
import GRDB
public import Models
public import Wire

extension AppDatabase {
    /// Stores a new job with its first evaluation and history line, atomically.
    public func createJob(_ job: Job, evaluation: Evaluation, event: JobHistory) async throws {
        try await writer.write { db in
            try Self.insert(job: job, db)
            try Self.insert(evaluation: evaluation, db)
            try Self.append(event, db)
        }
    }

    /// One job by exact ID.
    public func job(id: String) async throws -> Job? {
        try await writer.read { db in try Self.fetchJob(id, db) }
    }

    /// Resolves what a user typed: a full ID, a unique ID prefix (`j-1f2e`), or a job name.
    public func resolveJobID(_ reference: String) async throws -> String {
        try await writer.read { db in
            if try String.fetchOne(db, sql: "SELECT id FROM jobs WHERE id = ?", arguments: [reference]) != nil {
                return reference
            }
            var matches = try String.fetchAll(
                db, sql: "SELECT id FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 5", arguments: [Self.likePrefix(reference)])
            if matches.isEmpty {
                matches = try String.fetchAll(
                    db, sql: "SELECT id FROM jobs WHERE name = ? ORDER BY createTime DESC LIMIT 5", arguments: [reference])
                if let newest = matches.first { return newest }
            }
            switch matches.count {
            case 0:
                throw CodError(.notFound, "job \(reference) not found", hint: "list jobs with: cod job list")
            case 1:
                return matches[0]
            default:
                throw CodError(
                    .ambiguous, "job ID prefix \(reference) matches several jobs (\(matches.prefix(3).joined(separator: ", ")), ...)",
                    hint: "type more characters of the ID")
            }
        }
    }

    /// Jobs, newest first unless `reverse`, with offset paging.
    /// A page of jobs in `namespaces` (nil: in every namespace).
    public func listJobs(namespaces: Set<String>?, limit: Int, offset: Int, newestFirst: Bool) async throws -> (jobs: [Job], more: Bool) {
        try await writer.read { db in
            let order = newestFirst ? "DESC" : "ASC"
            var sql = "SELECT data FROM jobs"
            var arguments: StatementArguments = []
            if let namespaces {
                let names = namespaces.sorted()
                sql += " WHERE namespace IN (\(names.isEmpty ? "NULL" : names.map { _ in "?" }.joined(separator: ",")))"
                arguments += StatementArguments(names)
            }
            sql += " ORDER BY createTime \(order), id \(order) LIMIT ? OFFSET ?"
            arguments += [limit + 1, offset]
            let rows = try Data.fetchAll(db, sql: sql, arguments: arguments)
            let jobs = try rows.prefix(limit).map { try Self.decode(Job.self, $0) }
            return (jobs, rows.count > limit)
        }
    }

    public func executions(jobID: String) async throws -> [Execution] {
        try await writer.read { db in try Self.fetchExecutions(jobID: jobID, db) }
    }

    public func execution(id: String) async throws -> Execution? {
        try await writer.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM executions WHERE id = ?", arguments: [id])
                .map { try Self.decode(Execution.self, $0) }
        }
    }

    public func history(jobID: String, after: Int64 = 0, limit: Int = 10_000) async throws -> [JobHistory] {
        try await writer.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT seq, data FROM history WHERE jobID = ? AND seq > ? ORDER BY seq LIMIT ?",
                arguments: [jobID, after, limit])
            return try rows.map { row in
                var entry = try Self.decode(JobHistory.self, row["data"])
                entry.seqNum = row["seq"]
                return entry
            }
        }
    }

    /// Marks a job stopped (if it has not ended) and queues an evaluation to stop its executions.
    /// Returns the evaluation ID, or nil when the job had already ended.
    public func stopJob(id: String, reason: String, evaluation: Evaluation, now: Int64) async throws -> String? {
        let stopped = try await writer.write { db in try Self.stopJob(id: id, reason: reason, evaluation: evaluation, now: now, db) }
        return stopped == nil ? nil : evaluation.id
    }

    /// Stops the job in `db` unless it has ended; nil when it had.
    static func stopJob(id: String, reason: String, evaluation: Evaluation, now: Int64, _ db: Database) throws -> Job? {
        try changeJob(id: id, evaluation: evaluation, now: now, db) { job in
            guard !job.state.stateType.isTerminal else { return nil }
            job.state = JobState(.stopped, message: reason)
            return Event(message: reason, topic: "State Update", timestamp: now, details: ["NewState": "Stopped"])
        }
    }

    /// Runs a job again as its next version: the version goes up, the job is Pending again and
    /// the evaluation is queued; the scheduler stops executions of earlier versions still
    /// running and places the new version's work. Returns the new version.
    public func rerunJob(id: String, reason: String, evaluation: Evaluation, now: Int64) async throws -> UInt64 {
        let job = try await changeJob(id: id, evaluation: evaluation, now: now) { job in
            job.version += 1
            job.versionCreateTime = now
            job.state = JobState(.pending, message: reason)
            return Event(
                message: "Job rerun as version \(job.version)\(reason.isEmpty ? "" : ": \(reason)")", topic: "Submission",
                timestamp: now, details: ["NewState": "Pending"])
        }
        return job?.version ?? 0
    }

    /// The newest job with this name in the namespace.
    public func job(named name: String, namespace: String) async throws -> Job? {
        try await writer.read { db in
            try Data.fetchOne(
                db, sql: "SELECT data FROM jobs WHERE namespace = ? AND name = ? ORDER BY createTime DESC LIMIT 1",
                arguments: [namespace, name]
            ).map { try Self.decode(Job.self, $0) }
        }
    }

    /// Replaces a job's spec with `spec` as its next version (Pending again, like a rerun).
    /// Returns the new version.
    public func updateJob(id: String, spec: Job, evaluation: Evaluation, now: Int64) async throws -> UInt64 {
        let job = try await changeJob(id: id, evaluation: evaluation, now: now) { job in
            job.version += 1
            job.versionCreateTime = now
            job.priority = spec.priority
            job.count = spec.count
            job.constraints = spec.constraints
            job.meta = spec.meta
            job.labels = spec.labels
            job.tasks = spec.tasks
            // The new version's secrets are its submitter's.
            job.owner = spec.owner
            job.state = JobState(.pending, message: "updated to version \(job.version)")
            return Event(message: "Job updated to version \(job.version)", topic: "Submission", timestamp: now, details: ["NewState": "Pending"])
        }
        return job?.version ?? 0
    }

    /// A change an operator asks for (stop, rerun), stored in one transaction with the
    /// evaluation it needs and its history line. `change` returns that line, or nil to decline
    /// (then nothing is written and nil is returned).
    private func changeJob(
        id: String, evaluation: Evaluation, now: Int64, change: @escaping @Sendable (inout Job) -> Event?
    ) async throws -> Job? {
        try await writer.write { db in try Self.changeJob(id: id, evaluation: evaluation, now: now, db, change: change) }
    }

    static func changeJob(id: String, evaluation: Evaluation, now: Int64, _ db: Database, change: (inout Job) -> Event?) throws -> Job? {
        guard var job = try fetchJob(id, db) else { throw CodError(.notFound, "job \(id) not found") }
        guard let event = change(&job) else { return nil }
        job.revision += 1
        job.modifyTime = now
        try update(job: job, db)
        try insert(evaluation: evaluation, db)
        try append(JobHistory(type: .job, jobID: id, jobVersion: job.version, event: event, time: now), db)
        try settle(jobID: id, now: now, db)
        return job
    }

    // MARK: Row helpers

    static func fetchJob(_ id: String, _ db: Database) throws -> Job? {
        try Data.fetchOne(db, sql: "SELECT data FROM jobs WHERE id = ?", arguments: [id]).map { try decode(Job.self, $0) }
    }

    static func fetchExecutions(jobID: String, _ db: Database) throws -> [Execution] {
        try Data.fetchAll(db, sql: "SELECT data FROM executions WHERE jobID = ? ORDER BY createTime, id", arguments: [jobID])
            .map { try decode(Execution.self, $0) }
    }

    static func insert(job: Job, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO jobs (id, namespace, name, state, revision, createTime, data, parentJobID, parentExecutionID)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                job.id, job.namespace, job.name, job.state.stateType.rawValue, job.revision, job.createTime, try encode(job), job.parentJobID,
                job.parentExecutionID,
            ])
    }

    static func update(job: Job, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE jobs SET state = ?, revision = ?, data = ? WHERE id = ?",
            arguments: [job.state.stateType.rawValue, job.revision, try encode(job), job.id])
    }

    static func insert(execution: Execution, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO executions (id, jobID, nodeID, desiredState, computeState, active, createTime, data,
                                        cpu, memory, disk, gpu)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                execution.id, execution.jobID, execution.nodeID, execution.desiredState.stateType.rawValue,
                execution.computeState.stateType.rawValue, execution.isActive, execution.createTime, try encode(execution),
                execution.allocatedResources.cpu, Int64(clamping: execution.allocatedResources.memory),
                Int64(clamping: execution.allocatedResources.disk), Int64(clamping: execution.allocatedResources.gpu),
            ])
    }

    static func update(execution: Execution, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE executions SET desiredState = ?, computeState = ?, active = ?, data = ? WHERE id = ?",
            arguments: [
                execution.desiredState.stateType.rawValue, execution.computeState.stateType.rawValue, execution.isActive,
                try encode(execution), execution.id,
            ])
    }

    static func insert(evaluation: Evaluation, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO evaluations (id, jobID, status, waitUntil, createTime, data) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [
                evaluation.id, evaluation.jobID, evaluation.status.rawValue, evaluation.waitUntil, evaluation.createTime,
                try encode(evaluation),
            ])
    }

    static func append(_ event: JobHistory, _ db: Database) throws {
        try db.execute(
            sql: "INSERT INTO history (jobID, executionID, data) VALUES (?, ?, ?)",
            arguments: [event.jobID, event.executionID, try encode(event)])
    }
}

/// What a garbage-collection pass removed.
public struct PrunedJobs: Sendable, Equatable {
    public var jobIDs: [String] = []
    public var executionIDs: [String] = []
    /// Result CIDs of the removed executions, by execution ID (their pins can be released).
    public var resultCIDs: [String: String] = [:]
    /// Merged results of the removed jobs, by job ID.
    public var mergedCIDs: [String: String] = [:]

    public init() {}
}

extension AppDatabase {
    /// Deletes ended jobs (Completed, Failed, Stopped) created before `cutoff`, or beyond the
    /// newest `keepNewest` ended jobs, with their executions, evaluations, history and result
    /// records. Jobs still pending, queued or running are never touched. Works in short
    /// transactions of `batch` jobs so the scheduler is never held up for long. `now` dates the
    /// ledger's releases of what pruned jobs still held.
    public func pruneEndedJobs(createdBefore cutoff: Int64?, keepNewest: Int?, batch: Int = 500, now: Int64 = 0) async throws -> PrunedJobs {
        var total = PrunedJobs()
        guard cutoff != nil || keepNewest != nil else { return total }
        while true {
            let pruned = try await writer.write { db -> PrunedJobs in
                var conditions: [String] = []
                var arguments = StatementArguments()
                if let cutoff {
                    conditions.append("createTime < ?")
                    arguments += [cutoff]
                }
                if let keepNewest {
                    conditions.append("""
                        id NOT IN (SELECT id FROM jobs WHERE state IN ('Completed', 'Failed', 'Stopped')
                        ORDER BY createTime DESC, id DESC LIMIT ?)
                        """)
                    arguments += [max(0, keepNewest)]
                }
                arguments += [batch]
                let ids = try String.fetchAll(
                    db, sql: """
                        SELECT id FROM jobs WHERE state IN ('Completed', 'Failed', 'Stopped')
                        AND (\(conditions.joined(separator: " OR "))) ORDER BY createTime LIMIT ?
                        """, arguments: arguments)
                return try Self.prune(jobIDs: ids, now: now, db)
            }
            total.jobIDs += pruned.jobIDs
            total.executionIDs += pruned.executionIDs
            total.resultCIDs.merge(pruned.resultCIDs) { first, _ in first }
            total.mergedCIDs.merge(pruned.mergedCIDs) { first, _ in first }
            if pruned.jobIDs.count < batch { break }
        }
        if !total.jobIDs.isEmpty { try await reclaimSpace() }
        return total
    }

    /// Deletes these ended jobs with their executions, evaluations, history and result records
    /// (the ledger keeps its entries; what they still held goes back). Returns what went.
    static func prune(jobIDs ids: [String], now: Int64, _ db: Database) throws -> PrunedJobs {
        var pruned = PrunedJobs()
        for id in ids {
            let rows = try Row.fetchAll(
                db, sql: """
                    SELECT id, json_extract(CAST(data AS TEXT), '$.PublishedResult.Params.CID') AS cid
                    FROM executions WHERE jobID = ?
                    """, arguments: [id])
            for row in rows {
                let executionID: String = row["id"]
                pruned.executionIDs.append(executionID)
                if let cid: String = row["cid"] { pruned.resultCIDs[executionID] = cid }
            }
            if let merged = try String.fetchOne(db, sql: "SELECT cid FROM mergedResults WHERE jobID = ?", arguments: [id]) {
                pruned.mergedCIDs[id] = merged
            }
            // Executions, evaluations, history and result records go with the job; its
            // ledger entries stay, and what it still held goes back.
            try Self.releaseForPruning(jobID: id, now: now, db)
            try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id])
        }
        pruned.jobIDs = ids
        return pruned
    }

    /// Deletes these jobs if they have ended (a schedule's history beyond its limits).
    public func pruneEndedJobs(ids: [String], now: Int64) async throws -> PrunedJobs {
        guard !ids.isEmpty else { return PrunedJobs() }
        let pruned = try await writer.write { db in
            let ended = try ids.filter { id in
                try String.fetchOne(db, sql: "SELECT state FROM jobs WHERE id = ?", arguments: [id]).map { ["Completed", "Failed", "Stopped"].contains($0) } ?? false
            }
            return try Self.prune(jobIDs: ended, now: now, db)
        }
        if !pruned.jobIDs.isEmpty { try await reclaimSpace() }
        return pruned
    }

    /// Returns free pages to the file system (the store uses incremental auto-vacuum).
    public func reclaimSpace() async throws {
        try await writer.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA incremental_vacuum")
            if try String.fetchOne(db, sql: "PRAGMA journal_mode") == "wal" {
                _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
    }

    /// Folds the write-ahead log back into the database and truncates it once it has grown past
    /// `limit` bytes: SQLite's own checkpoints cannot reset a log that readers always hold, and
    /// it would then keep growing. Returns whether it ran.
    @discardableResult
    public func checkpointIfLarge(limit: Int64 = 32 << 20) async throws -> Bool {
        let wal = writer.path + "-wal"
        guard let size = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? NSNumber)?.int64Value, size > limit
        else { return false }
        try await writer.writeWithoutTransaction { db in
            _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        return true
    }

    /// Bytes the store takes on disk now (its pages, excluding free ones).
    public func sizeInBytes() async throws -> (used: Int64, free: Int64) {
        try await writer.read { db in
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            return ((pages - free) * pageSize, free * pageSize)
        }
    }
}
