@testable import CodTestKit
import Models
@testable import Scheduler
import Testing

/// Audits of accepted results: a Fast job's spot checks and the re-check of a caught liar's
/// unchecked work. The audited result and its re-runs go through the quorum rule with
/// `Verification.audit` (2 agreeing of at most 3), each re-run on a node that holds none.
@Suite("Verification: spot checks and re-checks")
struct AuditTests {
    static let nodes = ["n-1", "n-2", "n-3", "n-4"].map { Fixture.node($0) }

    static func fastJob(spotCheck: Double = 1, count: Int = 1, state: JobStateType = .completed) -> Job {
        var job = Fixture.job(count: count, state: state)
        job.verification = Verification(mode: .fast, spotCheck: spotCheck)
        return job
    }

    static func schedule(_ job: Job, _ executions: [Execution], keys: [String: String] = [:], nodes: [NodeCandidate] = nodes) -> Plan {
        var input = Fixture.input(job, executions, nodes: nodes)
        input.resultKeys = keys
        return BatchScheduler().schedule(input)
    }

    /// The accepted result e-1 on n-1, under a spot check that has started.
    static func audited(_ reason: ResultCheck.Reason = .spotCheck) -> Execution {
        var execution = Fixture.execution("e-1", node: "n-1", state: .completed)
        execution.check = ResultCheck(reason)
        return execution
    }

    static func rerun(_ id: String, node: String, state: ExecutionStateType = .completed) -> Execution {
        var execution = Fixture.execution(id, node: node, state: state)
        execution.auditOf = "e-1"
        execution.createTime += Int64(id.utf8.last ?? 0)
        return execution
    }

    static func checks(_ plan: Plan) -> [String: ResultCheck] {
        Dictionary(plan.updatedExecutions.compactMap { update in update.check.map { (update.executionID, $0) } }, uniquingKeysWith: { _, last in last })
    }

