import Foundation
import GRDB
public import Models

/// Schedules and what they did. A tick's job is created in the transaction that advances the
/// schedule, under a unique (schedule, key) record, so a tick never starts two jobs and none is
/// lost, whenever the orchestrator dies.
extension AppDatabase {
    static func registerSchedules(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v13-schedules") { db in
            try db.execute(sql: """
                CREATE TABLE schedules (
                    id TEXT PRIMARY KEY NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    suspended INTEGER NOT NULL,
                    nextRunTime INTEGER,
                    watchesJobs INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    UNIQUE (namespace, name)
                );
                CREATE INDEX schedulesWatchingJobs ON schedules (id) WHERE watchesJobs = 1;
                CREATE INDEX schedulesDue ON schedules (nextRunTime) WHERE suspended = 0 AND nextRunTime IS NOT NULL;
                CREATE TABLE scheduleRuns (
                    scheduleID TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    nominalTime INTEGER NOT NULL,
                    outcome TEXT NOT NULL,
                    jobID TEXT NOT NULL,
                    time INTEGER NOT NULL,
                    data BLOB NOT NULL,
                    PRIMARY KEY (scheduleID, key)
                );
                CREATE INDEX scheduleRunsByTime ON scheduleRuns (scheduleID, nominalTime);
                CREATE INDEX scheduleRunsByJob ON scheduleRuns (jobID) WHERE jobID != '';
                """)
        }
    }

    // MARK: Schedules

    /// Stores a new schedule, or replaces the spec of the one with its namespace and name
    /// (keeping its ID, owner, creation and where its clock stands), once `mayReplace` allowed
    /// it in the same transaction. Returns what is stored.
    public func putSchedule(
        _ schedule: Schedule, mayReplace: @escaping @Sendable (Schedule) throws -> Void = { _ in }
    ) async throws -> (schedule: Schedule, created: Bool) {
        try await writer.write { db in
            if var existing = try Self.fetchSchedule(namespace: schedule.spec.namespace, name: schedule.spec.name, db) {
                try mayReplace(existing)
                existing.spec = schedule.spec
                existing.modifyTime = schedule.modifyTime
                existing.nextRunTime = schedule.nextRunTime
                existing.warning = ""
                try Self.update(schedule: existing, db)
                return (existing, false)
            }
            try db.execute(
                sql: "INSERT INTO schedules (id, namespace, name, suspended, nextRunTime, watchesJobs, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    schedule.id, schedule.spec.namespace, schedule.spec.name, schedule.spec.timing.suspend, schedule.nextRunTime,
                    schedule.watchesStore, try Self.encode(schedule),
                ])
            return (schedule, true)
        }
    }

    static func update(schedule: Schedule, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE schedules SET suspended = ?, nextRunTime = ?, watchesJobs = ?, data = ? WHERE id = ?",
            arguments: [schedule.spec.timing.suspend, schedule.nextRunTime, schedule.watchesStore, try encode(schedule), schedule.id])
    }

    static func fetchSchedule(namespace: String, name: String, _ db: Database) throws -> Schedule? {
        try Data.fetchOne(db, sql: "SELECT data FROM schedules WHERE namespace = ? AND name = ?", arguments: [namespace, name])
            .map { try decode(Schedule.self, $0) }
    }

    static func fetchSchedule(_ id: String, _ db: Database) throws -> Schedule? {
        try Data.fetchOne(db, sql: "SELECT data FROM schedules WHERE id = ?", arguments: [id]).map { try decode(Schedule.self, $0) }
    }

    /// A schedule by ID, unique ID prefix, or name (in any namespace when unique).
    public func schedule(_ reference: String) async throws -> Schedule {
        try await writer.read { db in
            if let exact = try Self.fetchSchedule(reference, db) { return exact }
            let rows = try Data.fetchAll(
                db, sql: "SELECT data FROM schedules WHERE id LIKE ? ESCAPE '\\' OR name = ? LIMIT 3",
                arguments: [Self.likePrefix(reference), reference])
            switch rows.count {
            case 0:
                throw CodError(.notFound, "schedule \(reference) not found", hint: "list schedules with: cod schedule list")
            case 1:
                return try Self.decode(Schedule.self, rows[0])
            default:
                throw CodError(.ambiguous, "\(reference) names several schedules", hint: "use the schedule's ID (cod schedule list)")
            }
        }
    }

    /// Schedules in `namespaces` (nil: all), by name.
    public func schedules(namespaces: Set<String>?) async throws -> [Schedule] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM schedules ORDER BY namespace, name").map { try Self.decode(Schedule.self, $0) }
                .filter { namespaces?.contains($0.spec.namespace) ?? true }
        }
    }

    /// Deletes a schedule and its run records; the jobs it started stay.
    public func deleteSchedule(id: String) async throws {
        try await writer.write { db in
            try db.execute(sql: "DELETE FROM schedules WHERE id = ?", arguments: [id])
        }
    }

    /// Suspends or resumes. Resuming does not run the ticks that passed while suspended: the
    /// clock moves to `now` (their count is added to the missed ones by the caller's `through`).
    public func setSuspended(id: String, _ suspended: Bool, through: Int64?, missed: Int64, next: Int64?, now: Int64) async throws -> Schedule {
        try await writer.write { db in
            guard var schedule = try Self.fetchSchedule(id, db) else { throw CodError(.notFound, "schedule \(id) not found") }
            schedule.spec.timing.suspend = suspended
            schedule.modifyTime = now
            if let through { schedule.lastScheduleTime = max(schedule.lastScheduleTime ?? through, through) }
            schedule.missed += missed
            schedule.nextRunTime = next
            try Self.update(schedule: schedule, db)
            return schedule
        }
    }

    /// A schedule that cannot fire waits until `until` (Unix seconds), saying why.
    public func stallSchedule(id: String, until: Int64, warning: String) async throws {
        try await writer.write { db in
            guard var schedule = try Self.fetchSchedule(id, db) else { return }
            schedule.nextRunTime = until
            schedule.warning = warning
            try Self.update(schedule: schedule, db)
        }
    }

    /// Schedules whose next tick is due at `now` (Unix seconds).
    public func dueSchedules(now: Int64, limit: Int = 200) async throws -> [Schedule] {
        try await writer.read { db in
            try Data.fetchAll(
                db, sql: "SELECT data FROM schedules WHERE suspended = 0 AND nextRunTime IS NOT NULL AND nextRunTime <= ? ORDER BY nextRunTime LIMIT ?",
                arguments: [now, limit]
            ).map { try Self.decode(Schedule.self, $0) }
        }
    }

    /// Running schedules with a trigger that watches the store (JobCompleted, Dataset).
    public func schedulesWatchingStore() async throws -> [Schedule] {
        try await writer.read { db in
            try Data.fetchAll(db, sql: "SELECT data FROM schedules WHERE watchesJobs = 1 AND suspended = 0").map { try Self.decode(Schedule.self, $0) }
        }
    }

    /// Jobs that completed which `trigger` of `schedule` watches and that it has not started a
    /// job for (the key is the job and its version, so a rerun that completes counts again):
    /// a job named `JobName`, or one the schedule `Schedule` started, in the schedule's
    /// namespace, submitted after the schedule was created.
    public func completedJobs(watchedBy trigger: ScheduleTrigger, of schedule: Schedule, limit: Int = 20) async throws -> [Job] {
        try await writer.read { db in
            var arguments: StatementArguments = [schedule.spec.namespace, schedule.createTime]
            let match: String
            if let name = trigger.jobName, !name.isEmpty {
                match = "j.name = ?"
                arguments += [name]
            } else {
                match = """
                    j.id IN (SELECT r.jobID FROM scheduleRuns r JOIN schedules s ON s.id = r.scheduleID
                    WHERE s.namespace = ? AND s.name = ? AND r.jobID != '')
                    """
                arguments += [schedule.spec.namespace, trigger.schedule ?? ""]
            }
            arguments += [schedule.id, limit]
            return try Data.fetchAll(
                db, sql: """
                    SELECT j.data FROM jobs j WHERE j.namespace = ? AND j.state = 'Completed' AND j.createTime >= ? AND \(match)
                    AND NOT EXISTS (SELECT 1 FROM scheduleRuns x WHERE x.scheduleID = ?
                        AND x.key = 'job:' || j.id || ':v' || json_extract(CAST(j.data AS TEXT), '$.Version'))
                    ORDER BY j.createTime LIMIT ?
                    """, arguments: arguments
            ).map { try Self.decode(Job.self, $0) }
        }
    }

    /// The earliest next tick of any running schedule (Unix seconds).
    public func earliestScheduledTick() async throws -> Int64? {
        try await writer.read { db in
            try Int64.fetchOne(db, sql: "SELECT MIN(nextRunTime) FROM schedules WHERE suspended = 0 AND nextRunTime IS NOT NULL")
        }
    }

    // MARK: Firing

    /// A job a schedule starts, made ready outside the transaction.
    public struct ScheduledStart: Sendable {
        public var key: String
        public var nominalTime: Int64
        public var job: Job
        public var evaluation: Evaluation
        public var event: JobHistory
        public var hold: Int64
        /// Evaluations that stop the schedule's running jobs (`Replace`), one per job they may
        /// be needed for, made outside; the transaction uses those it needs.
        public var stopEvaluation: @Sendable (Job) -> Evaluation

        public init(
            key: String, nominalTime: Int64, job: Job, evaluation: Evaluation, event: JobHistory, hold: Int64,
            stopEvaluation: @escaping @Sendable (Job) -> Evaluation
        ) {
            (self.key, self.nominalTime, self.job, self.evaluation, self.event, self.hold, self.stopEvaluation) =
                (key, nominalTime, job, evaluation, event, hold, stopEvaluation)
        }
    }

    /// What one pass of the schedule loop decided for a schedule.
    public struct ScheduleFiring: Sendable {
        public var scheduleID: String
        /// The `LastScheduleTime` the decision was made from: if another pass moved it since,
        /// nothing is written.
        public var expectedLast: Int64?
        /// The new `LastScheduleTime`; nil leaves it (a manual trigger).
        public var through: Int64?
        public var next: Int64?
        public var missed: (count: Int64, first: Int64, last: Int64)?
        public var warning: String?
        public var starts: [ScheduledStart]
        /// A person's explicit trigger or backfill starts whatever runs (the policy is for ticks).
        public var explicit: Bool

        public init(
            scheduleID: String, expectedLast: Int64?, through: Int64?, next: Int64?, missed: (count: Int64, first: Int64, last: Int64)? = nil,
            warning: String? = nil, starts: [ScheduledStart], explicit: Bool = false
        ) {
            (self.scheduleID, self.expectedLast, self.through, self.next, self.missed, self.warning, self.starts, self.explicit) =
                (scheduleID, expectedLast, through, next, missed, warning, starts, explicit)
        }
    }

    public struct FiringOutcome: Sendable {
        /// False when the schedule changed under the decision (or is gone): nothing was written.
        public var applied = false
        public var runs: [ScheduleRun] = []
        /// To queue: the started jobs' first evaluations and the stops of replaced jobs.
        public var evaluations: [Evaluation] = []
        public var stoppedJobIDs: [String] = []
    }

    /// Records a firing in one transaction: each start's job with its hold and run record (a
    /// key already recorded starts nothing), the concurrency policy applied against the jobs
    /// in the store, and the schedule's clock moved on.
    public func fire(_ firing: ScheduleFiring, now: Int64) async throws -> FiringOutcome {
        try await writer.write { db in try Self.fire(firing, now: now, db) }
    }

    /// Several schedules' firings in one transaction (one commit to disk for a pass of the
    /// loop, however many schedules tick together).
    public func fire(all firings: [ScheduleFiring], now: Int64) async throws -> [FiringOutcome] {
        try await writer.write { db in try firings.map { try Self.fire($0, now: now, db) } }
    }

    static func fire(_ firing: ScheduleFiring, now: Int64, _ db: Database) throws -> FiringOutcome {
        var outcome = FiringOutcome()
        guard var schedule = try Self.fetchSchedule(firing.scheduleID, db), schedule.lastScheduleTime == firing.expectedLast else {
            return outcome
        }
        outcome.applied = true
        if let missed = firing.missed, missed.count > 0 {
            let run = ScheduleRun(
                scheduleID: schedule.id, key: "missed:\(missed.first)-\(missed.last)", nominalTime: missed.last, outcome: .missed,
                count: missed.count,
                message: missed.count == 1 ? "missed: too late to start" : "\(missed.count) ticks missed: too late to start", time: now)
            if try Self.insert(run: run, db) { outcome.runs.append(run) }
            schedule.missed += missed.count
        }
        for start in firing.starts {
            guard try !Self.runExists(scheduleID: schedule.id, key: start.key, db) else { continue }
            let active = firing.explicit ? [] : try Self.activeJobs(ofSchedule: schedule.id, db)
            var run = ScheduleRun(
                scheduleID: schedule.id, key: start.key, nominalTime: start.nominalTime, outcome: .started, jobID: start.job.id, time: now)
            if !active.isEmpty {
                switch schedule.spec.timing.concurrencyPolicy {
                case .allow:
                    break
                case .forbid:
                    run.outcome = .skipped
                    run.jobID = ""
                    run.message = "skipped: \(active.map(\.id).map(shortID).joined(separator: ", ")) still running (ConcurrencyPolicy: Forbid)"
                    _ = try Self.insert(run: run, db)
                    outcome.runs.append(run)
                    continue
                case .replace:
                    for job in active {
                        let evaluation = start.stopEvaluation(job)
                        let reason = "replaced by the schedule's run for \(start.key) (ConcurrencyPolicy: Replace)"
                        if try Self.stopJob(id: job.id, reason: reason, evaluation: evaluation, now: now, db) != nil {
                            outcome.evaluations.append(evaluation)
                            outcome.stoppedJobIDs.append(job.id)
                        }
                    }
                }
            }
            do {
                try db.inSavepoint {
                    try Self.insertJob(start.job, evaluation: start.evaluation, event: start.event, hold: start.hold, db)
                    return .commit
                }
                outcome.evaluations.append(start.evaluation)
            } catch let short as InsufficientFunds {
                run.outcome = .failed
                run.jobID = ""
                run.message = "not started: account \(short.account) has \(short.balance) micro-credits, the job needs a hold of \(short.needed)"
            }
            _ = try Self.insert(run: run, db)
            outcome.runs.append(run)
        }
        if let through = firing.through { schedule.lastScheduleTime = max(schedule.lastScheduleTime ?? through, through) }
        schedule.nextRunTime = firing.next
        if let warning = firing.warning { schedule.warning = warning }
        try Self.update(schedule: schedule, db)
        return outcome
    }

    static func runExists(scheduleID: String, key: String, _ db: Database) throws -> Bool {
        try Int.fetchOne(db, sql: "SELECT 1 FROM scheduleRuns WHERE scheduleID = ? AND key = ?", arguments: [scheduleID, key]) != nil
    }

    /// Inserts a run record; false when its key was recorded already.
    static func insert(run: ScheduleRun, _ db: Database) throws -> Bool {
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO scheduleRuns (scheduleID, key, nominalTime, outcome, jobID, time, data) VALUES (?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [run.scheduleID, run.key, run.nominalTime, run.outcome.rawValue, run.jobID, run.time, try encode(run)])
        return db.changesCount > 0
    }

    /// The schedule's jobs that have not ended.
    static func activeJobs(ofSchedule id: String, _ db: Database) throws -> [Job] {
        try Data.fetchAll(
            db, sql: """
                SELECT j.data FROM scheduleRuns r JOIN jobs j ON j.id = r.jobID
                WHERE r.scheduleID = ? AND r.jobID != '' AND j.state IN ('Undefined', 'Pending', 'Queued', 'Running')
                """, arguments: [id]
        ).map { try decode(Job.self, $0) }
    }

    /// The schedule's runs, newest first, with their jobs' states.
    public func scheduleRuns(id: String, limit: Int = 100) async throws -> [ScheduleRun] {
        try await writer.read { db in
            try Row.fetchAll(
                db, sql: """
                    SELECT r.data, j.state FROM scheduleRuns r LEFT JOIN jobs j ON j.id = r.jobID
                    WHERE r.scheduleID = ? ORDER BY r.nominalTime DESC, r.time DESC LIMIT ?
                    """, arguments: [id, limit]
            ).map { row in
                var run = try Self.decode(ScheduleRun.self, row["data"])
                run.jobState = row["state"]
                return run
            }
        }
    }

    /// Ended jobs of schedules beyond their history limits (`History.Succeeded` completed ones,
    /// `History.Failed` failed or stopped ones, newest kept), for pruning. One query over the
    /// runs that have ended jobs, so idle schedules cost nothing.
    public func jobsBeyondScheduleHistory(limit: Int = 500) async throws -> [String] {
        try await writer.read { db in
            try String.fetchAll(
                db, sql: """
                    SELECT x.id FROM (
                        SELECT j.id, j.state, r.scheduleID, ROW_NUMBER() OVER (
                            PARTITION BY r.scheduleID, j.state = 'Completed' ORDER BY r.nominalTime DESC, j.createTime DESC) AS rank
                        FROM scheduleRuns r JOIN jobs j ON j.id = r.jobID
                        WHERE r.jobID != '' AND j.state IN ('Completed', 'Failed', 'Stopped')
                    ) x JOIN schedules s ON s.id = x.scheduleID
                    WHERE x.rank > CASE WHEN x.state = 'Completed'
                        THEN json_extract(CAST(s.data AS TEXT), '$.Spec.Schedule.History.Succeeded')
                        ELSE json_extract(CAST(s.data AS TEXT), '$.Spec.Schedule.History.Failed') END
                    LIMIT ?
                    """, arguments: [limit])
        }
    }
}
