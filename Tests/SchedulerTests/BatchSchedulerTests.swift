@testable import CodTestKit
import Models
import Scheduler
import Testing

/// What a plan should contain.
struct ResultExpectation: CustomTestStringConvertible, Sendable {
    var name: String
    var input: SchedulingInput
    var placed: Int = 0
    var stopped: Int = 0
    var lost: Int = 0
    var jobState: JobStateType?
    var messageContains: [String] = []
    var followUp: Bool = false

    var testDescription: String { name }
}

@Suite("Batch scheduler (reconciler)")
struct BatchSchedulerTests {
    static let cases: [ResultExpectation] = [
        ResultExpectation(
            name: "one partition goes to a node", input: Fixture.input(Fixture.job(), nodes: [Fixture.node("n-a")]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "no nodes: fails and says so", input: Fixture.input(Fixture.job(), nodes: []),
            jobState: .failed, messageContains: ["no compute nodes are connected"]),
        ResultExpectation(
            name: "unsupported engine: every node's reason", input: Fixture.input(Fixture.job(engine: "docker"),
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            jobState: .failed, messageContains: ["node n-a: engine docker not supported", "node n-b: engine docker", "suitable: 0"]),
        ResultExpectation(
            name: "network not allowed anywhere: fails with each node's reason", input: Fixture.input(
                Fixture.job(engine: "docker", network: "Host"),
                nodes: [Fixture.node("n-a", engines: ["docker"]), Fixture.node("n-b", engines: ["docker"], networks: ["none", "full"])]),
            jobState: .failed, messageContains: ["node n-a: network host not allowed (allows none)", "node n-b: network host not allowed (allows none, full)"]),
        ResultExpectation(
            name: "an HTTP allowlist is refused with the alternative", input: Fixture.input(
                Fixture.job(engine: "docker", network: "HTTP"), nodes: [Fixture.node("n-a", engines: ["docker"], networks: ["none", "full"])]),
            jobState: .failed, messageContains: ["network HTTP (a domain allowlist) is not offered (allows none, full; ask for Full"]),
        ResultExpectation(
            name: "network goes to the node that allows it", input: Fixture.input(
                Fixture.job(engine: "process", network: "Full"),
                nodes: [Fixture.node("n-a", engines: ["process"]), Fixture.node("n-b", engines: ["process"], networks: ["none", "full"])]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "Bridge counts as Full; Default as None", input: Fixture.input(
                Fixture.job(engine: "docker", network: "Bridge"), nodes: [Fixture.node("n-a", engines: ["docker"], networks: ["none", "full"])]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "GPU jobs need a node with GPUs", input: Fixture.input(
                Fixture.job(engine: "docker", gpu: "1"), nodes: [Fixture.node("n-a", engines: ["docker"])]),
            jobState: .failed, messageContains: ["job needs 1 GPU; the node has none"]),
        ResultExpectation(
            name: "GPU jobs go to the GPU node", input: Fixture.input(
                Fixture.job(engine: "docker", gpu: "1"),
                nodes: [Fixture.node("n-a", engines: ["docker"]), Fixture.node("n-b", engines: ["docker"], gpus: 2)]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "ops: one execution on every matching node", input: Fixture.input(
                Fixture.job(type: "ops"), nodes: [Fixture.node("n-a"), Fixture.node("n-b"), Fixture.node("n-c", engines: ["docker"])]),
            placed: 2, jobState: .running),
        ResultExpectation(
            name: "ops: no matching node fails with each node's reason", input: Fixture.input(
                Fixture.job(type: "ops"), nodes: [Fixture.node("n-c", engines: ["docker"])]),
            jobState: .failed, messageContains: ["no node can run this ops job", "node n-c: engine wasm not supported"]),
        ResultExpectation(
            name: "ops: done when every node's execution completed", input: Fixture.input(Fixture.job(state: .running, type: "ops"),
                [Fixture.execution("e-1", node: "n-a", state: .completed, desired: .stopped),
                 Fixture.execution("e-2", node: "n-b", state: .completed, desired: .stopped)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            jobState: .completed),
        ResultExpectation(
            name: "ops: a node joining later is not added", input: Fixture.input(Fixture.job(state: .running, type: "ops"),
                [Fixture.execution("e-1", node: "n-a", state: .running)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 0, jobState: nil),
        ResultExpectation(
            name: "ops: a node's failure fails the job and stops the rest", input: Fixture.input(Fixture.job(state: .running, type: "ops"),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "the module trapped: unreachable"),
                 Fixture.execution("e-2", node: "n-b", state: .running)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            stopped: 1, jobState: .failed, messageContains: ["ops job failed on node n-a", "trapped"]),
        ResultExpectation(
            name: "ops: a retryable failure is retried on the same node", input: Fixture.input(Fixture.job(state: .running, type: "ops"),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "[retryable] node error"),
                 Fixture.execution("e-2", node: "n-b", state: .completed, desired: .stopped)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "ops: a lost node fails the job", input: Fixture.input(Fixture.job(state: .running, type: "ops"),
                [Fixture.execution("e-1", node: "n-a", state: .running), Fixture.execution("e-2", node: "n-b", state: .running)],
                nodes: [Fixture.node("n-a", connection: .disconnected), Fixture.node("n-b")]),
            stopped: 1, lost: 1, jobState: .failed, messageContains: ["node n-a was lost"]),
        ResultExpectation(
            name: "daemon: a node joining later gets one", input: Fixture.input(Fixture.job(state: .running, type: "daemon"),
                [Fixture.execution("e-1", node: "n-a", state: .running)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "daemon: keeps running when its executions end", input: Fixture.input(Fixture.job(state: .running, type: "daemon"),
                [Fixture.execution("e-1", node: "n-a", state: .completed, desired: .stopped)],
                nodes: [Fixture.node("n-a")]),
            placed: 0, jobState: nil),
        ResultExpectation(
            name: "daemon: a lost node drops out without failing the job", input: Fixture.input(Fixture.job(state: .running, type: "daemon"),
                [Fixture.execution("e-1", node: "n-a", state: .running), Fixture.execution("e-2", node: "n-b", state: .running)],
                nodes: [Fixture.node("n-a", connection: .disconnected), Fixture.node("n-b")]),
            lost: 1, jobState: nil),
        ResultExpectation(
            name: "daemon: a node that comes back gets a new execution", input: Fixture.input(Fixture.job(state: .running, type: "daemon"),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "node n-a was lost"),
                 Fixture.execution("e-2", node: "n-b", state: .running)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "service: Count replicas are placed", input: Fixture.input(
                Fixture.job(count: 2, type: "service"), nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 2, jobState: .running),
        ResultExpectation(
            name: "service: a replica that ended is replaced; the job keeps running", input: Fixture.input(
                Fixture.job(count: 2, state: .running, type: "service"),
                [Fixture.execution("e-1", node: "n-a", partition: 0, state: .completed, desired: .stopped),
                 Fixture.execution("e-2", node: "n-b", partition: 1, state: .running)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "service: a replica that just failed is replaced after a pause", input: Fixture.input(
                Fixture.job(state: .running, type: "service"),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "the module trapped: unreachable")],
                nodes: [Fixture.node("n-a")]),
            placed: 0, jobState: nil, followUp: true),
        ResultExpectation(
            name: "service: after the pause it is replaced", input: Fixture.input(
                Fixture.job(state: .running, type: "service"),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "the module trapped: unreachable")],
                nodes: [Fixture.node("n-a")], now: Fixture.now + 10_000_000_000),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "service: a replica that keeps failing fails the job", input: Fixture.input(
                Fixture.job(state: .running, type: "service"),
                (0..<4).map { Fixture.execution("e-\($0)", node: "n-a", state: .failed, desired: .stopped, message: "the module trapped: unreachable") },
                nodes: [Fixture.node("n-a")]),
            jobState: .failed, messageContains: ["replica keeps failing", "trapped"]),
        ResultExpectation(
            name: "too big for any node: fails", input: Fixture.input(Fixture.job(cpu: "8"), nodes: [Fixture.node("n-a", cpu: 2)]),
            jobState: .failed, messageContains: ["more cpu than the node has in total"]),
        ResultExpectation(
            name: "nodes busy: queued with a follow-up", input: Fixture.input(Fixture.job(cpu: "1"),
                nodes: [Fixture.node("n-a", cpu: 1, allocated: Resources(cpu: 1))]),
            jobState: .queued, messageContains: ["waiting for capacity", "not enough free cpu right now"], followUp: true),
        ResultExpectation(
            name: "constraint mismatch names the label", input: Fixture.input(
                Fixture.job(constraints: [LabelSelectorRequirement(key: "region", operator: "in", values: ["eu"])]),
                nodes: [Fixture.node("n-a", labels: ["region": "us"])]),
            jobState: .failed, messageContains: ["label region is \"us\""]),
        ResultExpectation(
            name: "constraint match places", input: Fixture.input(
                Fixture.job(constraints: [LabelSelectorRequirement(key: "region", operator: "in", values: ["eu"])]),
                nodes: [Fixture.node("n-a", labels: ["region": "us"]), Fixture.node("n-b", labels: ["region": "eu"])]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "disconnected nodes are skipped", input: Fixture.input(Fixture.job(),
                nodes: [Fixture.node("n-a", connection: .disconnected), Fixture.node("n-b")]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "suspect nodes get no new work", input: Fixture.input(Fixture.job(),
                nodes: [Fixture.node("n-a", liveness: .suspect), Fixture.node("n-b")]),
            placed: 1, jobState: .running),
        ResultExpectation(
            name: "only suspect nodes: queued until one recovers", input: Fixture.input(Fixture.job(queueTimeout: 60),
                nodes: [Fixture.node("n-a", liveness: .suspect)]),
            jobState: .queued, messageContains: ["suspect"], followUp: true),
        ResultExpectation(
            name: "a suspect node's running work is left alone", input: Fixture.input(Fixture.job(state: .running),
                [Fixture.execution("e-1", node: "n-a", state: .running)], nodes: [Fixture.node("n-a", liveness: .suspect)])),
        ResultExpectation(
            name: "all partitions completed: job completed", input: Fixture.input(Fixture.job(count: 2, state: .running),
                [Fixture.execution("e-1", node: "n-a", partition: 0, state: .completed, desired: .stopped),
                 Fixture.execution("e-2", node: "n-b", partition: 1, state: .completed, desired: .stopped)],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            jobState: .completed),
        ResultExpectation(
            name: "a trap fails the job, no retry", input: Fixture.input(Fixture.job(state: .running),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "the module trapped: unreachable")],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            jobState: .failed, messageContains: ["trapped"]),
        ResultExpectation(
            name: "a retryable failure is retried", input: Fixture.input(Fixture.job(state: .running),
                [Fixture.execution("e-1", node: "n-a", state: .failed, desired: .stopped, message: "[retryable] node error")],
                nodes: [Fixture.node("n-a"), Fixture.node("n-b")]),
            placed: 1, jobState: nil),
        ResultExpectation(
            name: "a lost node's execution is failed and retried", input: Fixture.input(Fixture.job(state: .running),
                [Fixture.execution("e-1", node: "n-gone", state: .running)],
                nodes: [Fixture.node("n-b")]),
            placed: 1, lost: 1, jobState: nil),
        ResultExpectation(
            name: "a stopped job stops its executions", input: Fixture.input(Fixture.job(count: 2, state: .stopped),
                [Fixture.execution("e-1", node: "n-a", partition: 0, state: .running),
                 Fixture.execution("e-2", node: "n-a", partition: 1, state: .completed, desired: .stopped)],
                nodes: [Fixture.node("n-a")]),
            stopped: 1),
        ResultExpectation(
            name: "running partitions are left alone", input: Fixture.input(Fixture.job(state: .running),
                [Fixture.execution("e-1", node: "n-a", state: .running)], nodes: [Fixture.node("n-a")])),
    ]

    @Test(arguments: cases)
    func reconcile(_ expectation: ResultExpectation) {
        let plan = BatchScheduler().schedule(expectation.input)
        #expect(plan.newExecutions.count == expectation.placed, "placed")
        let stops = plan.updatedExecutions.filter { $0.desiredState == .stopped && $0.computeState == nil }
        #expect(stops.count == expectation.stopped, "stopped")
        #expect(plan.updatedExecutions.filter { $0.computeState == .failed }.count == expectation.lost, "lost")
        #expect(plan.jobState?.stateType == expectation.jobState, "job state: \(String(describing: plan.jobState))")
        for text in expectation.messageContains {
            #expect(plan.jobState?.message.contains(text) == true, "'\(text)' not in \(plan.jobState?.message ?? "nil")")
        }
        #expect(!plan.newEvaluations.isEmpty == expectation.followUp, "follow-up evaluation")
    }

    @Test func totalTimeoutFailsTheJobAndStopsItsWork() {
        var job = Fixture.job(state: .running)
        job.tasks[0].timeouts.totalTimeout = 60
        job.createTime = Fixture.now - 61_000_000_000
        let running = Fixture.execution("e-1", node: "n-a", state: .running)
        let plan = BatchScheduler().schedule(Fixture.input(job, [running], nodes: [Fixture.node("n-a")]))
        #expect(plan.jobState?.stateType == .failed)
        #expect(plan.jobState?.message.contains("Timeouts.TotalTimeout (60s)") == true)
        #expect(plan.updatedExecutions.map(\.executionID) == ["e-1"])
        #expect(plan.newExecutions.isEmpty)
    }

    @Test func placingAJobWithATotalTimeoutLooksAgainAtItsDeadline() {
        var job = Fixture.job()
        job.tasks[0].timeouts.totalTimeout = 60
        job.createTime = Fixture.now - 5_000_000_000
        let plan = BatchScheduler().schedule(Fixture.input(job, nodes: [Fixture.node("n-a")]))
        #expect(plan.newExecutions.count == 1)
        #expect(plan.newEvaluations.map(\.waitUntil) == [job.createTime + 60_000_000_000])
        // Without a total timeout, no such evaluation.
        #expect(BatchScheduler().schedule(Fixture.input(Fixture.job(), nodes: [Fixture.node("n-a")])).newEvaluations.isEmpty)
    }

    @Test func rerunSupersedesEarlierVersions() {
        // Version 2 of a job whose version 1 is still running one partition and completed another.
        var job = Fixture.job(count: 2, state: .pending)
        job.version = 2
        let running = Fixture.execution("e-1", node: "n-a", partition: 0, state: .running)
        let done = Fixture.execution("e-2", node: "n-b", partition: 1, state: .completed, desired: .stopped)
        let plan = BatchScheduler().schedule(Fixture.input(job, [running, done], nodes: [Fixture.node("n-a"), Fixture.node("n-b")]))
        #expect(plan.updatedExecutions.map(\.executionID) == ["e-1"])
        #expect(plan.updatedExecutions.first?.message.contains("superseded by version 2") == true)
        // Both partitions run again: version 1's completed one does not count for version 2.
        #expect(plan.newExecutions.map(\.partitionIndex).sorted() == [0, 1])
        #expect(plan.newExecutions.allSatisfy { $0.jobVersion == 2 })
        #expect(plan.jobState?.stateType == .running)
    }

    @Test func partitionsSpreadAcrossNodes() {
        let plan = BatchScheduler().schedule(
            Fixture.input(Fixture.job(count: 6), nodes: [Fixture.node("n-a"), Fixture.node("n-b"), Fixture.node("n-c")]))
        #expect(plan.newExecutions.count == 6)
        #expect(Set(plan.newExecutions.map(\.partitionIndex)) == Set(0..<6))
        let perNode = Dictionary(grouping: plan.newExecutions, by: \.nodeID).mapValues(\.count)
        #expect(perNode.values.allSatisfy { $0 == 2 }, "\(perNode)")
        #expect(plan.newExecutions.allSatisfy { $0.desiredState.stateType == .running })
    }

    @Test func capacityIsRespectedWithinOnePlan() {
        // Each partition needs 1 CPU; two nodes with 1 CPU each: two placed, the rest wait.
        let plan = BatchScheduler().schedule(
            Fixture.input(Fixture.job(count: 4, cpu: "1"), nodes: [Fixture.node("n-a", cpu: 1), Fixture.node("n-b", cpu: 1)]))
        #expect(plan.newExecutions.count == 2)
        #expect(Set(plan.newExecutions.map(\.nodeID)) == ["n-a", "n-b"])
        #expect(plan.jobState?.stateType == .running)
        #expect(plan.newEvaluations.count == 1)
    }

    @Test func defaultAllocationDependsOnTheEngine() {
        let wasm = BatchScheduler().schedule(Fixture.input(Fixture.job(), nodes: [Fixture.node("n-a")]))
        #expect(wasm.newExecutions.first?.allocatedResources == Resources(cpu: 0.1, memory: 64 << 20))
        for engine in ["docker", "process"] {
            let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(engine: engine), nodes: [Fixture.node("n-a", engines: [engine])]))
            #expect(plan.newExecutions.first?.allocatedResources == Resources(cpu: 0.5, memory: 1 << 30), "\(engine)")
        }
        // What the job asks for wins; what it leaves out comes from the engine's defaults.
        let asked = BatchScheduler().schedule(Fixture.input(Fixture.job(engine: "docker", cpu: "2"), nodes: [Fixture.node("n-a", engines: ["docker"])]))
        #expect(asked.newExecutions.first?.allocatedResources == Resources(cpu: 2, memory: 1 << 30))
    }

    @Test func retriesPreferAnotherNode() {
        let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(state: .running),
            [Fixture.execution("e-1", node: "n-a", state: .askForBidRejected, desired: .stopped)],
            nodes: [Fixture.node("n-a"), Fixture.node("n-b")]))
        #expect(plan.newExecutions.first?.nodeID == "n-b")
        #expect(plan.newExecutions.first?.previousExecution == "e-1")
    }

    /// Nodes that had no room when the work arrived say nothing about the program: the job is
    /// placed again (after a pause once it repeats), not failed after the program's retries.
    @Test func rejectedBidsDoNotUseTheProgramsRetries() {
        let rejected = (0..<5).map {
            Fixture.execution("e-\($0)", node: "n-a", state: .askForBidRejected, desired: .stopped)
        }
        let plan = BatchScheduler(settings: SchedulerSettings(maxRetries: 3)).schedule(
            Fixture.input(Fixture.job(state: .running), rejected, nodes: [Fixture.node("n-a")]))
        #expect(plan.jobState?.stateType != .failed, "\(plan.jobState?.message ?? "")")
        #expect(plan.newExecutions.isEmpty && plan.waiting == .backoff, "the fifth rejection in a row pauses before the next try")
        let later = BatchScheduler(settings: SchedulerSettings(maxRetries: 3)).schedule(
            Fixture.input(Fixture.job(state: .running), rejected, nodes: [Fixture.node("n-a")], now: Fixture.now + 3600 * 1_000_000_000))
        #expect(later.newExecutions.count == 1)
    }

    @Test func givesUpAfterMaxRetries() {
        let failures = (0..<4).map {
            Fixture.execution("e-\($0)", node: "n-a", state: .failed, desired: .stopped, message: "[retryable] node error")
        }
        let plan = BatchScheduler(settings: SchedulerSettings(maxRetries: 3)).schedule(
            Fixture.input(Fixture.job(state: .running), failures, nodes: [Fixture.node("n-a")]))
        #expect(plan.newExecutions.isEmpty)
        #expect(plan.jobState?.stateType == .failed)
        #expect(plan.jobState?.message.contains("gave up after 4 attempts") == true)
    }

    /// Every constraint operator Bacalhau accepts, against a node labelled region=eu, gpus=2.
    @Test(arguments: [
        ("region", "=", ["eu"], true), ("region", "==", ["us"], false), ("region", "!=", ["us"], true),
        ("region", "in", ["us", "eu"], true), ("region", "In", ["us"], false), ("region", "notin", ["us"], true),
        ("region", "notin", ["eu"], false), ("zone", "notin", ["a"], true), ("region", "exists", [], true),
        ("zone", "exists", [], false), ("zone", "!", [], true), ("region", "!", [], false),
        ("gpus", "gt", ["1"], true), ("gpus", "gt", ["2"], false), ("gpus", "lt", ["3"], true), ("region", "gt", ["1"], false),
        ("region", "near", ["eu"], false),
    ])
    func constraintOperators(key: String, op: String, values: [String], placed: Bool) {
        let requirement = LabelSelectorRequirement(key: key, operator: op, values: values)
        let input = Fixture.input(Fixture.job(constraints: [requirement]), nodes: [Fixture.node("n-a", labels: ["region": "eu", "gpus": "2"])])
        let plan = BatchScheduler().schedule(input)
        #expect(plan.newExecutions.count == (placed ? 1 : 0))
        if !placed { #expect(plan.jobState?.message.contains("label \(key)") == true, "\(plan.jobState?.message ?? "")") }
    }

    @Test func samePlanForSameEvaluation() {
        let input = Fixture.input(Fixture.job(count: 5), nodes: [Fixture.node("n-a"), Fixture.node("n-b"), Fixture.node("n-c")])
        #expect(BatchScheduler().schedule(input) == BatchScheduler().schedule(input))
    }

    /// Seeded property test: whatever the history, no partition ever gets a second execution
    /// while one is active or after one completed.
    @Test(arguments: 0..<200)
    func neverDoubleBooksAPartition(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        let count = Int(rng.next() % 5) + 1
        let nodes = (0..<Int(rng.next() % 4)).map { Fixture.node("n-\($0)", cpu: Double(rng.next() % 3) + 0.5) }
        let states: [ExecutionStateType] = [.new, .running, .completed, .failed, .askForBidRejected, .cancelled]
        var executions: [Execution] = []
        for index in 0..<Int(rng.next() % 8) {
            let state = states[Int(rng.next() % UInt64(states.count))]
            executions.append(Fixture.execution(
                "e-\(index)", node: "n-\(rng.next() % 4)", partition: Int(rng.next() % UInt64(count)), state: state,
                desired: state.isTerminal ? .stopped : .running, message: rng.next() % 2 == 0 ? "[retryable] x" : "x"))
        }
        let plan = BatchScheduler().schedule(Fixture.input(Fixture.job(count: count, state: .running), executions, nodes: nodes))
        let lost = Set(plan.updatedExecutions.filter { $0.computeState == .failed }.map(\.executionID))
        for partition in 0..<count {
            let busy = executions.contains {
                $0.partitionIndex == partition && (($0.isActive && !lost.contains($0.id)) || $0.computeState.stateType == .completed)
            }
            let added = plan.newExecutions.filter { $0.partitionIndex == partition }.count
            #expect(added <= 1, "seed \(seed): partition \(partition) placed twice")
            if busy { #expect(added == 0, "seed \(seed): partition \(partition) already active or done") }
        }
    }
}
