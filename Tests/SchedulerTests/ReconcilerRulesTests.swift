@testable import CodTestKit
import Foundation
import Models
@testable import Scheduler
import Testing

/// The rule table, one row at a time, and the retry budget and deadline rule the policies use.
@Suite("Reconciler rules")
struct ReconcilerRulesTests {
    static func failed(_ id: String, node: String = "n-a", _ failure: ExecutionFailure?, modified: Int64 = Fixture.now - 5) -> Execution {
        var execution = Fixture.execution(id, node: node, state: .failed, desired: .stopped, message: "boom")
        execution.failure = failure
        execution.modifyTime = modified
        return execution
    }

    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var execution: Execution
        var version: UInt64 = 1
        var nodes: [NodeCandidate] = [Fixture.node("n-a")]
        var bucket: AttemptBucket
        var testDescription: String { name }
    }

    static let rows: [Row] = [
        Row(name: "an older version's running execution is superseded",
            execution: Fixture.execution("e-1", node: "n-a", state: .running), version: 2, bucket: .superseded),
        Row(name: "running on a node that is gone is lost",
            execution: Fixture.execution("e-1", node: "n-gone", state: .running), bucket: .lost),
        Row(name: "running on a disconnected node is lost",
            execution: Fixture.execution("e-1", node: "n-a", state: .running),
            nodes: [Fixture.node("n-a", connection: .disconnected)], bucket: .lost),
        Row(name: "queued on a rejected node is lost",
            execution: Fixture.execution("e-1", node: "n-a", state: .new),
            nodes: [Fixture.node("n-a", membership: .rejected)], bucket: .lost),
        Row(name: "running on a connected node is active",
            execution: Fixture.execution("e-1", node: "n-a", state: .running), bucket: .active),
        Row(name: "completed is completed",
            execution: Fixture.execution("e-1", node: "n-a", state: .completed, desired: .stopped), bucket: .completed),
        Row(name: "a trap is a failure for good",
            execution: failed("e-1", ExecutionFailure(.trap, retryable: false)), bucket: .failedForGood),
        Row(name: "a failure without a type is a failure for good",
            execution: failed("e-1", nil), bucket: .failedForGood),
        Row(name: "a node restart is retryable",
            execution: failed("e-1", ExecutionFailure(.nodeRestarted, retryable: true)), bucket: .retryable),
        Row(name: "a rejected bid is retryable",
            execution: Fixture.execution("e-1", node: "n-a", state: .askForBidRejected, desired: .stopped), bucket: .retryable),
        Row(name: "a cancelled execution is retryable",
            execution: Fixture.execution("e-1", node: "n-a", state: .cancelled, desired: .stopped), bucket: .retryable),
    ]

    @Test(arguments: rows)
    func eachRuleClassifies(_ row: Row) {
        var job = Fixture.job(state: .running)
        job.version = row.version
        let (bucket, why) = AttemptRules.classify(row.execution, AttemptContext(job: job, nodes: row.nodes))
        #expect(bucket == row.bucket)
        #expect(!why.isEmpty)
    }

    @Test func everyBucketHasARuleWithAReason() {
        #expect(Set(AttemptRules.table.map(\.bucket)) == Set(AttemptBucket.allCases))
        #expect(AttemptRules.table.allSatisfy { !$0.why.isEmpty })
    }

    // MARK: The retry budget

    static func decide(_ ended: [Execution], settings: SchedulerSettings = SchedulerSettings(), nodes: [NodeCandidate] = [Fixture.node("n-a")]) -> RetryDecision {
        let input = Fixture.input(Fixture.job(state: .running), ended, nodes: nodes)
        return RetryBudget(settings: settings).decide(ended: ended, buckets: Buckets(input), now: input.now)
    }

    @Test func workOnlyQueuedOnARestartedNodeCostsNoAttempt() {
        let restarts = (0..<30).map { Self.failed("e-\($0)", ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true)) }
        #expect(Self.decide(restarts) == .retry)
        // The bound on attempts in all still holds.
        let many = (0..<100).map { Self.failed("e-\($0)", ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true)) }
        guard case .exhausted(let words) = Self.decide(many) else { Issue.record("expected to give up"); return }
        #expect(words.contains("gave up after 100 attempts"))
    }

    @Test func nodeFailuresHaveTheirOwnBudget() {
        // Three program failures and five node restarts under running work: neither budget is spent.
        let mixed = (0..<3).map { Self.failed("p-\($0)", ExecutionFailure(.engineError, retryable: true), modified: Fixture.now - 600_000_000_000) }
            + (0..<5).map { Self.failed("i-\($0)", ExecutionFailure(.nodeRestarted, retryable: true), modified: Fixture.now - 600_000_000_000) }
        #expect(Self.decide(mixed) == .retry)
        let tooManyNodes = (0..<11).map { Self.failed("i-\($0)", ExecutionFailure(.nodeLost, retryable: true), modified: Fixture.now - 600_000_000_000) }
        guard case .exhausted(let words) = Self.decide(tooManyNodes) else { Issue.record("expected to give up"); return }
        #expect(words.contains("11 node failures"))
    }

    @Test func repeatedNodeFailuresBackOffLonger() {
        let settings = SchedulerSettings()
        let budget = RetryBudget(settings: settings)
        #expect(budget.backoff(afterNodeFailures: 2) == settings.queueBackoff)
        #expect(budget.backoff(afterNodeFailures: 3) == 2 * settings.queueBackoff)
        #expect(budget.backoff(afterNodeFailures: 40) == settings.maxBackoff)
        // The first node failure is retried at once; the second waits the backoff from its end.
        let one = [Self.failed("i-0", ExecutionFailure(.nodeRestarted, retryable: true), modified: Fixture.now - 1)]
        #expect(Self.decide(one) == .retry)
        let two = one + [Self.failed("i-1", ExecutionFailure(.nodeRestarted, retryable: true), modified: Fixture.now - 1)]
        #expect(Self.decide(two) == .backoff(until: Fixture.now - 1 + settings.queueBackoff))
    }

    @Test func aPartitionBackingOffIsLookedAtAgainWithoutWaitingForCapacity() {
        let two = (0..<2).map { Self.failed("i-\($0)", ExecutionFailure(.nodeLost, retryable: true), modified: Fixture.now - 1) }
        let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(state: .running), two, nodes: [Fixture.node("n-a")]))
        #expect(plan.newExecutions.isEmpty)
        #expect(plan.waiting == .backoff)
        #expect(plan.newEvaluations.map(\.waitUntil) == [Fixture.now - 1 + SchedulerSettings().queueBackoff])
    }

    /// The soak's failure: work queued on nodes that keep restarting used up the job's four
    /// attempts ("gave up after 4 attempts; last: … restarted and no longer runs").
    @Test func aPartitionQueuedOnRestartingNodesIsPlacedAgain() {
        let restarts = (0..<6).map {
            Self.failed("e-\($0)", node: "n-\($0 % 2)", ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true))
        }
        let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(state: .running), restarts, nodes: [Fixture.node("n-0"), Fixture.node("n-1")]))
        #expect(plan.newExecutions.count == 1)
        #expect(plan.jobState == nil)
    }

    @Test func aDaemonOutlivesNodesThatKeepRestarting() {
        let restarts = (0..<20).map { Self.failed("e-\($0)", ExecutionFailure(.nodeRestarted, retryable: true)) }
        let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(state: .running, type: "daemon"), restarts, nodes: [Fixture.node("n-a")]))
        #expect(plan.newExecutions.count == 1)
        #expect(plan.jobState == nil)
    }

    // MARK: Deadlines and why a plan waits

    /// A running job with a total timeout does not wait for capacity: its deadline look is a
    /// timeout evaluation, and the plan says it waits for nothing.
    @Test func aTotalTimeoutIsNotAWaitForCapacity() {
        var job = Fixture.job()
        job.tasks[0].timeouts.totalTimeout = 60
        let plan = BatchScheduler().schedule(Fixture.input(job, nodes: [Fixture.node("n-a")]))
        #expect(plan.newExecutions.count == 1)
        #expect(plan.waiting == nil)
        #expect(plan.newEvaluations.map(\.triggeredBy) == [.jobTimeout])
    }

    @Test func waitingForCapacityOrDataSaysSo() {
        let busy = BatchScheduler().schedule(Fixture.input(Fixture.job(cpu: "1"), nodes: [Fixture.node("n-a", cpu: 1, allocated: Resources(cpu: 1))]))
        #expect(busy.waiting == .capacity)
        #expect(busy.waiting?.wantsWakeUps == true)
        #expect(WaitReason.backoff.wantsWakeUps == false)
    }

    /// A rerun counts its timeouts from the rerun, not from the first submission: with every
    /// node busy it waits instead of failing with "not enough nodes".
    @Test(arguments: [(Int64(0), Int64(60)), (Int64(60), Int64(0))])
    func aRerunOfAnOldJobWaitsForBusyNodes(total: Int64, queue: Int64) {
        var job = Fixture.job(cpu: "1", state: .pending)
        job.tasks[0].timeouts.totalTimeout = total
        job.tasks[0].timeouts.queueTimeout = queue
        job.createTime = Fixture.now - 3_600_000_000_000
        job.version = 2
        job.versionCreateTime = Fixture.now - 1_000_000_000
        let nodes = [Fixture.node("n-a", cpu: 1, allocated: Resources(cpu: 1))]
        let plan = BatchScheduler().schedule(Fixture.input(job, nodes: nodes))
        #expect(plan.jobState?.stateType == .queued, "\(plan.jobState?.message ?? "")")
        #expect(plan.waiting == .capacity)
        let deadlines = JobDeadlines(job: job, versionExecutions: [])
        #expect(deadlines.total == (total > 0 ? job.versionCreateTime + total * 1_000_000_000 : nil))
        #expect(deadlines.queue == (queue > 0 ? job.versionCreateTime + queue * 1_000_000_000 : nil))
    }

    // MARK: Typed failures on the wire and on disk

    @Test func recordsWithTheOldTextMarkerDecodeToTypedFailures() throws {
        var execution = Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped)
        execution.failure = nil
        for (message, reason, clean) in [
            ("[retryable] node error", ExecutionFailure.Reason.engineError, "node error"),
            ("[retryable] node n-a restarted and no longer runs this execution", .nodeRestarted, "node n-a restarted and no longer runs this execution"),
            ("node n-a was lost", .nodeLost, "node n-a was lost"),
        ] {
            execution.computeState = State(.failed, message: message)
            let decoded = try JSONDecoder().decode(Execution.self, from: JSONEncoder().encode(execution))
            #expect(decoded.failure == ExecutionFailure(reason, retryable: true))
            #expect(decoded.computeState.message == clean)
        }
        execution.computeState = State(.failed, message: "the module trapped")
        #expect(try JSONDecoder().decode(Execution.self, from: JSONEncoder().encode(execution)).failure == nil)
    }

    @Test func aFailureRoundTripsAndUnknownReasonsReadAsEngineErrors() throws {
        let failure = ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: true)
        #expect(try JSONDecoder().decode(ExecutionFailure.self, from: JSONEncoder().encode(failure)) == failure)
        let newer = Data(#"{"Reason":"SolarFlare","Retryable":true}"#.utf8)
        #expect(try JSONDecoder().decode(ExecutionFailure.self, from: newer) == ExecutionFailure(.engineError, retryable: true))
    }
}
