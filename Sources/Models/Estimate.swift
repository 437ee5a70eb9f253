/// What one finished execution used, kept to estimate the next run of the same program: the
/// orchestrator's history, by ``ProgramSample/program`` (engine, artifact, entrypoint and
/// arguments, hashed).
public struct ProgramSample: Codable, Sendable, Hashable {
    public var program: String
    public var nodeID: String
    /// Input bytes it read (locally and fetched).
    public var inputBytes: UInt64
    public var usage: Usage

    public init(program: String, nodeID: String, inputBytes: UInt64, usage: Usage) {
        self.program = program
        self.nodeID = nodeID
        self.inputBytes = inputBytes
        self.usage = usage
    }
}

/// A middle and a high guess: half of runs like this come in under `p50`, nine in ten under
/// `p90`. Of seconds and bytes (`Spread`) or of micro-credits (`CostSpread`).
public struct Percentiles<Value: Codable & Sendable & Hashable & AdditiveArithmetic>: Codable, Sendable, Hashable {
    public var p50: Value
    public var p90: Value

    public init(p50: Value, p90: Value) {
        self.p50 = p50
        self.p90 = p90
    }

    public static var zero: Self { Self(p50: .zero, p90: .zero) }

    public static func + (lhs: Self, rhs: Self) -> Self { Self(p50: lhs.p50 + rhs.p50, p90: lhs.p90 + rhs.p90) }

    enum CodingKeys: String, CodingKey { case p50 = "P50", p90 = "P90" }
}

extension Percentiles where Value == Int64 {
    /// Costs add up saturating: a part's worst case may already be Int64.max.
    public static func + (lhs: Self, rhs: Self) -> Self {
        Self(p50: lhs.p50.saturatingAdd(rhs.p50), p90: lhs.p90.saturatingAdd(rhs.p90))
    }
}

public typealias Spread = Percentiles<Double>
public typealias CostSpread = Percentiles<Int64>

/// What a job is expected to use and cost before it runs (`cod job estimate`), per partition
/// and in total, with what the guess rests on.
public struct JobEstimate: Codable, Sendable, Hashable {
    public enum Basis: String, Codable, Sendable {
        /// Earlier runs of the same program.
        case history = "History"
        /// A run of its first partition just now.
        case sample = "Sample"
        /// Nothing ran yet: the request (resources for the whole timeout) is all there is.
        case request = "Request"
    }

    public struct Part: Codable, Sendable, Hashable {
        /// The partition's index, or -1 for the reduce task.
        public var partition: Int
        /// The node it would run on (the first replica's), when one is connected.
        public var nodeID: String?
        /// Input bytes it reads, when known before it runs (a dataset's slice).
        public var inputBytes: UInt64?
        public var basis: Basis
        /// How many earlier runs it rests on, and the node speed factor used (1: none).
        public var samples: Int
        public var speedFactor: Double
        public var cpuSeconds: Spread
        public var bytesMoved: Spread
        /// For all its replicas together.
        public var cost: CostSpread
        /// Every replica and attempt at its timeout, at its node's prices.
        public var worstCase: Int64

        enum CodingKeys: String, CodingKey {
            case partition = "Partition", nodeID = "NodeID", inputBytes = "InputBytes", basis = "Basis", samples = "Samples"
            case speedFactor = "SpeedFactor", cpuSeconds = "CPUSeconds", bytesMoved = "BytesMoved", cost = "Cost", worstCase = "WorstCase"
        }
    }

    public var basis: Basis
    /// In words: which runs, which program.
    public var basisDetail: String
    public var parts: [Part]
    public var cpuSeconds: Spread
    public var bytesMoved: Spread
    public var cost: CostSpread
    public var worstCase: Int64
    /// What submitting it holds: the worst case, at most its Budget.
    public var hold: Int64
    /// The sample job run for this estimate (`--sample`), when there was one.
    public var sampleJobID: String?

    public init(
        basis: Basis, basisDetail: String, parts: [Part], worstCase: Int64, hold: Int64, sampleJobID: String? = nil
    ) {
        self.basis = basis
        self.basisDetail = basisDetail
        self.parts = parts
        cpuSeconds = parts.reduce(Spread.zero) { $0 + $1.cpuSeconds }
        bytesMoved = parts.reduce(Spread.zero) { $0 + $1.bytesMoved }
        cost = parts.reduce(CostSpread.zero) { $0 + $1.cost }
        self.worstCase = worstCase
        self.hold = hold
        self.sampleJobID = sampleJobID
    }

    enum CodingKeys: String, CodingKey {
        case basis = "Basis", basisDetail = "BasisDetail", parts = "Partitions", cpuSeconds = "CPUSeconds", bytesMoved = "BytesMoved"
        case cost = "Cost", worstCase = "WorstCase", hold = "Hold", sampleJobID = "SampleJobID"
    }
}

/// Estimates from samples: each sample scaled to the partition's input size where both are
/// known (cost per input byte), otherwise taken as it is; their median, and as the P90 the
/// higher of their 90th percentile and the one-sided 90% prediction bound for the next run
/// (mean + t·s·√(1 + 1/n), Student's t: a few samples say little about the tail), or for a
/// lone sample 25% above it; and, once a node has at least ``speedSamples`` runs of the
/// program, its own speed relative to all (BOINC's per-host rule). Pure: the orchestrator
/// reads the history.
public enum Estimator {
    /// Runs on one node before its own speed is trusted.
    public static let speedSamples = 10

