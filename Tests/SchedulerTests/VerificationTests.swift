@testable import CodTestKit
import Models
@testable import Scheduler
import Testing

/// The quorum rule, case by case after BOINC's validator: which results are accepted, when a
/// replica is added, when a partition fails.
@Suite("Verification: the quorum rule")
struct QuorumRuleTests {
    static func settings(replicas: Int = 2, quorum: Int = 2, maxReplicas: Int = 4, maxErrors: Int = 2) -> Verification {
        Verification(mode: .verified, replicas: replicas, quorum: quorum, maxReplicas: maxReplicas, maxErrors: maxErrors)
    }

    /// `A`, `B`: a result with that key; `r`: running; `x`: failed; `A+`: a result already
    /// judged valid.
    static func replicas(_ text: String) -> [Replica] {
        text.split(separator: " ").enumerated().map { index, token in
            let id = "e-\(index)"
            switch token {
            case "r": return Replica(id, .running)
            case "x": return Replica(id, .failed)
            default:
                let valid = token.hasSuffix("+")
                return Replica(id, .result(key: String(token.prefix(1))), verdict: valid ? .valid : nil)
            }
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var replicas: String
        var settings: Verification
        var expected: QuorumDecision
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "nothing yet: start Replicas", replicas: "", settings: settings(), expected: .addReplicas(2)),
        Case(name: "three asked for", replicas: "", settings: settings(replicas: 3, quorum: 2, maxReplicas: 5), expected: .addReplicas(3)),
        Case(name: "one result, one running: wait", replicas: "A r", settings: settings(), expected: .wait),
        Case(name: "2 of 2 agree", replicas: "A A", settings: settings(),
             expected: .accepted(key: "A", valid: ["e-0", "e-1"], invalid: [], cancel: [])),
        Case(name: "a 1-1 tie adds one replica", replicas: "A B", settings: settings(), expected: .addReplicas(1)),
        Case(name: "2-1 with quorum 2", replicas: "A B A", settings: settings(),
             expected: .accepted(key: "A", valid: ["e-0", "e-2"], invalid: ["e-1"], cancel: [])),
        Case(name: "three different: one more", replicas: "A B C", settings: settings(), expected: .addReplicas(1)),
        Case(name: "three different at MaxReplicas 3: NoConsensus", replicas: "A B C", settings: settings(maxReplicas: 3),
             expected: .noConsensus([
                ResultGroup(key: "A", executionIDs: ["e-0"]), ResultGroup(key: "B", executionIDs: ["e-1"]),
                ResultGroup(key: "C", executionIDs: ["e-2"]),
             ])),
        Case(name: "a 2-2 tie is no majority", replicas: "A B A B", settings: settings(maxReplicas: 5), expected: .addReplicas(1)),
        Case(name: "a 2-2 tie at MaxReplicas: NoConsensus", replicas: "A B A B", settings: settings(maxReplicas: 4),
             expected: .noConsensus([ResultGroup(key: "A", executionIDs: ["e-0", "e-2"]), ResultGroup(key: "B", executionIDs: ["e-1", "e-3"])])),
        Case(name: "accepted while one still runs: cancel it", replicas: "A A r", settings: settings(replicas: 3, quorum: 2, maxReplicas: 5),
             expected: .accepted(key: "A", valid: ["e-0", "e-1"], invalid: [], cancel: ["e-2"])),
        Case(name: "a late result after acceptance is compared to the accepted one", replicas: "A+ A+ B", settings: settings(),
             expected: .accepted(key: "A", valid: ["e-0", "e-1"], invalid: ["e-2"], cancel: [])),
        Case(name: "an acceptance stands against later results that outnumber it", replicas: "A+ A+ B B B",
             settings: settings(replicas: 2, quorum: 2, maxReplicas: 6),
             expected: .accepted(key: "A", valid: ["e-0", "e-1"], invalid: ["e-2", "e-3", "e-4"], cancel: [])),
        Case(name: "a failed replica is replaced", replicas: "A x", settings: settings(), expected: .addReplicas(1)),
        Case(name: "errors count toward MaxErrors", replicas: "x x x", settings: settings(maxReplicas: 6, maxErrors: 2), expected: .tooManyErrors(3)),
        Case(name: "errors up to MaxErrors are replaced", replicas: "x x", settings: settings(maxReplicas: 6, maxErrors: 2), expected: .addReplicas(2)),
        Case(name: "failures use up MaxReplicas", replicas: "A x x", settings: settings(maxReplicas: 3, maxErrors: 5),
             expected: .noConsensus([ResultGroup(key: "A", executionIDs: ["e-0"])])),
        Case(name: "quorum 1 of 1", replicas: "A", settings: settings(replicas: 1, quorum: 1, maxReplicas: 2),
             expected: .accepted(key: "A", valid: ["e-0"], invalid: [], cancel: [])),
        Case(name: "quorum 2 of 3 with one disagreeing and one running: wait", replicas: "A B r",
             settings: settings(replicas: 3, quorum: 2, maxReplicas: 5), expected: .wait),
        Case(name: "a running replica that cannot reach quorum alone: add", replicas: "A B C r",
             settings: settings(replicas: 2, quorum: 3, maxReplicas: 8), expected: .addReplicas(1)),
    ]

