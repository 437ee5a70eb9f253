import Foundation
import Models
import StateStore
import Testing

/// A schedule's firing against the real store: one job per key however often a tick is fired
/// again, and the concurrency policy decided from the jobs in the store (so it holds across
/// orchestrator restarts, where Nomad's prohibit_overlap did not, nomad#11052).
@Suite("Schedule store")
struct ScheduleStoreTests {
    static let now: Int64 = 1_796_083_200_000_000_000

    static func schedule(_ policy: ConcurrencyPolicy) -> Schedule {
        var template = LedgerTests.job("template")
        template.id = ""
        return Schedule(
            id: "s-1", owner: "alice",
            spec: ScheduleSpec(name: "nightly", timing: ScheduleTiming(crons: ["@every 1m"], concurrencyPolicy: policy), jobTemplate: template),
            createTime: now, modifyTime: now, nextRunTime: 1_796_083_260)
    }

    static func start(_ tick: Int64) -> AppDatabase.ScheduledStart {
        var job = LedgerTests.job("j-\(tick)")
        job.name = "nightly-\(tick)"
        let evaluation = Evaluation(
            id: "v-\(tick)", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: now, modifyTime: now)
        return AppDatabase.ScheduledStart(
            key: ScheduleRun.tickKey(tick), nominalTime: tick, job: job, evaluation: evaluation,
            event: JobHistory(type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "started", topic: "Submission", timestamp: now), time: now),
            hold: 0,
            stopEvaluation: { running in
                Evaluation(id: "v-stop-\(running.id)-\(tick)", namespace: "default", jobID: running.id, triggeredBy: .jobCancel, createTime: now, modifyTime: now)
            })
    }

    static func fire(_ db: AppDatabase, _ tick: Int64, expected: Int64?) async throws -> AppDatabase.FiringOutcome {
        try await db.fire(
            AppDatabase.ScheduleFiring(scheduleID: "s-1", expectedLast: expected, through: tick, next: tick + 60, starts: [start(tick)]),
            now: now)
    }

    @Test func aTickStartsOneJobHoweverOftenItIsFired() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.allow))
        let first = try await Self.fire(db, 100, expected: nil)
        #expect(first.applied && first.runs.map(\.outcome) == [.started])
        // A pass decided from the clock before the first moved it writes nothing.
        let stale = try await Self.fire(db, 100, expected: nil)
        #expect(!stale.applied)
        // The same key again (a crash after the commit, a backfill) starts nothing.
        let again = try await db.fire(
            AppDatabase.ScheduleFiring(scheduleID: "s-1", expectedLast: 100, through: nil, next: 160, starts: [Self.start(100)]), now: Self.now)
        #expect(again.applied && again.runs.isEmpty)
        #expect(try await db.scheduleRuns(id: "s-1").count == 1)
        #expect(try await db.schedule("nightly").lastScheduleTime == 100)
    }

    @Test func forbidSkipsWhileAJobRuns() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.forbid))
        _ = try await Self.fire(db, 100, expected: nil)
        let second = try await Self.fire(db, 160, expected: 100)
        #expect(second.runs.map(\.outcome) == [.skipped] && second.evaluations.isEmpty)
        #expect(second.runs[0].message.contains("still running"))
        #expect(try await db.job(id: "j-160") == nil)
        // Once the first job has ended, the next tick starts.
        _ = try await db.stopJob(
            id: "j-100", reason: "done",
            evaluation: Evaluation(id: "v-x", namespace: "default", jobID: "j-100", triggeredBy: .jobCancel, createTime: Self.now, modifyTime: Self.now),
            now: Self.now)
        let third = try await Self.fire(db, 220, expected: 160)
        #expect(third.runs.map(\.outcome) == [.started])
    }

    @Test func replaceStopsTheRunningJob() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.replace))
        _ = try await Self.fire(db, 100, expected: nil)
        let second = try await Self.fire(db, 160, expected: 100)
        #expect(second.runs.map(\.outcome) == [.started])
        #expect(second.stoppedJobIDs == ["j-100"])
        #expect(Set(second.evaluations.map(\.jobID)) == ["j-100", "j-160"])
        #expect(try await db.job(id: "j-100")?.state.stateType == .stopped)
        #expect(try await db.job(id: "j-160")?.state.stateType == .pending)
    }

    @Test func allowRunsSideBySide() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.allow))
        _ = try await Self.fire(db, 100, expected: nil)
        _ = try await Self.fire(db, 160, expected: 100)
        #expect(try await db.job(id: "j-100")?.state.stateType == .pending)
        #expect(try await db.job(id: "j-160")?.state.stateType == .pending)
    }

    /// A job the owner cannot pay for is recorded as a failed run, and the clock moves on.
    @Test func aTickWithoutCreditsIsRecordedNotLost() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.allow))
        var start = Self.start(100)
        start.hold = 5_000
        let outcome = try await db.fire(
            AppDatabase.ScheduleFiring(scheduleID: "s-1", expectedLast: nil, through: 100, next: 160, starts: [start]), now: Self.now)
        #expect(outcome.runs.map(\.outcome) == [.failed] && outcome.runs[0].message.contains("hold of 5000"))
        #expect(try await db.job(id: "j-100") == nil)
        #expect(try await db.schedule("s-1").lastScheduleTime == 100)
    }

    @Test func suspendAndResume() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.putSchedule(Self.schedule(.allow))
        let suspended = try await db.setSuspended(id: "s-1", true, through: nil, missed: 0, next: 1_796_083_260, now: Self.now)
        #expect(suspended.spec.timing.suspend)
        #expect(try await db.dueSchedules(now: 1_796_099_999).isEmpty)
        let resumed = try await db.setSuspended(id: "s-1", false, through: 1_796_090_000, missed: 3, next: 1_796_090_060, now: Self.now)
        #expect(!resumed.spec.timing.suspend && resumed.missed == 3 && resumed.lastScheduleTime == 1_796_090_000)
        #expect(try await db.dueSchedules(now: 1_796_090_060).map(\.id) == ["s-1"])
    }

    /// History limits: beyond `History.Failed` ended jobs, the oldest are the ones to prune;
    /// running jobs and other schedules' jobs are never named.
    @Test func historyBeyondItsLimitIsNamedOldestFirst() async throws {
        let db = try AppDatabase.inMemory()
        var schedule = Self.schedule(.allow)
        schedule.spec.timing.history = HistoryLimits(succeeded: 3, failed: 1)
        _ = try await db.putSchedule(schedule)
        var last: Int64?
        for tick in [Int64(100), 160, 220, 280] {
            _ = try await Self.fire(db, tick, expected: last)
            last = tick
        }
        for tick in [100, 160, 220] {
            _ = try await db.stopJob(
                id: "j-\(tick)", reason: "stopped",
                evaluation: Evaluation(
                    id: "v-s\(tick)", namespace: "default", jobID: "j-\(tick)", triggeredBy: .jobCancel, createTime: Self.now, modifyTime: Self.now),
                now: Self.now)
        }
        #expect(Set(try await db.jobsBeyondScheduleHistory()) == ["j-100", "j-160"])
        let pruned = try await db.pruneEndedJobs(ids: ["j-100", "j-160", "j-280"], now: Self.now)
        #expect(Set(pruned.jobIDs) == ["j-100", "j-160"])
        #expect(try await db.job(id: "j-280") != nil)
        #expect(try await db.job(id: "j-220") != nil)
        #expect(try await db.jobsBeyondScheduleHistory().isEmpty)
    }
}

