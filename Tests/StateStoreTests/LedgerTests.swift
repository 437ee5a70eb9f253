import Foundation
import GRDB
import Models
import Scheduler
import StateStore
import Testing
import Wire

/// The ledger's invariants, checked against the real store and scheduler: credits move only
/// between accounts (their sum is what was deposited), every job's hold ends up charged or
/// released, an execution is charged once however often its report arrives, and no account
/// but the world outside goes below zero, however many submissions race for one balance.
@Suite("Ledger")
struct LedgerTests {
    static let now: Int64 = 5_000_000_000
    /// 10 per execution and a thousand micro-credits per CPU second.
    static let prices = PriceList(start: Rate(microCredits: 10), perCPUSecond: Rate(microCredits: 1000))

    static func job(_ id: String, owner: String = "alice", count: Int = 1, budget: Budget? = nil) -> Job {
        var task = JobTask(name: "main", engine: SpecConfig(type: "wasm"), publisher: SpecConfig(type: "local"))
        task.resources.cpu = "100m"
        task.timeouts.executionTimeout = 10
        var job = Job(
            id: id, name: id, namespace: "default", count: count, tasks: [task], state: JobState(.pending), version: 1, revision: 1,
            createTime: now, modifyTime: now)
        job.owner = owner
        job.budget = budget
        return job
    }

    /// What the orchestrator holds for `job` on the one priced node.
    static func hold(_ job: Job) -> Int64 {
        WorstCase.hold(
            for: job, partitions: job.partitionCount, attempts: SchedulerSettings().maxRetries + 1,
            nodes: [(prices, Resources(cpu: 2, memory: 1 << 30))], requested: SchedulerSettings().requestedResources) ?? -1
    }

    static func submit(_ db: AppDatabase, _ job: Job) async throws {
        let evaluation = Evaluation(
            id: "v-\(job.id)", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: now, modifyTime: now)
        try await db.createJob(
            job, evaluation: evaluation,
            event: JobHistory(type: .job, jobID: job.id, jobVersion: 1, event: Event(message: "submitted", topic: "Submission", timestamp: now), time: now),
            hold: hold(job))
    }

    static func connect(_ db: AppDatabase) async throws {
        var compute = ComputeNodeInfo(
            executionEngines: ["wasm"], publishers: ["local"], storageSources: ["inline"], maxCapacity: Resources(cpu: 2, memory: 1 << 30))
        compute.priceList = prices
        _ = try await db.handshake(
            info: NodeInfo(nodeID: "n-a", computeNodeInfo: compute), session: "s1", lastOrchestratorSeq: 0, activeExecutions: [], now: now)
    }

    /// Runs the scheduler for `jobID` once and applies its plan.
    static func schedule(_ db: AppDatabase, _ jobID: String, step: Int) async throws {
        let evaluation = Evaluation(
            id: "v-\(jobID)-\(step)", namespace: "default", jobID: jobID, triggeredBy: .jobRegister, createTime: now + Int64(step),
            modifyTime: now + Int64(step))
        guard let input = try await db.schedulingInput(for: evaluation, now: now + Int64(step)) else { return }
        _ = try await db.apply(BatchScheduler().schedule(input), now: now + Int64(step))
    }

