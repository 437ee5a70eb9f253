import Foundation
import GRDB
import Models
import Scheduler
import StateStore
import Testing
import Wire

/// Every test runs against both storage modes: in-memory and a WAL file.
enum StoreMode: String, CaseIterable, Sendable {
    case memory, walFile

    func open() throws -> AppDatabase {
        switch self {
        case .memory: return try AppDatabase.inMemory()
        case .walFile:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("cod-store-\(UUID().uuidString).sqlite").path
            return try AppDatabase.open(path: path)
        }
    }
}

@Suite("Orchestrator store")
struct AppDatabaseTests {
    static let now: Int64 = 5_000_000_000

    func seed(_ db: AppDatabase, count: Int = 1) async throws -> (Job, Evaluation) {
        var task = JobTask(name: "main", engine: SpecConfig(type: "wasm"), publisher: SpecConfig(type: "local"))
        task.resources.cpu = "100m"
        let job = Job(id: "j-abc123", name: "demo", namespace: "default", count: count, tasks: [task], state: JobState(.pending),
                      version: 1, revision: 1, createTime: Self.now, modifyTime: Self.now)
        let evaluation = Evaluation(id: "v-1", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: Self.now, modifyTime: Self.now)
        try await db.createJob(job, evaluation: evaluation, event: JobHistory(
            type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: Self.now), time: Self.now))
        return (job, evaluation)
    }

    /// The seeded job placed on node n-a (connected in `session`), its plan applied.
    func placeOnNode(_ db: AppDatabase, count: Int = 1, session: String = "s1") async throws -> (Evaluation, Plan) {
        let (_, evaluation) = try await seed(db, count: count)
        _ = try await connectNode(db, "n-a", session: session)
        let plan = BatchScheduler().schedule(try #require(try await db.schedulingInput(for: evaluation, now: Self.now)))
        _ = try await db.apply(plan, now: Self.now)
        return (evaluation, plan)
    }

    func connectNode(
        _ db: AppDatabase, _ id: String, session: String = "s1", active: Set<String> = [], lastOrchestratorSeq: UInt64 = 0,
        now: Int64 = now, resumed: Bool = false, reported: Set<String> = []
    ) async throws -> HandshakeOutcome {
        let info = NodeInfo(nodeID: id, computeNodeInfo: ComputeNodeInfo(
            executionEngines: ["wasm"], publishers: ["local"], storageSources: ["inline"], maxCapacity: Resources(cpu: 2, memory: 1 << 30)))
        return try await db.handshake(
            info: info, session: session, lastOrchestratorSeq: lastOrchestratorSeq, activeExecutions: active, now: now, resumed: resumed,
            reportedExecutions: reported)
    }

    /// A node's report cannot make its own failure free: work the store saw start costs an
    /// attempt even when the report says it never started, and a node cannot claim that its
    /// own execution died of a node failure (the larger budget).
    @Test(arguments: StoreMode.allCases)
    func aNodeCannotClaimItsFailureCostsNothing(mode: StoreMode) async throws {
        let db = try mode.open()
        let (_, plan) = try await placeOnNode(db)
        let executionID = plan.newExecutions[0].id
        let running = NodeMessage.executionProgress(.init(executionID: executionID, state: .running))
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 1, message: running, now: Self.now).changed)
        let claim = NodeMessage.computeError(.init(
            executionID: executionID, failure: ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true), message: "x", output: nil))
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 2, message: claim, now: Self.now).changed)
        let execution = try #require(try await db.execution(id: executionID))
        #expect(execution.failure == ExecutionFailure(.engineError, retryable: true, neverStarted: false))
    }

    @Test(arguments: StoreMode.allCases)
    func jobsResolveByIDPrefixAndName(mode: StoreMode) async throws {
        let db = try mode.open()
        _ = try await seed(db)
        #expect(try await db.resolveJobID("j-abc123") == "j-abc123")
        #expect(try await db.resolveJobID("j-abc") == "j-abc123")
        #expect(try await db.resolveJobID("demo") == "j-abc123")
        await #expect(throws: CodError.self) { try await db.resolveJobID("j-zzz") }
        // LIKE wildcards in user input match literally.
        await #expect(throws: CodError.self) { try await db.resolveJobID("j-%") }
    }

    @Test(arguments: StoreMode.allCases)
    func planAppliesAtomicallyAndQueuesMessages(mode: StoreMode) async throws {
        let db = try mode.open()
        let (_, evaluation) = try await seed(db, count: 2)
        _ = try await connectNode(db, "n-a")
        let input = try #require(try await db.schedulingInput(for: evaluation, now: Self.now + 1))
        let plan = BatchScheduler().schedule(input)
        #expect(plan.newExecutions.count == 2)
        let outcome = try await db.apply(plan, now: Self.now + 1)
        #expect(outcome.applied)
        #expect(outcome.outbox.count == 2)
        #expect(outcome.outbox.map(\.seq) == [1, 2])
        #expect(try await db.job(id: "j-abc123")?.state.stateType == .running)
        #expect(try await db.pendingEvaluations().isEmpty)
        // The same plan again is stale: the job's revision moved on.
        #expect(try await db.apply(plan, now: Self.now + 2).applied == false)
    }

    @Test(arguments: StoreMode.allCases)
    func aRunMessageLargerThanAFrameFailsItsExecutionAndQueuesNothing(mode: StoreMode) async throws {
        let db = try mode.open()
        var task = JobTask(name: "main", engine: SpecConfig(type: "wasm"), publisher: SpecConfig(type: "local"))
        task.resources.cpu = "100m"
        // Control characters escape to six bytes each in JSON: 3 MB of them is an 18 MB message.
        task.env["BIG"] = String(repeating: "\u{1}", count: 3_000_000)
        let job = Job(id: "j-big", name: "big", namespace: "default", count: 1, tasks: [task], state: JobState(.pending),
                      version: 1, revision: 1, createTime: Self.now, modifyTime: Self.now)
        let evaluation = Evaluation(id: "v-big", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: Self.now, modifyTime: Self.now)
        try await db.createJob(job, evaluation: evaluation, event: JobHistory(
            type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: Self.now), time: Self.now))
        _ = try await connectNode(db, "n-a")
        let plan = BatchScheduler().schedule(try #require(try await db.schedulingInput(for: evaluation, now: Self.now)))
        let outcome = try await db.apply(plan, now: Self.now)
        #expect(outcome.applied && outcome.outbox.isEmpty)
        #expect(outcome.undeliverable == plan.newExecutions.map(\.id))
        let execution = try #require(try await db.executions(jobID: job.id).first)
        #expect(execution.computeState.stateType == .failed && execution.computeState.message.contains("frame limit"))
        // Nothing is stuck in the node's stream: the next message takes the first number.
        let (_, small) = try await seed(db)
        let smallPlan = BatchScheduler().schedule(try #require(try await db.schedulingInput(for: small, now: Self.now + 1)))
        #expect(try await db.apply(smallPlan, now: Self.now + 1).outbox.map(\.seq) == [1])
    }

    @Test(arguments: StoreMode.allCases)
    func computeReportsAreIdempotent(mode: StoreMode) async throws {
        let db = try mode.open()
        let (_, plan) = try await placeOnNode(db)
        let executionID = plan.newExecutions[0].id
        let result = NodeMessage.runResult(.init(executionID: executionID, output: RunCommandResult(stdout: "hi"), resultBundleSize: 10, resultBundleSHA256: "ab"))
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 1, message: .bidResult(.init(executionID: executionID, accepted: true, reason: "")), now: Self.now).changed)
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 2, message: result, now: Self.now).changed)
        // A replay of seq 2, and a late, out-of-order progress report, change nothing.
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 2, message: result, now: Self.now).changed == false)
        #expect(try await db.recordComputeMessage(nodeID: "n-a", seq: 3, message: .executionProgress(.init(executionID: executionID, state: .running)), now: Self.now).changed == false)
        // Another node cannot report on this execution.
        _ = try await connectNode(db, "n-b")
        #expect(try await db.recordComputeMessage(nodeID: "n-b", seq: 1, message: .computeError(.init(executionID: executionID, failure: ExecutionFailure(.engineError, retryable: false), message: "x", output: nil)), now: Self.now).changed == false)
        let execution = try #require(try await db.execution(id: executionID))
        #expect(execution.computeState.stateType == .completed)
        #expect(execution.runOutput?.stdout == "hi")
        #expect(try await db.resultInfo(executionID: executionID)?.size == 10)
    }

    @Test(arguments: StoreMode.allCases)
    func restartedNodeLosesItsExecutions(mode: StoreMode) async throws {
        let db = try mode.open()
        let (_, plan) = try await placeOnNode(db, session: "first")
        // Same session reconnecting: the unacknowledged run message is replayed.
        let again = try await connectNode(db, "n-a", session: "first")
        #expect(again.replay.count == 1)
        #expect(again.affectedJobs.isEmpty)
        // A new session (the node restarted): its execution failed, retryable; outbox dropped.
        let restarted = try await connectNode(db, "n-a", session: "second")
        #expect(restarted.replay.isEmpty)
        #expect(restarted.affectedJobs == ["j-abc123"])
        let execution = try #require(try await db.execution(id: plan.newExecutions[0].id))
        #expect(execution.computeState.stateType == .failed)
        #expect(execution.failure == ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true))
    }

    @Test(arguments: StoreMode.allCases)
    func lostNodeIsToldToStopWorkThatWasGivenUp(mode: StoreMode) async throws {
        let db = try mode.open()
        let (evaluation, plan) = try await placeOnNode(db)
        let executionID = plan.newExecutions[0].id
        _ = try await db.recordComputeMessage(
            nodeID: "n-a", seq: 1, message: .executionProgress(.init(executionID: executionID, state: .running)), now: Self.now)
        // The node goes silent: lost, and its heartbeats no longer count until it says hello.
        #expect(try await db.disconnect(nodeIDs: ["n-a"], now: Self.now + 1) == ["j-abc123"])
        #expect(try await db.heartbeat(nodeID: "n-a", capacity: Resources(), running: 1, now: Self.now + 2) == .lost)
        #expect(try await db.nodes().first?.connection == .disconnected)
        // The scheduler gives its execution up.
        let replan = BatchScheduler().schedule(try #require(try await db.schedulingInput(for: evaluation, now: Self.now + 3)))
        _ = try await db.apply(replan, now: Self.now + 3)
        #expect(try await db.execution(id: executionID)?.computeState.stateType == .failed)
        // It returns in the same session, still running that execution (and one nobody knows):
        // the handshake queues a cancel for each.
        let back = try await connectNode(db, "n-a", active: [executionID, "e-unknown"])
        let cancels = back.replay.compactMap { message -> String? in
            if case .cancelExecution(let cancel) = message.message { return cancel.executionID }
            return nil
        }
        #expect(Set(cancels) == [executionID, "e-unknown"])
        let node = try #require(try await db.nodes().first)
        #expect(node.liveness == .healthy && node.connection == .connected)
        // Its late result for the given-up execution changes nothing, and names the result
        // DAG it uploaded so the orchestrator can drop that pin.
        let late = NodeMessage.runResult(.init(
            executionID: executionID, output: RunCommandResult(), resultBundleSize: -1, resultBundleSHA256: "", resultCID: "bafy-late"))
        let outcome = try await db.recordComputeMessage(nodeID: "n-a", seq: 2, message: late, now: Self.now + 4)
        #expect(!outcome.changed && outcome.discardedResultCID == "bafy-late")
        #expect(try await db.execution(id: executionID)?.computeState.stateType == .failed)
    }

    @Test(arguments: StoreMode.allCases)
    func garbageCollectionRemovesOnlyEndedJobsPastRetention(mode: StoreMode) async throws {
        let db = try mode.open()
        _ = try await connectNode(db, "n-a")
        // Six jobs a second apart: four ended (one with a result CID), two still going.
        let states: [JobStateType] = [.completed, .failed, .running, .completed, .stopped, .queued]
        for (index, state) in states.enumerated() {
            let created = Self.now + Int64(index) * 1_000_000_000
            var task = JobTask(name: "main", engine: SpecConfig(type: "wasm"), publisher: SpecConfig(type: "local"))
            task.resources.cpu = "100m"
            // j-0 runs for real (pending, placed, completed with a result CID); the others are
            // stored in their state.
            let job = Job(id: "j-\(index)", name: "job\(index)", namespace: "default", tasks: [task],
                          state: JobState(index == 0 ? .pending : state), version: 1, revision: 1, createTime: created, modifyTime: created)
            let evaluation = Evaluation(id: "v-\(index)", namespace: "default", jobID: job.id, triggeredBy: .jobRegister,
                                        createTime: created, modifyTime: created)
            try await db.createJob(job, evaluation: evaluation, event: JobHistory(
                type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: created),
                time: created))
            guard index == 0 else { continue }
            let plan = BatchScheduler().schedule(try #require(try await db.schedulingInput(for: evaluation, now: created)))
            _ = try await db.apply(plan, now: created)
            let executionID = try #require(plan.newExecutions.first?.id)
            let result = NodeMessage.runResult(.init(
                executionID: executionID, output: RunCommandResult(), resultBundleSize: -1, resultBundleSHA256: "", resultCID: "bafy-result-0"))
            let outcome = try await db.recordComputeMessage(nodeID: "n-a", seq: 1, message: result, now: created) { job in
                Evaluation(id: "v-0b", namespace: job.namespace, jobID: job.id, triggeredBy: .execUpdate, createTime: created, modifyTime: created)
            }
            let followUp = try #require(outcome.evaluation)
            _ = try await db.apply(BatchScheduler().schedule(try #require(try await db.schedulingInput(for: followUp, now: created))), now: created)
            #expect(try await db.job(id: "j-0")?.state.stateType == .completed)
        }
        // Nothing to do without limits.
        #expect(try await db.pruneEndedJobs(createdBefore: nil, keepNewest: nil).jobIDs.isEmpty)
        // Keep the two newest ended jobs: j-0 and j-1 go, with their executions and history.
        let pruned = try await db.pruneEndedJobs(createdBefore: nil, keepNewest: 2, batch: 1)
        #expect(pruned.jobIDs == ["j-0", "j-1"])
        #expect(pruned.executionIDs.count == 1)
        #expect(Array(pruned.resultCIDs.values) == ["bafy-result-0"])
        #expect(try await db.job(id: "j-0") == nil)
        #expect(try await db.history(jobID: "j-0").isEmpty)
        #expect(try await db.executions(jobID: "j-0").isEmpty)
        #expect(try await db.execution(id: pruned.executionIDs[0]) == nil)
        // By age: everything ended before j-4 was created goes (j-3); running and queued jobs stay.
        let old = try await db.pruneEndedJobs(createdBefore: Self.now + 4 * 1_000_000_000, keepNewest: nil)
        #expect(old.jobIDs == ["j-3"])
        for id in ["j-2", "j-4", "j-5"] { #expect(try await db.job(id: id) != nil) }
        #expect(try await db.pruneEndedJobs(createdBefore: nil, keepNewest: 0).jobIDs == ["j-4"])
        #expect(try await db.job(id: "j-2")?.state.stateType == .running)
        // Freed pages can go back to the file system.
        #expect(try await db.writer.read { try Int.fetchOne($0, sql: "PRAGMA auto_vacuum") } == 2)
        #expect(try await db.sizeInBytes().used > 0)
    }

    @Test(arguments: StoreMode.allCases)
    func resumedNodeLosesOnlyWhatItDoesNotReport(mode: StoreMode) async throws {
        let db = try mode.open()
        let (_, plan) = try await placeOnNode(db, count: 2, session: "kept")
        let ids = plan.newExecutions.map(\.id)
        // A new process resumes the session from disk, with a finished report kept for the
        // first execution: only the second is lost.
        let resumed = try await connectNode(
            db, "n-a", session: "kept", lastOrchestratorSeq: 2, now: Self.now + 1, resumed: true, reported: [ids[0]])
        #expect(resumed.affectedJobs == ["j-abc123"])
        #expect(try await db.execution(id: ids[0])?.computeState.stateType.isTerminal == false)
        #expect(try await db.execution(id: ids[1])?.computeState.stateType == .failed)
    }

    @Test func failedEvaluationKeepsItsReason() async throws {
        let db = try AppDatabase.inMemory()
        let (_, evaluation) = try await seed(db)
        try await db.failEvaluation(id: evaluation.id, reason: "job not found")
        #expect(try await db.pendingEvaluations().isEmpty)
        let stored = try await db.writer.read { db in
            try Data.fetchOne(db, sql: "SELECT data FROM evaluations WHERE id = ?", arguments: [evaluation.id])
        }
        let decoded = try JSONDecoder().decode(Evaluation.self, from: try #require(stored))
        #expect(decoded.status == .failed)
        #expect(decoded.comment == "job not found")
    }

    @Test func survivesReopen() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cod-reopen-\(UUID().uuidString).sqlite").path
        do {
            let db = try AppDatabase.open(path: path)
            _ = try await seed(db)
        }
        let reopened = try AppDatabase.open(path: path)
        #expect(try await reopened.job(id: "j-abc123")?.name == "demo")
        #expect(try await reopened.pendingEvaluations().map(\.id) == ["v-1"])
        #expect(try await reopened.history(jobID: "j-abc123").count == 1)
    }

    @Test func schemaRejectsInvalidStates() async throws {
        let db = try AppDatabase.inMemory()
        await #expect(throws: DatabaseError.self) {
            try await db.writer.write { db in
                try db.execute(sql: "INSERT INTO jobs (id, namespace, name, state, revision, createTime, data) VALUES ('j', 'd', 'n', 'Bogus', 1, 1, x'00')")
            }
        }
    }
}