    /// The value below which `fraction` of `values` lie (nearest rank); 0 for none.
    public static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// Student's t for a one-sided 90% bound, by degrees of freedom (1 to 30; beyond, 1.282).
    static let t90: [Double] = [
        3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356, 1.350, 1.345, 1.341,
        1.337, 1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318, 1.316, 1.315, 1.314, 1.313, 1.311, 1.310,
    ]

    /// The P50 and P90 of the next value after `values`.
    public static func spread(_ values: [Double]) -> Spread {
        let finite = values.filter(\.isFinite)
        guard let first = finite.first else { return .zero }
        guard finite.count > 1 else { return Spread(p50: first, p90: first * 1.25) }
        let n = Double(finite.count)
        let mean = finite.reduce(0, +) / n
        let deviation = (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)).squareRoot()
        let t = finite.count - 1 <= t90.count ? t90[finite.count - 2] : 1.282
        let bound = mean + t * deviation * (1 + 1 / n).squareRoot()
        return Spread(p50: percentile(finite, 0.5), p90: max(percentile(finite, 0.9), bound))
    }

    /// How much slower (above 1) or faster the node ran the program than all nodes did, per
    /// input byte (or per run); 1 until it has `speedSamples` runs.
    public static func speedFactor(of nodeID: String?, samples: [ProgramSample]) -> Double {
        guard let nodeID else { return 1 }
        let own = samples.filter { $0.nodeID == nodeID }
        guard own.count >= speedSamples else { return 1 }
        let rate = { (sample: ProgramSample) in (sample.usage.cpuSeconds ?? sample.usage.wallSeconds) / Double(max(sample.inputBytes, 1)) }
        let all = percentile(samples.map(rate), 0.5)
        guard all > 0 else { return 1 }
        return percentile(own.map(rate), 0.5) / all
    }

    /// The usage one run of a partition of `inputBytes` is expected to have at the P50 and P90.
    public static func usage(for inputBytes: UInt64?, samples: [ProgramSample], speed: Double) -> (p50: Usage, p90: Usage) {
        let scale = { (sample: ProgramSample) -> Double in
            guard let inputBytes, inputBytes > 0, sample.inputBytes > 0 else { return 1 }
            return Double(inputBytes) / Double(sample.inputBytes)
        }
        func spread(_ value: (ProgramSample) -> Double?, timed: Bool) -> (Double, Double) {
            let next = Self.spread(samples.compactMap { sample in value(sample).map { $0 * scale(sample) * (timed ? speed : 1) } })
            return (next.p50, next.p90)
        }
        let cpu = spread({ $0.usage.cpuSeconds }, timed: true)
        let memory = spread({ $0.usage.memoryGiBSeconds }, timed: true)
        let wall = spread({ $0.usage.wallSeconds }, timed: true)
        let gpu = spread({ $0.usage.gpuSeconds }, timed: true)
        let fetched = spread({ Double($0.usage.bytesReadFromPeers + $0.usage.bytesReadFromOutside) }, timed: false)
        let published = spread({ Double($0.usage.bytesPublished) }, timed: false)
        func make(_ pick: ((Double, Double)) -> Double) -> Usage {
            Usage(
                wallSeconds: pick(wall), cpuSeconds: pick(cpu), memoryGiBSeconds: pick(memory), gpuSeconds: pick(gpu),
                bytesReadFromPeers: UInt64(max(pick(fetched).rounded(.up), 0)), bytesPublished: UInt64(max(pick(published).rounded(.up), 0)))
        }
        return (make(\.0), make(\.1))
    }

    /// One partition's estimate from `samples` (none: from the request alone, its worst case).
    public static func part(
        partition: Int, nodeID: String?, inputBytes: UInt64?, samples: [ProgramSample], basis: JobEstimate.Basis, list: PriceList?,
        replicas: Int, worstPerExecution: Int64, executionsPerPartition: Int
    ) -> JobEstimate.Part {
        let worstCase = worstPerExecution.saturatingMultiply(Int64(max(executionsPerPartition, 1)))
        let replicas = Int64(max(replicas, 1))
        guard !samples.isEmpty else {
            // Nothing to go by: the worst a run may cost is all that is known.
            let cost = worstPerExecution.saturatingMultiply(replicas)
            return JobEstimate.Part(
                partition: partition, nodeID: nodeID, inputBytes: inputBytes, basis: .request, samples: 0, speedFactor: 1,
                cpuSeconds: .zero, bytesMoved: .zero, cost: CostSpread(p50: cost, p90: cost), worstCase: worstCase)
        }
        let speed = speedFactor(of: nodeID, samples: samples)
        let (p50, p90) = usage(for: inputBytes, samples: samples, speed: speed)
        let moved = { (usage: Usage) in Double(usage.bytesReadFromPeers + usage.bytesReadFromOutside + usage.bytesPublished) }
        let price = { (usage: Usage) -> Int64 in list.map { $0.cost(of: usage).microCredits(times: replicas) } ?? 0 }
        return JobEstimate.Part(
            partition: partition, nodeID: nodeID, inputBytes: inputBytes, basis: basis, samples: samples.count, speedFactor: speed,
            cpuSeconds: Spread(p50: (p50.cpuSeconds ?? 0) * Double(replicas), p90: (p90.cpuSeconds ?? 0) * Double(replicas)),
            bytesMoved: Spread(p50: moved(p50) * Double(replicas), p90: moved(p90) * Double(replicas)),
            cost: CostSpread(p50: min(price(p50), worstCase), p90: min(price(p90), worstCase)), worstCase: worstCase)
    }
}