/// Named datasets' versions: the head moves by compare-and-swap, a version keeps its
/// predecessor's shards, and a dataset trigger sees each version once, from the right base.
@Suite("Dataset versions")
struct DatasetVersionTests {
    static func manifest(_ files: [String], root: String) -> DatasetManifest {
        let cid = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
        let shards = files.enumerated().map { index, file in
            DatasetShard(index: index, cid: cid, bytes: 1, files: [DatasetFile(path: file, cid: cid, size: 1, tsize: 7)])
        }
        return DatasetManifest(cid: root, name: "photos", bytes: UInt64(files.count), replication: 1, shards: shards, createTime: Int64(files.count) * 10)
    }

    @Test func versionsMoveByCompareAndSwapAndOnlyGrow() async throws {
        let db = try AppDatabase.inMemory()
        let v1 = try await db.saveDatasetVersion(Self.manifest(["a"], root: "bafkreia"), after: 0, owner: "alice")
        #expect(v1.version == 1 && v1.owner == "alice" && v1.shards == 1)
        // Two adds made from version 1: the second is told to add again, and stores nothing.
        _ = try await db.saveDatasetVersion(Self.manifest(["a", "b"], root: "bafkreib"), after: 1, owner: "alice")
        await #expect(throws: CodError.self) { try await db.saveDatasetVersion(Self.manifest(["a", "c"], root: "bafkreic"), after: 1, owner: "alice") }
        #expect(try await db.dataset(cid: "bafkreic") == nil)
        // A version that drops or changes a shard is refused.
        await #expect(throws: CodError.self) { try await db.saveDatasetVersion(Self.manifest(["x", "y", "z"], root: "bafkreid"), after: 2, owner: "alice") }
        await #expect(throws: CodError.self) { try await db.saveDatasetVersion(Self.manifest(["a", "b"], root: "bafkreie"), after: 2, owner: "alice") }
        // The owner rule sees the head, and a refused add writes nothing.
        await #expect(throws: CodError.self) {
            try await db.saveDatasetVersion(Self.manifest(["a", "b", "m"], root: "bafkreif"), after: 2, owner: "mallory") { head in
                if head.owner != "mallory" { throw CodError(.forbidden, "not yours") }
            }
        }
        let head = try #require(try await db.datasetHead(name: "photos"))
        #expect(head.version == 2 && head.owner == "alice")
        let v3 = try await db.saveDatasetVersion(Self.manifest(["a", "b", "c"], root: "bafkreig"), after: 2, owner: "bob")
        #expect(v3.owner == "alice", "a version keeps the dataset's owner")
    }

    @Test func aTriggerSeesEachNewVersionOnceFromItsBase() async throws {
        let db = try AppDatabase.inMemory()
        _ = try await db.saveDatasetVersion(Self.manifest(["a"], root: "bafkreia"), after: 0, owner: "")
        let schedule = ScheduleStoreTests.schedule(.allow)
        _ = try await db.putSchedule(schedule)
        // Made after version 1 (time 10): nothing new yet.
        #expect(try await db.datasetChange(name: "photos", scheduleID: "s-1", since: 15) == nil)
        _ = try await db.saveDatasetVersion(Self.manifest(["a", "b"], root: "bafkreib"), after: 1, owner: "")
        let change = try #require(try await db.datasetChange(name: "photos", scheduleID: "s-1", since: 15))
        #expect(change.head.version == 2 && change.base?.version == 1 && change.base?.shards == 1)
        // Once the trigger's run for version 2 is recorded, version 2 is no longer new, and
        // version 3's base is version 2.
        var start = ScheduleStoreTests.start(60)
        start.key = "dataset:photos:v2"
        _ = try await db.fire(
            AppDatabase.ScheduleFiring(scheduleID: "s-1", expectedLast: nil, through: nil, next: schedule.nextRunTime, starts: [start]), now: 1)
        #expect(try await db.datasetChange(name: "photos", scheduleID: "s-1", since: 15) == nil)
        _ = try await db.saveDatasetVersion(Self.manifest(["a", "b", "c"], root: "bafkreic"), after: 2, owner: "")
        let next = try #require(try await db.datasetChange(name: "photos", scheduleID: "s-1", since: 15))
        #expect(next.head.version == 3 && next.base?.version == 2 && next.manifest.shards.count == 3)
        // A schedule made before the dataset existed starts from nothing.
        let fresh = try #require(try await db.datasetChange(name: "photos", scheduleID: "s-none", since: 0))
        #expect(fresh.base == nil && fresh.head.version == 3)
    }
}