    /// Every invariant the ledger promises, from its own entries and balances.
    static func checkInvariants(_ db: AppDatabase, deposited: Int64, jobs: [String]) async throws {
        let accounts = try await db.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id, balance FROM accounts").map { row -> (String, Int64) in (row["id"], row["balance"]) }
        }
        let inside = accounts.filter { $0.0 != "external" }
        #expect(inside.allSatisfy { $0.1 >= 0 }, "\(inside)")
        #expect(inside.reduce(0) { $0 + $1.1 } == deposited, "credits appeared or vanished: \(accounts)")
        #expect((accounts.first { $0.0 == "external" }?.1 ?? 0) == -deposited)
        for id in jobs {
            let entries = try await db.ledger(jobID: id)
            let sum = { (kind: LedgerEntry.Kind) in entries.filter { $0.kind == kind }.reduce(Int64(0)) { $0 + $1.amount } }
            let stillHeld = try await db.account(.hold(job: id)).balance
            #expect(sum(.hold) == sum(.charge) + sum(.release) + stillHeld, "job \(id): \(entries)")
            let charges = entries.filter { $0.kind == .charge }.compactMap(\.executionID)
            #expect(Set(charges).count == charges.count, "an execution was charged twice: \(charges)")
            let executions = try await db.executions(jobID: id)
            for execution in executions {
                let paid = entries.filter { $0.kind == .charge && $0.executionID == execution.id }.reduce(Int64(0)) { $0 + $1.amount }
                #expect(paid <= (execution.cost ?? 0), "execution \(execution.id) was paid more than it cost")
            }
            let job = try #require(try await db.job(id: id))
            if job.state.stateType.isTerminal, executions.allSatisfy({ $0.computeState.stateType.isTerminal }) {
                #expect(stillHeld == 0, "ended job \(id) still holds \(stillHeld)")
            }
        }
    }

    /// 200 submissions at once against a balance that covers 50: 50 are stored with their
    /// holds, every other one is refused with the shortfall and leaves nothing behind.
    @Test(arguments: StoreMode.allCases)
    func twoHundredConcurrentSubmissionsNeverOverspend(mode: StoreMode) async throws {
        let db = try mode.open()
        try await Self.connect(db)
        let each = Self.hold(Self.job("j-probe"))
        #expect(each == 4 * (10 + 1000))
        _ = try await db.transfer(.deposit, account: .user("alice"), amount: 50 * each, memo: "test", now: Self.now)
        let outcomes = await withTaskGroup(of: Result<Void, CodError>.self) { group in
            for index in 0..<200 {
                group.addTask {
                    do {
                        try await Self.submit(db, Self.job("j-\(index)"))
                        return .success(())
                    } catch let error as CodError {
                        return .failure(error)
                    } catch {
                        return .failure(CodError(.internalError, "\(error)"))
                    }
                }
            }
            var all: [Result<Void, CodError>] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let refused = outcomes.compactMap { outcome -> CodError? in
            if case .failure(let error) = outcome { return error }
            return nil
        }
        #expect(outcomes.count - refused.count == 50)
        #expect(refused.allSatisfy { $0.code == .paymentRequired && $0.message.contains("short by \(each)") }, "\(refused.prefix(2))")
        let stored = try await db.listJobs(namespaces: nil, limit: 1000, offset: 0, newestFirst: true).jobs
        #expect(stored.count == 50)
        let account = try await db.account(.user("alice"))
        #expect(account.balance == 0 && account.held == 50 * each)
        try await Self.checkInvariants(db, deposited: 50 * each, jobs: stored.map(\.id))
    }

    /// Seeded random runs: jobs of one to three partitions, usage from nothing to more than
    /// the hold allows, reports redelivered, jobs stopped midway, budgets below the worst
    /// case. After every step the invariants hold; at the end every hold is settled.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func invariantsHoldOverRandomRuns(seed: UInt64) async throws {
        let db = try StoreMode.memory.open()
        try await Self.connect(db)
        var rng = SplitMix64(seed: seed)
        let deposited: Int64 = 1_000_000
        _ = try await db.transfer(.deposit, account: .user("alice"), amount: deposited, memo: "test", now: Self.now)
        var jobs: [String] = []
        var seq: UInt64 = 0
        for index in 0..<12 {
            let count = Int(rng.next() % 3) + 1
            let budget = rng.next() % 3 == 0 ? Budget(max: Int64(rng.next() % 3000) + 1, maxPerPartition: rng.next() % 2 == 0 ? 900 : nil) : nil
            let job = Self.job("j-\(seed)-\(index)", count: count, budget: budget)
            try await Self.submit(db, job)
            jobs.append(job.id)
            try await Self.schedule(db, job.id, step: 1)
            try await Self.checkInvariants(db, deposited: deposited, jobs: jobs)
            let stopMidway = rng.next() % 4 == 0
            for (offset, execution) in try await db.executions(jobID: job.id).enumerated() {
                if stopMidway, offset == 1 {
                    _ = try await db.stopJob(
                        id: job.id, reason: "test",
                        evaluation: Evaluation(id: "v-stop-\(job.id)", namespace: "default", jobID: job.id, triggeredBy: .jobCancel, createTime: Self.now, modifyTime: Self.now),
                        now: Self.now)
                }
                seq += 1
                _ = try await db.recordComputeMessage(
                    nodeID: "n-a", seq: seq, message: .bidResult(.init(executionID: execution.id, accepted: true, reason: "")), now: Self.now)
                var result = NodeMessage.RunResult(
                    executionID: execution.id, output: RunCommandResult(stdout: "ok"), resultBundleSize: 1, resultBundleSHA256: "ab")
                // Up to 12 CPU seconds: more than ten seconds at 0.1 CPU could ever use.
                result.usage = Usage(wallSeconds: 1, cpuSeconds: Double(rng.next() % 12_000) / 1000)
                seq += 1
                _ = try await db.recordComputeMessage(nodeID: "n-a", seq: seq, message: .runResult(result), now: Self.now)
                // Redelivered: once with the same number, once with a new one.
                _ = try await db.recordComputeMessage(nodeID: "n-a", seq: seq, message: .runResult(result), now: Self.now)
                seq += 1
                _ = try await db.recordComputeMessage(nodeID: "n-a", seq: seq, message: .runResult(result), now: Self.now)
                try await Self.checkInvariants(db, deposited: deposited, jobs: jobs)
            }
            try await Self.schedule(db, job.id, step: 2)
            try await Self.checkInvariants(db, deposited: deposited, jobs: jobs)
            let ended = try #require(try await db.job(id: job.id))
            #expect(ended.state.stateType.isTerminal, "\(ended.state)")
            #expect(try await db.account(.hold(job: job.id)).balance == 0)
        }
        // The node earned exactly what the jobs were charged.
        let charged = try await db.ledger().filter { $0.kind == .charge }.reduce(Int64(0)) { $0 + $1.amount }
        #expect(try await db.account(.node("n-a")).balance == charged)
        #expect(charged > 0)
    }

    /// Deposits go to users, payouts come from nodes' earnings and never exceed them; amounts
    /// outside 1 to a million credits are refused, and the ledger cannot be rewritten.
    @Test func transfersAreCheckedAndTheLedgerIsAppendOnly() async throws {
        let db = try AppDatabase.inMemory()
        for amount: Int64 in [0, -5, Budget.limit + 1] {
            await #expect(throws: CodError.self) { _ = try await db.transfer(.deposit, account: .user("bob"), amount: amount, memo: "", now: 1) }
        }
        await #expect(throws: CodError.self) { _ = try await db.transfer(.deposit, account: .node("n-a"), amount: 5, memo: "", now: 1) }
        _ = try await db.transfer(.deposit, account: .user("bob"), amount: 5, memo: "", now: 1)
        await #expect(throws: CodError.self) { _ = try await db.transfer(.payout, account: .node("n-a"), amount: 1, memo: "", now: 1) }
        await #expect(throws: (any Error).self) { try await db.writer.write { db in try db.execute(sql: "UPDATE ledger SET amount = 1000") } }
        await #expect(throws: (any Error).self) { try await db.writer.write { db in try db.execute(sql: "DELETE FROM ledger") } }
        #expect(try await db.account(.user("bob")).balance == 5)
        #expect(try await db.ledger().map(\.amount) == [5])
    }
}