    @Test(arguments: cases)
    func rule(_ row: Case) {
        #expect(QuorumRule.decide(Self.replicas(row.replicas), settings: row.settings) == row.expected)
    }

    @Test func settingsAreChecked() {
        #expect(Verification(mode: .verified, replicas: 2, quorum: 2).problems().isEmpty)
        #expect(Verification(mode: .verified, replicas: 0).problems().map(\.path).contains("Verification.Replicas"))
        #expect(Verification(mode: .verified, replicas: 2, quorum: 3).problems().map(\.path) == ["Verification.Quorum"])
        #expect(Verification(mode: .verified, replicas: 3, maxReplicas: 2).problems().map(\.path) == ["Verification.MaxReplicas"])
        #expect(Verification(mode: .verified, replicas: Int.max).problems().count >= 2)
        #expect(!Verification(mode: .verified, compare: ["../etc"]).problems().isEmpty)
        #expect(!Verification(mode: .verified, compare: []).problems().isEmpty)
        #expect(Verification(mode: .fast, replicas: -1).problems().isEmpty)
    }
}

/// The rule inside the reconciler: replicas on distinct nodes, verdicts, cancels, failure.
@Suite("Verification: the reconciler")
struct VerifiedSchedulingTests {
    static func job(replicas: Int = 2, quorum: Int = 2, maxReplicas: Int = 4, distinct: [String] = ["node"], homogeneous: [String] = []) -> Job {
        var job = Fixture.job()
        job.verification = Verification(
            mode: .verified, replicas: replicas, quorum: quorum, maxReplicas: maxReplicas, homogeneous: homogeneous, distinct: distinct)
        return job
    }

    static let nodes = ["n-1", "n-2", "n-3", "n-4"].map { Fixture.node($0) }

    static func schedule(_ job: Job, _ executions: [Execution], keys: [String: String] = [:], nodes: [NodeCandidate] = nodes) -> Plan {
        var input = Fixture.input(job, executions, nodes: nodes)
        input.resultKeys = keys
        return BatchScheduler().schedule(input)
    }

    @Test func replicasStartAtOnceOnDistinctNodes() {
        let plan = Self.schedule(Self.job(replicas: 3, maxReplicas: 5), [])
        #expect(plan.newExecutions.count == 3)
        #expect(Set(plan.newExecutions.map(\.nodeID)).count == 3)
        #expect(plan.newExecutions.allSatisfy { $0.partitionIndex == 0 })
    }

