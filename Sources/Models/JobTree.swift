/// Jobs that start jobs: what a parent's spec allows its children (`Children`), and where a
/// child sits in its tree. A running parent submits children through its node (the spawn
/// folder) or the API, with a token scoped to its execution; the orchestrator links each child
/// to its parent and holds it to these limits.
public struct ChildLimits: Codable, Sendable, Hashable {
    /// How many levels of jobs may sit below this one (1: children, no grandchildren). A
    /// child's own limits never reach deeper than its parent's allow.
    public var maxDepth: Int
    /// How many children this job may start in all.
    public var maxJobs: Int
    /// How many of its children may be unfinished at once.
    public var maxConcurrent: Int
    /// The most its children's holds may add up to, in micro-credits (nil: no cap beyond the
    /// owner's balance).
    public var budget: Int64?
    /// Whether stopping this job, or its failing, stops its unfinished children (default true).
    public var cancelWithParent: Bool

    public init(maxDepth: Int = 1, maxJobs: Int = 10, maxConcurrent: Int? = nil, budget: Int64? = nil, cancelWithParent: Bool = true) {
        self.maxDepth = maxDepth
        self.maxJobs = maxJobs
        self.maxConcurrent = maxConcurrent ?? maxJobs
        self.budget = budget
        self.cancelWithParent = cancelWithParent
    }

    enum CodingKeys: String, CodingKey {
        case maxDepth = "MaxDepth", maxJobs = "MaxJobs", maxConcurrent = "MaxConcurrent", budget = "Budget"
        case cancelWithParent = "CancelWithParent"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxDepth = try c.decodeIfPresent(Int.self, forKey: .maxDepth) ?? 1
        maxJobs = try c.decodeIfPresent(Int.self, forKey: .maxJobs) ?? 10
        maxConcurrent = try c.decodeIfPresent(Int.self, forKey: .maxConcurrent) ?? maxJobs
        budget = try c.decodeIfPresent(Int64.self, forKey: .budget)
        cancelWithParent = try c.decodeIfPresent(Bool.self, forKey: .cancelWithParent) ?? true
    }

    /// The deepest tree any job may head.
    public static let deepest = 10
    /// The most children one job may start.
    public static let mostJobs = 10_000

    public var problems: [(field: String, message: String)] {
        var problems: [(String, String)] = []
        if !(0...Self.deepest).contains(maxDepth) { problems.append(("Children.MaxDepth", "must be from 0 to \(Self.deepest), got \(maxDepth)")) }
        if !(1...Self.mostJobs).contains(maxJobs) { problems.append(("Children.MaxJobs", "must be from 1 to \(Self.mostJobs), got \(maxJobs)")) }
        if !(1...max(maxJobs, 1)).contains(maxConcurrent) {
            problems.append(("Children.MaxConcurrent", "must be from 1 to MaxJobs (\(maxJobs)), got \(maxConcurrent)"))
        }
        if let budget, budget < 0 || budget > Budget.limit {
            problems.append(("Children.Budget", "must be a number of micro-credits from 0 to \(Budget.limit), got \(budget)"))
        }
        return problems
    }

    /// These limits as a child of a parent allowing `parent` may have them: no deeper than
    /// the levels left below the parent, and a budget no larger than the parent's.
    public func within(_ parent: ChildLimits) -> ChildLimits {
        var limits = self
        limits.maxDepth = min(maxDepth, max(parent.maxDepth - 1, 0))
        if let cap = parent.budget { limits.budget = min(budget ?? cap, cap) }
        return limits
    }
}
