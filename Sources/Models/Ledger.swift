/// The most a job may cost (`Budget` in the job spec), in micro-credits. Absent: the hold is
/// the job's worst case on the nodes it may use.
public struct Budget: Codable, Sendable, Hashable {
    /// The most the whole job is charged.
    public var max: Int64?
    /// The most one partition is charged (its replicas, retries and audits together).
    public var maxPerPartition: Int64?

    public init(max: Int64? = nil, maxPerPartition: Int64? = nil) {
        self.max = max
        self.maxPerPartition = maxPerPartition
    }

    enum CodingKeys: String, CodingKey { case max = "Max", maxPerPartition = "MaxPerPartition" }

    /// The largest amount a budget may name: a million credits.
    public static let limit: Int64 = 1_000_000_000_000

    /// What is wrong with the budget, per field, or nothing.
    public var problems: [(field: String, message: String)] {
        var problems: [(String, String)] = []
        for (field, value) in [("Budget.Max", max), ("Budget.MaxPerPartition", maxPerPartition)] {
            guard let value else { continue }
            if value <= 0 || value > Self.limit {
                problems.append((field, "must be a number of micro-credits from 1 to \(Self.limit) (a million credits), got \(value)"))
            }
        }
        return problems
    }
}

/// A ledger account: who holds credits. Users spend, each job's hold is its own account while
/// it runs, nodes earn, and `external` is the world outside Cod that deposits come from and
/// payouts go to (the one account that may be negative: what the world is owed).
public enum AccountID: Sendable, Hashable, CustomStringConvertible {
    case user(String)
    case node(String)
    case hold(job: String)
    case external

    public init?(_ text: String) {
        if text == "external" {
            self = .external
            return
        }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[1].isEmpty, parts[1].count <= 200,
            parts[1].unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0.value < 127 })
        else { return nil }
        switch parts[0] {
        case "user": self = .user(parts[1])
        case "node": self = .node(parts[1])
        case "hold": self = .hold(job: parts[1])
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .user(let name): "user:\(name)"
        case .node(let id): "node:\(id)"
        case .hold(let job): "hold:\(job)"
        case .external: "external"
        }
    }

    /// The account a job's owner pays from (jobs submitted inside the process pay as admin).
    public static func owner(of job: Job) -> AccountID { .user(job.owner.isEmpty ? "admin" : job.owner) }
}

/// One account's balance, in micro-credits.
public struct Account: Codable, Sendable, Hashable {
    public var id: String
    public var balance: Int64
    /// Of a user's: what its running jobs hold besides the balance.
    public var held: Int64

    public init(id: String, balance: Int64, held: Int64 = 0) {
        self.id = id
        self.balance = balance
        self.held = held
    }

    enum CodingKeys: String, CodingKey { case id = "ID", balance = "Balance", held = "Held" }
}

/// One movement of credits from one account to another: the ledger is these, appended, never
/// changed. Every amount is a positive integer of micro-credits.
public struct LedgerEntry: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// From outside into a user's account (an admin's act).
        case deposit = "Deposit"
        /// From a user into a job's hold, when the job is submitted.
        case hold = "Hold"
        /// From a job's hold to the node that ran an execution, for its metered usage.
        case charge = "Charge"
        /// From a node's earnings out of Cod, to its operator.
        case payout = "Payout"
        /// What a job's hold did not spend, back to its user when the job ends.
        case release = "Release"
        /// A charge given back: the execution's result was found wrong after it was paid.
        case refund = "Refund"
    }

    /// Order in the ledger, from 1.
    public var seq: Int64
    public var kind: Kind
    public var from: String
    public var to: String
    public var amount: Int64
    public var jobID: String?
    public var executionID: String?
    /// The execution's signed receipt (a CID), where it has one.
    public var receipt: String?
    /// Of a long-running job's charges: which interval of holding resources (1, 2, ...; -1
    /// for the last part interval); 0 otherwise.
    public var period: Int64
    public var memo: String
    /// Unix nanoseconds.
    public var time: Int64

    public init(
        seq: Int64 = 0, kind: Kind, from: AccountID, to: AccountID, amount: Int64, jobID: String? = nil, executionID: String? = nil,
        receipt: String? = nil, period: Int64 = 0, memo: String = "", time: Int64
    ) {
        self.period = period
        self.seq = seq
        self.kind = kind
        self.from = from.description
        self.to = to.description
        self.amount = amount
        self.jobID = jobID
        self.executionID = executionID
        self.receipt = receipt
        self.memo = memo
        self.time = time
    }

    enum CodingKeys: String, CodingKey {
        case seq = "Seq", kind = "Kind", from = "From", to = "To", amount = "Amount", jobID = "JobID", executionID = "ExecutionID"
        case receipt = "Receipt", period = "Period", memo = "Memo", time = "Time"
    }
}