    @Test func agreeingResultsCompleteThePartitionAndMarkVerdicts() {
        let done = [Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed)]
        let plan = Self.schedule(Self.job(), done, keys: ["e-1": "bafyA", "e-2": "bafyA"])
        #expect(plan.jobState?.stateType == .completed)
        #expect(Set(plan.updatedExecutions.compactMap { $0.verdict == .valid ? $0.executionID : nil }) == ["e-1", "e-2"])
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func aTieAddsAReplicaOnANodeThatRanNone() {
        let done = [Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed)]
        let plan = Self.schedule(Self.job(), done, keys: ["e-1": "bafyA", "e-2": "bafyB"])
        #expect(plan.jobState?.stateType != .completed)
        #expect(plan.newExecutions.count == 1)
        #expect(!["n-1", "n-2"].contains(plan.newExecutions.first?.nodeID ?? "n-1"))
    }

    @Test func theMajorityWinsTheMinorityIsInvalidAndSpareReplicasStop() {
        let executions = [
            Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed),
            Fixture.execution("e-3", node: "n-3", state: .completed), Fixture.execution("e-4", node: "n-4", state: .running),
        ]
        let plan = Self.schedule(Self.job(replicas: 3), executions, keys: ["e-1": "bafyA", "e-2": "bafyB", "e-3": "bafyA"])
        #expect(plan.jobState?.stateType == .completed)
        let verdicts = Dictionary(plan.updatedExecutions.compactMap { update in update.verdict.map { (update.executionID, $0) } }, uniquingKeysWith: { a, _ in a })
        #expect(verdicts == ["e-1": .valid, "e-3": .valid, "e-2": .invalid])
        #expect(plan.updatedExecutions.contains { $0.executionID == "e-4" && $0.desiredState == .stopped })
    }

    @Test func noConsensusAtMaxReplicasFailsWithTheGroups() {
        let done = [Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed)]
        let plan = Self.schedule(Self.job(maxReplicas: 2), done, keys: ["e-1": "bafyA", "e-2": "bafyB"])
        #expect(plan.jobState?.stateType == .failed)
        let message = plan.jobState?.message ?? ""
        #expect(message.contains("NoConsensus") && message.contains("bafyA") && message.contains("bafyB"), "\(message)")
    }

    @Test func aResultTheOrchestratorCannotReadIsNoMatch() {
        let done = [Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed)]
        let plan = Self.schedule(Self.job(), done, keys: ["e-1": "bafyA"])
        #expect(plan.jobState?.stateType != .completed)
        #expect(plan.newExecutions.count == 1)
    }

    @Test func tooFewDistinctNodesNeverPutTwoReplicasOnOne() {
        let plan = Self.schedule(Self.job(), [], nodes: [Fixture.node("n-1")])
        #expect(plan.newExecutions.count <= 1)
        #expect(Set(plan.newExecutions.map(\.nodeID)).count == plan.newExecutions.count)
    }

    @Test func aLateResultAfterTheJobCompletedIsStillJudged() {
        var job = Self.job(replicas: 3)
        job.state = JobState(.completed)
        var executions = [
            Fixture.execution("e-1", node: "n-1", state: .completed), Fixture.execution("e-2", node: "n-2", state: .completed),
            Fixture.execution("e-3", node: "n-3", state: .completed, desired: .stopped),
        ]
        executions[0].verdict = .valid
        executions[1].verdict = .valid
        let plan = Self.schedule(job, executions, keys: ["e-1": "bafyA", "e-2": "bafyA", "e-3": "bafyB"])
        #expect(plan.updatedExecutions.map(\.executionID) == ["e-3"])
        #expect(plan.updatedExecutions.first?.verdict == .invalid)
        #expect(plan.jobState == nil && plan.newExecutions.isEmpty)
    }

    @Test func nodesWhoseReplicasFailedMayRunAgainButNeverTwoAtOnce() {
        let failed = [
            Fixture.execution("e-1", node: "n-1", state: .failed, message: "[retryable] boom"),
            Fixture.execution("e-2", node: "n-2", state: .failed, message: "[retryable] boom"),
        ]
        let plan = Self.schedule(Self.job(maxReplicas: 4), failed, nodes: [Fixture.node("n-1"), Fixture.node("n-2")])
        #expect(plan.newExecutions.count == 2, "\(plan.jobState?.message ?? "")")
        #expect(Set(plan.newExecutions.map(\.nodeID)) == ["n-1", "n-2"])
    }

    @Test func distinctAndHomogeneousLabelsShapePlacement() {
        let nodes = [
            Fixture.node("n-1", labels: ["operator": "a", "arch": "x86"]), Fixture.node("n-2", labels: ["operator": "a", "arch": "x86"]),
            Fixture.node("n-3", labels: ["operator": "b", "arch": "arm"]), Fixture.node("n-4", labels: ["operator": "c", "arch": "x86"]),
        ]
        let first = [Fixture.execution("e-1", node: "n-1", state: .running)]
        // Another operator than n-1's, and the same architecture: only n-4.
        for _ in 0..<5 {
            let plan = Self.schedule(Self.job(replicas: 2, distinct: ["node", "operator"], homogeneous: ["arch"]), first, nodes: nodes)
            #expect(plan.newExecutions.map(\.nodeID) == ["n-4"])
        }
    }
}

