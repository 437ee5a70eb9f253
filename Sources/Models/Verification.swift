/// How a job's results are checked (`Verification` in the job spec; absent means `Fast`).
///
/// `Verified` runs each partition on `Replicas` distinct nodes at once and accepts a result
/// only when `Quorum` of them agree and more agree on it than on any other; results are compared
/// by the CID of the compared part of their result DAG (``compare``), never byte by byte here.
///
/// ```yaml
/// Verification:
///   Mode: Verified
///   Replicas: 2
///   Quorum: 2
/// ```
public struct Verification: Codable, Sendable, Hashable {
    public enum Mode: String, Codable, Sendable, Hashable, CaseIterable {
        /// One execution per partition (today's behaviour).
        case fast = "Fast"
        /// Redundant executions on distinct nodes and a quorum of equal results.
        case verified = "Verified"
        /// One execution per partition, only on nodes carrying every label in `TrustLabels`
        /// (nodes the submitter trusts, e.g. its own operator's).
        case trusted = "Trusted"
    }

    public var mode: Mode
    /// Replicas started at once for each partition.
    public var replicas: Int
    /// Equal results needed to accept one.
    public var quorum: Int
    /// The most replicas a partition may use in all, counting those that failed.
    public var maxReplicas: Int
    /// How many replicas of a partition may fail (error, time out, lose their node) before the
    /// partition fails.
    public var maxErrors: Int
    /// The parts of a result that are compared: `outputs` (every result path), `exitCode`,
    /// `stdout`, `stderr`, or one result path's name. `stderr` and `stdout` are left out by
    /// default (logs often carry times).
    public var compare: [String]
    /// Label keys whose values replicas' nodes must share (so bitwise comparison is fair).
    public var homogeneous: [String]
    /// What replicas' nodes must differ in: `node` (always), and label keys (e.g. an operator's).
    public var distinct: [String]
    /// BOINC's adaptive replication: a partition runs on one node alone, unchecked, with
    /// probability `1 - 1/n` when that node's last n ≥ 10 results for this engine and artifact
    /// were valid; otherwise it is replicated as usual.
    public var adaptive: Bool
    /// For `Trusted`: labels every node that runs the job must carry, with these values.
    public var trustLabels: [String: String]
    /// For `Fast`: the fraction of partitions (0 to 1) whose accepted result is re-run later on
    /// another node and compared; a disagreement brings a third run, and two that agree
    /// against the first overturn it. The job does not wait for these checks (except a reduce,
    /// which reads only checked results).
    public var spotCheck: Double

    public static let defaultCompare = ["outputs", "exitCode"]
    /// The most replicas a partition may ever use.
    public static let replicaLimit = 16

    public init(
        mode: Mode = .fast, replicas: Int = 2, quorum: Int? = nil, maxReplicas: Int? = nil, maxErrors: Int = 2,
        compare: [String] = Verification.defaultCompare, homogeneous: [String] = [], distinct: [String] = ["node"], adaptive: Bool = false,
        trustLabels: [String: String] = [:], spotCheck: Double = 0
    ) {
        self.spotCheck = spotCheck
        self.adaptive = adaptive
        self.trustLabels = trustLabels
        self.mode = mode
        self.replicas = replicas
        self.quorum = quorum ?? replicas
        // Saturating: a hostile Replicas near Int.max is reported by validation, not trapped on.
        self.maxReplicas = maxReplicas ?? (replicas < Int.max - 2 ? replicas + 2 : Int.max)
        self.maxErrors = maxErrors
        self.compare = compare
        self.homogeneous = homogeneous
        self.distinct = distinct
    }

    public var isVerified: Bool { mode == .verified }

    enum CodingKeys: String, CodingKey {
        case mode = "Mode", replicas = "Replicas", quorum = "Quorum", maxReplicas = "MaxReplicas", maxErrors = "MaxErrors"
        case compare = "Compare", homogeneous = "Homogeneous", distinct = "Distinct", adaptive = "Adaptive"
        case trustLabels = "TrustLabels", spotCheck = "SpotCheck"
    }

