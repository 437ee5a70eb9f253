/// How a node's verified results have fared for one engine and artifact (a WASM module, an
/// image, a program): BOINC's per-host counters. Only replicas of verified jobs count.
public struct NodeReputation: Codable, Sendable, Hashable {
    public var nodeID: String
    public var engine: String
    /// What ran: the WASM module's CID or digest, the image, the program.
    public var artifact: String
    /// Valid results in a row since the last invalid one.
    public var consecutiveValid: Int
    public var valid: Int
    public var invalid: Int
    /// Replicas that ended without a result (errors, lost nodes), timeouts excepted.
    public var errors: Int
    public var timeouts: Int

    public init(
        nodeID: String, engine: String, artifact: String, consecutiveValid: Int = 0, valid: Int = 0, invalid: Int = 0, errors: Int = 0,
        timeouts: Int = 0
    ) {
        self.nodeID = nodeID
        self.engine = engine
        self.artifact = artifact
        self.consecutiveValid = consecutiveValid
        self.valid = valid
        self.invalid = invalid
        self.errors = errors
        self.timeouts = timeouts
    }

    /// What happened to one replica.
    public enum Event: String, Sendable, Hashable {
        case valid, invalid, error, timeout
    }

    /// The counters after `event`. An invalid result resets the run of valid ones.
    public func recording(_ event: Event) -> NodeReputation {
        var next = self
        switch event {
        case .valid:
            next.valid += 1
            next.consecutiveValid += 1
        case .invalid:
            next.invalid += 1
            next.consecutiveValid = 0
        case .error: next.errors += 1
        case .timeout: next.timeouts += 1
        }
        return next
    }

    /// From this many valid results in a row a node may run a partition of an Adaptive job alone.
    public static let trustedAfter = 10

    /// The chance a partition of an Adaptive job runs on this node alone: BOINC's adaptive
    /// replication, `1 - 1/consecutive` once `trustedAfter` valid results came in a row.
    public var aloneProbability: Double {
        consecutiveValid >= Self.trustedAfter ? 1 - 1 / Double(consecutiveValid) : 0
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "NodeID", engine = "Engine", artifact = "Artifact", consecutiveValid = "ConsecutiveValid", valid = "Valid"
        case invalid = "Invalid", errors = "Errors", timeouts = "Timeouts"
    }
}