/// Adaptive replication, simulated through the reconciler: jobs on honest nodes stop being
/// replicated once the nodes' reputations are warm; one bad answer resets a node.
@Suite("Verification: adaptive replication")
struct AdaptiveReplicationTests {
    /// A cluster the simulation drives: the reconciler's plans applied, results reported with
    /// the key each node answers, reputations counted as the store counts them.
    struct Simulation {
        var nodes = (1...5).map { Fixture.node("n-\($0)") }
        var reputation: [String: NodeReputation] = [:]
        var answer: (String) -> String = { _ in "bafyA" }
        var jobNumber = 0

        /// Runs one single-partition Adaptive job to its end; returns its executions.
        mutating func runJob() -> [Execution] {
            jobNumber += 1
            var job = Fixture.job()
            job.id = "j-\(jobNumber)"
            job.verification = Verification(mode: .verified, replicas: 2, quorum: 2, maxReplicas: 5, adaptive: true)
            var executions: [Execution] = []
            var keys: [String: String] = [:]
            for round in 0..<10 {
                let evaluation = Evaluation(
                    id: "v-\(jobNumber)-\(round)", namespace: "default", jobID: job.id, triggeredBy: .jobRegister, createTime: Fixture.now,
                    modifyTime: Fixture.now)
                var input = SchedulingInput(evaluation: evaluation, job: job, executions: executions, nodes: nodes, now: Fixture.now)
                input.resultKeys = keys
                input.reputation = reputation
                let plan = BatchScheduler().schedule(input)
                for update in plan.updatedExecutions {
                    guard let index = executions.firstIndex(where: { $0.id == update.executionID }) else { continue }
                    if let verdict = update.verdict, verdict != executions[index].verdict {
                        executions[index].verdict = verdict
                        if verdict != .unchecked { count(verdict == .valid ? .valid : .invalid, node: executions[index].nodeID) }
                    }
                    if update.desiredState == .stopped, executions[index].isActive { executions[index].computeState = State(.cancelled) }
                }
                if let state = plan.jobState { job.state = state }
                if job.state.stateType.isTerminal { break }
                // New replicas run and report at once.
                for var execution in plan.newExecutions {
                    execution.computeState = State(.completed)
                    keys[execution.id] = answer(execution.nodeID)
                    executions.append(execution)
                }
            }
            #expect(job.state.stateType == .completed, "\(job.id): \(job.state.message)")
            return executions
        }

        mutating func count(_ event: NodeReputation.Event, node: String) {
            let (engine, artifact) = ("wasm", "")
            reputation[node] = (reputation[node] ?? NodeReputation(nodeID: node, engine: engine, artifact: artifact)).recording(event)
        }
    }