    /// Every field may be left out: Replicas 2, Quorum = Replicas, MaxReplicas = Replicas + 2,
    /// MaxErrors 2, Compare outputs and exitCode, Distinct node.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let modeText = try c.decodeIfPresent(String.self, forKey: .mode) ?? "Fast"
        guard let mode = Mode.allCases.first(where: { $0.rawValue.lowercased() == modeText.lowercased() }) else {
            throw DecodingError.dataCorruptedError(
                forKey: .mode, in: c, debugDescription: "unknown mode \"\(modeText.prefix(40))\"; expected Fast, Verified or Trusted")
        }
        let replicas = try c.decodeIfPresent(Int.self, forKey: .replicas) ?? 2
        self.init(
            mode: mode, replicas: replicas, quorum: try c.decodeIfPresent(Int.self, forKey: .quorum),
            maxReplicas: try c.decodeIfPresent(Int.self, forKey: .maxReplicas), maxErrors: try c.decodeIfPresent(Int.self, forKey: .maxErrors) ?? 2,
            compare: try c.decodeIfPresent([String].self, forKey: .compare) ?? Self.defaultCompare,
            homogeneous: try c.decodeIfPresent([String].self, forKey: .homogeneous) ?? [],
            distinct: try c.decodeIfPresent([String].self, forKey: .distinct) ?? ["node"],
            adaptive: try c.decodeIfPresent(Bool.self, forKey: .adaptive) ?? false,
            trustLabels: try c.decodeIfPresent([String: String].self, forKey: .trustLabels) ?? [:],
            spotCheck: try c.decodeIfPresent(Double.self, forKey: .spotCheck) ?? 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(mode, forKey: .mode)
        try c.encode(replicas, forKey: .replicas)
        try c.encode(quorum, forKey: .quorum)
        try c.encode(maxReplicas, forKey: .maxReplicas)
        try c.encode(maxErrors, forKey: .maxErrors)
        try c.encode(compare, forKey: .compare)
        try c.encode(homogeneous, forKey: .homogeneous)
        try c.encode(distinct, forKey: .distinct)
        try c.encode(adaptive, forKey: .adaptive)
        try c.encode(trustLabels, forKey: .trustLabels)
        if spotCheck != 0 { try c.encode(spotCheck, forKey: .spotCheck) }
    }

    /// The settings an audit of one accepted result is decided by: one re-run at first, two
    /// agreeing results to decide, at most two re-runs (three results) and two failed re-runs.
    public static let audit = Verification(mode: .verified, replicas: 2, quorum: 2, maxReplicas: 3, maxErrors: 2)

    /// What is wrong with these settings, with field paths under `path`.
    public func problems(path: String = "Verification") -> [ValidationProblem] {
        var problems: [ValidationProblem] = []
        if spotCheck != 0 {
            if mode != .fast {
                problems.append(.init(path + ".SpotCheck", "applies to Fast jobs only (\(mode.rawValue) already checks its results); leave it out"))
            } else if !(spotCheck > 0 && spotCheck <= 1) {
                problems.append(.init(path + ".SpotCheck", "must be a fraction of the partitions between 0 and 1, e.g. 0.1, got \(spotCheck)"))
            }
        }
        if mode == .trusted {
            if trustLabels.isEmpty {
                problems.append(.init(path + ".TrustLabels", "Trusted needs the labels of the nodes you trust, e.g. {operator: my-team}"))
            }
            if trustLabels.count > 16 { problems.append(.init(path + ".TrustLabels", "at most 16 labels, got \(trustLabels.count)")) }
            for key in trustLabels.keys.sorted() where !Self.isPlainName(key) {
                problems.append(.init(path + ".TrustLabels", "\"\(key.prefix(80))\" is not a label key"))
            }
            return problems
        }
        guard isVerified else { return problems }
        if !(1...Self.replicaLimit).contains(replicas) {
            problems.append(.init(path + ".Replicas", "must be between 1 and \(Self.replicaLimit), got \(replicas)"))
        }
        if quorum < 1 || quorum > replicas {
            problems.append(.init(path + ".Quorum", "must be between 1 and Replicas (\(replicas)), got \(quorum)"))
        }
        if maxReplicas < replicas || maxReplicas > Self.replicaLimit {
            problems.append(.init(path + ".MaxReplicas", "must be between Replicas (\(replicas)) and \(Self.replicaLimit), got \(maxReplicas)"))
        }
        if maxErrors < 0 || maxErrors > Self.replicaLimit {
            problems.append(.init(path + ".MaxErrors", "must be between 0 and \(Self.replicaLimit), got \(maxErrors)"))
        }
        if compare.isEmpty || compare.count > 64 {
            problems.append(.init(path + ".Compare", "name 1 to 64 parts of the result (outputs, exitCode, stdout, stderr or a result path's name)"))
        }
        for (index, part) in compare.enumerated() where !Self.isPlainName(part) {
            problems.append(.init(path + ".Compare[\(index)]", "\"\(part.prefix(80))\" is not a result part's name"))
        }
        for (field, keys) in [("Homogeneous", homogeneous), ("Distinct", distinct)] {
            if keys.count > 16 { problems.append(.init(path + "." + field, "at most 16 label keys, got \(keys.count)")) }
            for (index, key) in keys.enumerated() where !Self.isPlainName(key) {
                problems.append(.init(path + ".\(field)[\(index)]", "\"\(key.prefix(80))\" is not a label key"))
            }
        }
        return problems
    }

    static func isPlainName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128 && text != "." && text != ".."
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./".contains($0)) } && !text.hasPrefix("/")
            && !text.split(separator: "/").contains("..")
    }
}

/// What the verification concluded of one execution's result.
public enum Verdict: String, Codable, Sendable, Hashable {
    /// Its result agreed with the accepted one.
    case valid = "Valid"
    /// Its result differed from the accepted one.
    case invalid = "Invalid"
    /// It ran alone (Adaptive, on a node with a long run of valid results) and was accepted
    /// without a comparison.
    case unchecked = "Unchecked"
}