/// What a long-running execution owes for holding its allocated resources for a time: its
/// quote's price of that much CPU, memory and GPU time (and its start price), exact and
/// rounded up once, so charges by period can be differences of it.
public enum TimeCharge {
    public static func cumulative(_ quote: PriceList, _ allocated: Resources, nanos: Int64) -> Int64 {
        guard nanos > 0 else { return 0 }
        let seconds = Double(nanos) / 1e9
        return quote.cost(of: Usage(
            wallSeconds: seconds, cpuSeconds: allocated.cpu * seconds, memoryGiBSeconds: Double(allocated.memory) / Double(1 << 30) * seconds,
            gpuSeconds: Double(allocated.gpu) * seconds)).microCredits
    }
}

/// What a job may cost at most before it runs: every execution it may start running to its
/// timeout at the dearest price list among the nodes, with all the resources it may use.
public enum WorstCase {
    /// The most one execution of `job`, with the resources it was given (`requested`), costs on
    /// a node with `list` and `capacity` (which bounds the CPU and memory of a job that has no
    /// limit); nil when it has no timeout (a service or daemon runs until stopped, so only a
    /// Budget bounds it). Bytes fetched are not in it: what a charge may be is capped by this.
    public static func execution(of job: Job, requested: Resources, list: PriceList?, capacity: Resources) -> Int64? {
        guard let list else { return 0 }
        guard let timeout = job.task.timeouts.executionDeadline(jobType: job.jobType) else { return nil }
        let seconds = Double(timeout)
        let cpu = requested.cpu > 0 ? requested.cpu : max(capacity.cpu, 1)
        let memory = requested.memory > 0 ? requested.memory : capacity.memory
        let usage = Usage(
            wallSeconds: seconds, cpuSeconds: cpu * seconds, memoryGiBSeconds: Double(memory) / Double(1 << 30) * seconds,
            gpuSeconds: Double(requested.gpu) * seconds)
        return list.cost(of: usage).microCredits
    }

    /// How many executions of one partition may run: a verified job's replica cap, otherwise
    /// `attempts` (the scheduler's limit on attempts per partition).
    public static func executionsPerPartition(of job: Job, attempts: Int) -> Int {
        guard let verification = job.verification, verification.isVerified else { return max(attempts, 1) }
        return max(verification.maxReplicas, 1)
    }

    /// The hold for `job`: the worst case of its `partitions` and of its reduce task (run
    /// once) over `nodes` (price list, capacity), each partition at most Budget.MaxPerPartition
    /// and the whole at most Budget.Max. `requested` gives a task's allocated resources (the
    /// scheduler's defaults fill what it leaves out). Zero when no node asks a price. Nil when
    /// the job can run without an end on a priced node and has no Budget.Max: nothing bounds
    /// what it may cost.
    public static func hold(
        for job: Job, partitions: Int, attempts: Int, nodes: [(list: PriceList?, capacity: Resources)], requested: (Job) -> Resources
    ) -> Int64? {
        var reduceWorst: Int64? = 0
        if let reduce = job.reduceTask {
            var reduceJob = job
            reduceJob.tasks = [reduce]
            reduceJob.verification = nil
            reduceWorst = taskWorstCase(reduceJob, requested: requested(reduceJob), partitions: 1, attempts: attempts, nodes: nodes)
        }
        guard let map = taskWorstCase(job, requested: requested(job), partitions: partitions, attempts: attempts, nodes: nodes),
            let reduceWorst
        else { return job.budget?.max }
        return min(map.saturatingAdd(reduceWorst), job.budget?.max ?? .max)
    }

    /// The worst case of `job`'s first task run in `partitions` partitions, each at most
    /// Budget.MaxPerPartition; nil when it has no end on a priced node.
    static func taskWorstCase(
        _ job: Job, requested: Resources, partitions: Int, attempts: Int, nodes: [(list: PriceList?, capacity: Resources)]
    ) -> Int64? {
        var dearest: Int64 = 0
        for node in nodes {
            guard let one = execution(of: job, requested: requested, list: node.list, capacity: node.capacity) else { return nil }
            dearest = max(dearest, one)
        }
        guard dearest > 0 else { return 0 }
        var worst = dearest.saturatingMultiply(Int64(executionsPerPartition(of: job, attempts: attempts)))
        if let cap = job.budget?.maxPerPartition { worst = min(worst, cap) }
        return worst.saturatingMultiply(Int64(max(partitions, 1)))
    }
}

extension Int64 {
    /// Credits add up saturating: a worst case too large to hold is `Int64.max`, never a wrap
    /// or a trap.
    public func saturatingAdd(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other < 0 ? .min : .max) : sum
    }

    public func saturatingMultiply(_ other: Int64) -> Int64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? ((self < 0) != (other < 0) ? .min : .max) : product
    }
}