    @Test func warmReputationsReplicateUnderFifteenPercent() {
        var simulation = Simulation()
        var replicated: [Bool] = []
        for _ in 1...200 {
            let executions = simulation.runJob()
            replicated.append(executions.count > 1)
            // A lone replica is accepted unchecked; replicated ones are compared.
            if executions.count == 1 { #expect(executions[0].verdict == .unchecked && executions[0].alone == true) }
        }
        // No node can have 10 valid results before the 10th job: those are all replicated.
        let early = replicated.prefix(10).filter { $0 }.count
        let late = replicated.suffix(100).filter { $0 }.count
        #expect(early == 10, "the first jobs are all replicated, got \(early)")
        print("adaptive replication: \(replicated.filter { $0 }.count) of 200 jobs replicated, \(late) of jobs 101-200")
        #expect(late < 15, "jobs 101-200: \(late) of 100 replicated")
    }

    @Test func oneBadAnswerResetsTheNodeAndItsWorkIsReplicatedAgain() throws {
        var simulation = Simulation()
        for _ in 1...120 { _ = simulation.runJob() }
        // The most trusted node answers wrongly, in the first job where it is compared with another.
        let liar = try #require(simulation.reputation.values.max { $0.consecutiveValid < $1.consecutiveValid }?.nodeID)
        let before = simulation.reputation[liar]
        #expect((before?.consecutiveValid ?? 0) >= NodeReputation.trustedAfter)
        simulation.answer = { $0 == liar ? "bafyB" : "bafyA" }
        var caught = false
        for _ in 1...400 where !caught {
            let executions = simulation.runJob()
            if executions.count > 1, executions.contains(where: { $0.nodeID == liar }) {
                caught = true
                #expect(executions.first { $0.nodeID == liar }?.verdict == .invalid)
            }
        }
        #expect(caught)
        let after = simulation.reputation[liar]
        #expect(after?.consecutiveValid == 0)
        #expect(after?.invalid == 1)
        // Exact: lone (unchecked) results count nothing, so only the one comparison changed it.
        #expect(after?.valid == before?.valid)
        // Honest again: until it has 10 valid results in a row, it never runs a partition alone.
        simulation.answer = { _ in "bafyA" }
        for _ in 1...100 {
            let trusted = (simulation.reputation[liar]?.consecutiveValid ?? 0) >= NodeReputation.trustedAfter
            let executions = simulation.runJob()
            if !trusted { #expect(!executions.contains { $0.nodeID == liar && $0.alone == true }) }
        }
    }
}

/// Trusted: no replicas, and only nodes carrying every trust label with its value.
@Suite("Verification: trusted")
struct TrustedSchedulingTests {
    @Test func onlyNodesWithTheTrustLabelsRunIt() {
        var job = Fixture.job(count: 3)
        job.verification = Verification(mode: .trusted, trustLabels: ["operator": "us", "tier": "gold"])
        let nodes = [
            Fixture.node("n-1", labels: ["operator": "us", "tier": "gold"]), Fixture.node("n-2", labels: ["operator": "us"]),
            Fixture.node("n-3", labels: ["operator": "them", "tier": "gold"]), Fixture.node("n-4", labels: ["operator": "us", "tier": "gold"]),
        ]
        let plan = BatchScheduler().schedule(Fixture.input(job, nodes: nodes))
        #expect(plan.newExecutions.count == 3)
        #expect(Set(plan.newExecutions.map(\.nodeID)).isSubset(of: ["n-1", "n-4"]))

        let untrusted = BatchScheduler().schedule(Fixture.input(job, nodes: [nodes[1], nodes[2]]))
        #expect(untrusted.jobState?.stateType == .failed)
        let message = untrusted.jobState?.message ?? ""
        #expect(message.contains("not trusted by the job"), "\(message)")
    }

    @Test func trustedNeedsLabels() {
        #expect(Verification(mode: .trusted).problems().map(\.path) == ["Verification.TrustLabels"])
        #expect(Verification(mode: .trusted, trustLabels: ["../x": "y"]).problems().count == 1)
        #expect(Verification(mode: .trusted, trustLabels: ["operator": "us"]).problems().isEmpty)
    }
}
