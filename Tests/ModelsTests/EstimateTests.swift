import Models
import Testing

/// The estimator's arithmetic: percentiles by nearest rank, usage scaled per input byte, a
/// node's own speed only from ten runs on, and the worst case when nothing ran.
@Suite("Estimates")
struct EstimateTests {
    static func sample(_ node: String, bytes: UInt64, cpu: Double) -> ProgramSample {
        ProgramSample(program: "p", nodeID: node, inputBytes: bytes, usage: Usage(wallSeconds: cpu, cpuSeconds: cpu))
    }

    /// Alike samples bound the next run at their value; a lone one, 25% above it.
    @Test func theP90BoundsTheNextRun() {
        #expect(Estimator.spread([2, 2, 2]) == Spread(p50: 2, p90: 2))
        #expect(Estimator.spread([4]) == Spread(p50: 4, p90: 5))
        #expect(Estimator.spread([]) == .zero)
        let wide = Estimator.spread([1, 3])
        #expect(wide.p50 == 1 && abs(wide.p90 - (2 + 3.078 * 2.0.squareRoot() * 1.5.squareRoot())) < 1e-9)
    }

    @Test(arguments: [
        ([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5.0), ([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.0),
        ([7.0], 0.9, 7.0), ([], 0.5, 0.0), ([3.0, 1, 2], 0.5, 2.0),
    ])
    func percentilesAreNearestRank(values: [Double], fraction: Double, expected: Double) {
        #expect(Estimator.percentile(values, fraction) == expected)
    }

    /// Runs that read 1 MB in 1 s estimate a 3 MB partition at 3 s; without sizes, as they were.
    @Test func usageScalesWithTheInputSize() {
        let samples = (1...10).map { Self.sample("n-\($0 % 3)", bytes: 1_000_000, cpu: Double($0) / 10 + 0.5) }
        let (p50, p90) = Estimator.usage(for: 3_000_000, samples: samples, speed: 1)
        #expect(abs((p50.cpuSeconds ?? 0) - 3 * 1.0) < 1e-9)
        // The 90th percentile is 4.2 s; ten samples this spread put the next run's bound above it.
        let values = samples.map { 3 * ($0.usage.cpuSeconds ?? 0) }
        let mean = values.reduce(0, +) / 10
        let s = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 9).squareRoot()
        #expect(abs((p90.cpuSeconds ?? 0) - (mean + 1.383 * s * (1.1).squareRoot())) < 1e-9 && (p90.cpuSeconds ?? 0) > 4.2)
        let unsized = Estimator.usage(for: nil, samples: samples, speed: 1)
        #expect(abs((unsized.p50.cpuSeconds ?? 0) - 1.0) < 1e-9)
    }

    /// A node twice as slow as the rest counts as such from its tenth run, not before.
    @Test func aNodesOwnSpeedCountsFromTenRuns() {
        var samples = (0..<20).map { _ in Self.sample("fast", bytes: 100, cpu: 1) }
        samples += (0..<9).map { _ in Self.sample("slow", bytes: 100, cpu: 2) }
        #expect(Estimator.speedFactor(of: "slow", samples: samples) == 1)
        samples.append(Self.sample("slow", bytes: 100, cpu: 2))
        #expect(Estimator.speedFactor(of: "slow", samples: samples) == 2)
        #expect(Estimator.speedFactor(of: nil, samples: samples) == 1)
    }

    /// Priced at the node's list, for every replica, never above the worst case; with no runs
    /// to go by, the worst case it is.
    @Test func aPartitionIsPricedForEveryReplicaWithinItsWorstCase() {
        let list = PriceList(start: Rate(microCredits: 100), perCPUSecond: Rate(microCredits: 1000))
        let samples = (0..<5).map { _ in Self.sample("n", bytes: 0, cpu: 2) }
        let part = Estimator.part(
            partition: 0, nodeID: "n", inputBytes: nil, samples: samples, basis: .history, list: list, replicas: 2,
            worstPerExecution: 100_000, executionsPerPartition: 4)
        #expect(part.cost == CostSpread(p50: 2 * 2100, p90: 2 * 2100) && part.worstCase == 400_000 && part.samples == 5)
        #expect(part.cpuSeconds == Spread(p50: 4, p90: 4))
        let capped = Estimator.part(
            partition: 0, nodeID: "n", inputBytes: nil, samples: samples, basis: .history, list: list, replicas: 2,
            worstPerExecution: 1000, executionsPerPartition: 1)
        #expect(capped.cost.p90 == 1000)
        let blind = Estimator.part(
            partition: 1, nodeID: nil, inputBytes: nil, samples: [], basis: .history, list: list, replicas: 3,
            worstPerExecution: 700, executionsPerPartition: 5)
        #expect(blind.basis == .request && blind.cost == CostSpread(p50: 2100, p90: 2100) && blind.worstCase == 3500)
        let estimate = JobEstimate(basis: .history, basisDetail: "", parts: [part, blind], worstCase: 403_500, hold: 403_500)
        #expect(estimate.cost == CostSpread(p50: 4200 + 2100, p90: 4200 + 2100))
    }

    /// The worst case of a job: every attempt (or replica) to its timeout at the dearest list;
    /// nothing without prices; a Budget caps it; a service on priced nodes needs a Budget.
    @Test func theWorstCaseIsTheDearestNodeForEveryAttempt() {
        var task = JobTask(name: "t", engine: SpecConfig(type: "wasm"))
        task.timeouts.executionTimeout = 100
        var job = Job(count: 3, tasks: [task])
        let cheap = PriceList(perCPUSecond: Rate(microCredits: 1))
        let dear = PriceList(start: Rate(microCredits: 5), perCPUSecond: Rate(microCredits: 10))
        let requested = Resources(cpu: 0.5, memory: 0)
        let nodes: [(list: PriceList?, capacity: Resources)] = [(cheap, Resources(cpu: 2)), (dear, Resources(cpu: 2)), (nil, Resources(cpu: 2))]
        let hold = WorstCase.hold(for: job, partitions: 3, attempts: 4, nodes: nodes, requested: { _ in requested })
        #expect(hold == Int64(3 * 4 * (5 + 500)), "\(String(describing: hold))")
        #expect(WorstCase.hold(for: job, partitions: 3, attempts: 4, nodes: [(nil, Resources())], requested: { _ in requested }) == 0)
        job.budget = Budget(max: 1000)
        #expect(WorstCase.hold(for: job, partitions: 3, attempts: 4, nodes: nodes, requested: { _ in requested }) == 1000)
        job.budget = Budget(maxPerPartition: 100)
        #expect(WorstCase.hold(for: job, partitions: 3, attempts: 4, nodes: nodes, requested: { _ in requested }) == 300)
        var service = Job(type: "service", tasks: [JobTask(name: "t", engine: SpecConfig(type: "wasm"))])
        #expect(WorstCase.hold(for: service, partitions: 1, attempts: 4, nodes: nodes, requested: { _ in requested }) == nil)
        service.budget = Budget(max: 42)
        #expect(WorstCase.hold(for: service, partitions: 1, attempts: 4, nodes: nodes, requested: { _ in requested }) == 42)
        #expect(Budget(max: 0).problems.count == 1 && Budget(max: 5, maxPerPartition: Budget.limit + 1).problems.count == 1)
    }
}
