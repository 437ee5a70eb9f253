import Foundation
import Models
import StateStore
import Testing

/// A parent's limits on its children, checked in the transaction that stores each child, so
/// children submitted at once cannot pass them together.
@Suite("Job tree store")
struct JobTreeStoreTests {
    static func child(_ id: String, of parent: Job) -> Job {
        var job = LedgerTests.job(id)
        job.parentJobID = parent.id
        job.parentExecutionID = "e-parent"
        return job
    }

    static func add(_ db: AppDatabase, _ child: Job, of parent: Job, _ limits: ChildLimits, hold: Int64 = 0) async throws {
        let evaluation = Evaluation(
            id: "v-\(child.id)", namespace: "default", jobID: child.id, triggeredBy: .jobRegister, createTime: LedgerTests.now,
            modifyTime: LedgerTests.now)
        let event = JobHistory(
            type: .job, jobID: child.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: LedgerTests.now),
            time: LedgerTests.now)
        try await db.createChildJob(child, of: parent, limits: limits, evaluation: evaluation, event: event, hold: hold)
    }

    static func refusal(_ body: () async throws -> Void) async -> String {
        do {
            try await body()
            return ""
        } catch let error as CodError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    /// A store with a running parent whose owner has credits.
    static func parent() async throws -> (AppDatabase, Job) {
        let db = try AppDatabase.inMemory()
        _ = try await db.transfer(.deposit, account: .user("alice"), amount: 100_000, memo: "test", now: LedgerTests.now)
        let parent = LedgerTests.job("j-parent")
        try await LedgerTests.submit(db, parent)
        return (db, parent)
    }

    @Test func maxJobsAndMaxConcurrentCountTheStoredChildren() async throws {
        let (db, parent) = try await Self.parent()
        let limits = ChildLimits(maxJobs: 3, maxConcurrent: 2)
        try await Self.add(db, Self.child("j-c1", of: parent), of: parent, limits)
        try await Self.add(db, Self.child("j-c2", of: parent), of: parent, limits)
        // Two unfinished: the third waits for one to end.
        let busy = await Self.refusal { try await Self.add(db, Self.child("j-c3", of: parent), of: parent, limits) }
        #expect(busy.hasPrefix("Children.MaxConcurrent"), "\(busy)")
        #expect(try await db.job(id: "j-c3") == nil)
        _ = try await db.stopJob(
            id: "j-c1", reason: "done",
            evaluation: Evaluation(id: "v-stop", namespace: "default", jobID: "j-c1", triggeredBy: .jobCancel, createTime: 1, modifyTime: 1),
            now: LedgerTests.now)
        try await Self.add(db, Self.child("j-c3", of: parent), of: parent, limits)
        // Three started, finished or not: no fourth.
        _ = try await db.stopJob(
            id: "j-c2", reason: "done",
            evaluation: Evaluation(id: "v-stop2", namespace: "default", jobID: "j-c2", triggeredBy: .jobCancel, createTime: 1, modifyTime: 1),
            now: LedgerTests.now)
        let full = await Self.refusal { try await Self.add(db, Self.child("j-c4", of: parent), of: parent, limits) }
        #expect(full.hasPrefix("Children.MaxJobs"), "\(full)")
        #expect(try await db.children(of: "j-parent").map(\.id) == ["j-c1", "j-c2", "j-c3"])
        #expect(try await db.isInTree("j-c3", of: "j-parent"))
        #expect(try await db.isInTree("j-parent", of: "j-c3") == false)
    }

    @Test func childrenHoldWithinTheParentsBudget() async throws {
        let (db, parent) = try await Self.parent()
        let limits = ChildLimits(maxJobs: 10, budget: 1_000)
        try await Self.add(db, Self.child("j-c1", of: parent), of: parent, limits, hold: 600)
        let over = await Self.refusal { try await Self.add(db, Self.child("j-c2", of: parent), of: parent, limits, hold: 500) }
        #expect(over.hasPrefix("Children.Budget") && over.contains("hold 600"), "\(over)")
        try await Self.add(db, Self.child("j-c2", of: parent), of: parent, limits, hold: 400)
    }

    @Test func aChildsLimitsReachNoDeeperThanItsParents() {
        let top = ChildLimits(maxDepth: 2)
        let child = ChildLimits(maxDepth: 9).within(top)
        #expect(child.maxDepth == 1)
        #expect(ChildLimits(maxDepth: 9).within(child).maxDepth == 0)
        #expect(ChildLimits(budget: 900).within(ChildLimits(budget: 500)).budget == 500)
        #expect(ChildLimits().within(ChildLimits(budget: 500)).budget == 500)
        #expect(ChildLimits(budget: 100).within(ChildLimits()).budget == 100)
        #expect(ChildLimits(maxDepth: 11, maxJobs: 0, maxConcurrent: 5, budget: -1).problems.map(\.field)
            == ["Children.MaxDepth", "Children.MaxJobs", "Children.MaxConcurrent", "Children.Budget"])
    }
}