    static func verdicts(_ plan: Plan) -> [String: Verdict] {
        Dictionary(plan.updatedExecutions.compactMap { update in update.verdict.map { (update.executionID, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    @Test func theDrawIsFixedPerPartitionAndMatchesTheFraction() {
        let none = Self.fastJob(spotCheck: 0, count: 100)
        #expect((0..<100).allSatisfy { !none.spotChecks(partition: $0) })
        let all = Self.fastJob(spotCheck: 1, count: 100)
        #expect((0..<100).allSatisfy { all.spotChecks(partition: $0) })
        let some = Self.fastJob(spotCheck: 0.1, count: 2000)
        let chosen = (0..<2000).filter { some.spotChecks(partition: $0) }
        #expect((150...250).contains(chosen.count), "\(chosen.count) of 2000 at 10%")
        // The same job, asked again, draws the same partitions; another version draws anew.
        #expect((0..<2000).filter { some.spotChecks(partition: $0) } == chosen)
        var next = some
        next.version += 1
        #expect((0..<2000).filter { next.spotChecks(partition: $0) } != chosen)
        // Only Fast jobs spot-check.
        var verified = some
        verified.verification?.mode = .verified
        #expect(!(0..<100).contains { verified.spotChecks(partition: $0) })
    }

    @Test func aSpotCheckStartsOnceTheResultIsInAndRerunsElsewhere() {
        let plan = Self.schedule(Self.fastJob(), [Fixture.execution("e-1", node: "n-1", state: .completed)], keys: ["e-1": "bafyA"])
        #expect(Self.checks(plan)["e-1"]?.reason == .spotCheck)
        #expect(Self.checks(plan)["e-1"]?.outcome == nil)
        #expect(plan.newExecutions.count == 1)
        #expect(plan.newExecutions.first?.auditOf == "e-1")
        #expect(plan.newExecutions.first?.nodeID != "n-1")
        // The job is not held back by its audit.
        #expect(plan.jobState == nil || plan.jobState?.stateType == .completed)
    }

    @Test func aPartitionTheDrawSkipsIsNeverRerun() {
        let plan = Self.schedule(Self.fastJob(spotCheck: 0), [Fixture.execution("e-1", node: "n-1", state: .completed)], keys: ["e-1": "bafyA"])
        #expect(plan.newExecutions.isEmpty && Self.checks(plan).isEmpty)
    }

    @Test func aRerunThatAgreesConfirmsTheResult() {
        let plan = Self.schedule(Self.fastJob(), [Self.audited(), Self.rerun("e-2", node: "n-2")], keys: ["e-1": "bafyA", "e-2": "bafyA"])
        #expect(Self.checks(plan)["e-1"]?.outcome == .confirmed, "\(Self.checks(plan))")
        #expect(Self.verdicts(plan) == ["e-1": .valid, "e-2": .valid])
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func aDisagreementBringsAThirdRunOnANodeThatHoldsNeither() {
        let plan = Self.schedule(Self.fastJob(), [Self.audited(), Self.rerun("e-2", node: "n-2")], keys: ["e-1": "bafyA", "e-2": "bafyB"])
        #expect(Self.checks(plan).isEmpty, "undecided: \(Self.checks(plan))")
        #expect(plan.newExecutions.count == 1)
        #expect(plan.newExecutions.first?.auditOf == "e-1")
        #expect(!["n-1", "n-2"].contains(plan.newExecutions.first?.nodeID ?? "n-1"))
    }

    @Test func twoRerunsThatAgreeAgainstTheResultOverturnIt() {
        let executions = [Self.audited(), Self.rerun("e-2", node: "n-2"), Self.rerun("e-3", node: "n-3")]
        let plan = Self.schedule(Self.fastJob(), executions, keys: ["e-1": "bafyA", "e-2": "bafyB", "e-3": "bafyB"])
        let check = Self.checks(plan)["e-1"]
        #expect(check?.outcome == .overturned)
        #expect(check?.message.contains("bafyB") == true, "\(check?.message ?? "")")
        #expect(Self.verdicts(plan) == ["e-1": .invalid, "e-2": .valid, "e-3": .valid])
        // With those verdicts the job's result is a re-run's, never the overturned one.
        var judged = executions
        judged[0].verdict = .invalid
        judged[1].verdict = .valid
        judged[2].verdict = .valid
        let accepted = Self.fastJob().acceptedResults(among: judged)
        #expect(accepted.count == 1 && accepted.first?.id != "e-1")
    }

    @Test func rerunsThatAgreeWithNothingLeaveTheResultStandingUnconfirmed() {
        let executions = [Self.audited(), Self.rerun("e-2", node: "n-2"), Self.rerun("e-3", node: "n-3")]
        let plan = Self.schedule(Self.fastJob(), executions, keys: ["e-1": "bafyA", "e-2": "bafyB", "e-3": "bafyC"])
        #expect(Self.checks(plan)["e-1"]?.outcome == .noConsensus)
        #expect(Self.verdicts(plan)["e-1"] == nil)
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func withNoOtherNodeTheAuditIsAbandonedNotTheJob() {
        let plan = Self.schedule(Self.fastJob(), [Fixture.execution("e-1", node: "n-1", state: .completed)], keys: ["e-1": "bafyA"],
                                 nodes: [Fixture.node("n-1")])
        let check = Self.checks(plan)["e-1"]
        #expect(check?.outcome == .abandoned, "\(Self.checks(plan))")
        #expect(check?.message.contains("no other node") == true, "\(check?.message ?? "")")
        #expect(plan.newExecutions.isEmpty)
        #expect(plan.jobState?.stateType != .failed)
    }

    @Test func aBusyClusterMakesTheAuditWaitNotGiveUp() {
        let busy = [Fixture.node("n-1"), Fixture.node("n-2", allocated: Resources(cpu: 2, memory: 4 << 30))]
        let plan = Self.schedule(Self.fastJob(), [Fixture.execution("e-1", node: "n-1", state: .completed)], keys: ["e-1": "bafyA"], nodes: busy)
        #expect(Self.checks(plan)["e-1"]?.outcome == nil)
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func aFailedRerunIsReplacedUntilMaxErrors() {
        let executions = [Self.audited(), Self.rerun("e-2", node: "n-2", state: .failed)]
        let plan = Self.schedule(Self.fastJob(), executions, keys: ["e-1": "bafyA"])
        #expect(Self.checks(plan).isEmpty)
        #expect(plan.newExecutions.count == 1 && plan.newExecutions.first?.auditOf == "e-1")
        let twice = executions + [Self.rerun("e-3", node: "n-3", state: .failed)]
        #expect(Self.checks(Self.schedule(Self.fastJob(), twice, keys: ["e-1": "bafyA"]))["e-1"]?.outcome == .abandoned)
    }

    @Test func aRecheckOfUncheckedAdaptiveWorkRunsOnAJobThatCompleted() {
        var job = Fixture.job(state: .completed)
        job.verification = Verification(mode: .verified, adaptive: true)
        var original = Self.audited(.recheck)
        original.verdict = .unchecked
        original.alone = true
        let plan = Self.schedule(job, [original], keys: ["e-1": "bafyA"])
        #expect(plan.newExecutions.count == 1 && plan.newExecutions.first?.auditOf == "e-1")
        #expect(plan.newExecutions.first?.nodeID != "n-1")
        #expect(plan.jobState == nil)
        // Two re-runs against it: the liar's result is overturned.
        let decided = Self.schedule(job, [original, Self.rerun("e-2", node: "n-2"), Self.rerun("e-3", node: "n-3")],
                                    keys: ["e-1": "bafyA", "e-2": "bafyB", "e-3": "bafyB"])
        #expect(Self.checks(decided)["e-1"]?.outcome == .overturned)
        #expect(Self.checks(decided)["e-1"]?.reason == .recheck)
        #expect(Self.verdicts(decided)["e-1"] == .invalid)
    }

    @Test func aReduceWaitsForItsPartitionsAudits() {
        var job = Self.fastJob(state: .running)
        job.tasks.append(JobTask(name: "reduce", engine: SpecConfig(type: "wasm"), publisher: SpecConfig(type: "local")))
        let plan = Self.schedule(job, [Fixture.execution("e-1", node: "n-1", state: .completed)], keys: ["e-1": "bafyA"])
        #expect(plan.newExecutions.count == 1)
        #expect(plan.newExecutions.allSatisfy { $0.auditOf == "e-1" && !$0.isReduce }, "\(plan.newExecutions.map { ($0.taskName, $0.auditOf) })")
        let confirmed = Self.schedule(job, [Self.audited(), Self.rerun("e-2", node: "n-2")], keys: ["e-1": "bafyA", "e-2": "bafyA"])
        #expect(Self.checks(confirmed)["e-1"]?.outcome == .confirmed)
    }
}
