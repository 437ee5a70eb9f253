/// Why an execution failed, as a fact the scheduler and the CLI read instead of parsing the
/// message. Stored on the execution as `Failure` (an extra field Bacalhau clients ignore).
public struct ExecutionFailure: Codable, Sendable, Hashable {
    public enum Reason: String, Codable, Sendable, Hashable, CaseIterable {
        /// The node stopped answering (its heartbeats stopped or it disconnected).
        case nodeLost = "NodeLost"
        /// An administrator rejected the node.
        case nodeRejected = "NodeRejected"
        /// The node's process restarted and no longer runs the execution.
        case nodeRestarted = "NodeRestarted"
        /// An input could not be fetched (its provider was unreachable, or content is missing).
        case inputUnavailable = "InputUnavailable"
        /// The input is not on the node and its Locality is local.
        case inputNotLocal = "InputNotLocal"
        /// The program trapped (WASM) or crashed.
        case trap = "Trap"
        /// The execution ran past its timeout.
        case timeout = "Timeout"
        /// The program ran out of the memory it was given.
        case outOfMemory = "OutOfMemory"
        /// The engine could not run the program (or exited with an error).
        case engineError = "EngineError"
        /// The execution was cancelled.
        case cancelled = "Cancelled"
        /// The node declined the execution.
        case bidRejected = "BidRejected"

        /// Failures of the machine, not of the program: they have their own retry budget.
        public var isInfrastructure: Bool {
            self == .nodeLost || self == .nodeRejected || self == .nodeRestarted
        }
    }

    public var reason: Reason
    /// Whether running it again (elsewhere) might succeed.
    public var retryable: Bool
    /// The execution was only queued on its node and never started: a node crash then costs
    /// the job no attempt.
    public var neverStarted: Bool

    public init(_ reason: Reason, retryable: Bool, neverStarted: Bool = false) {
        self.reason = reason
        self.retryable = retryable
        self.neverStarted = neverStarted
    }

    enum CodingKeys: String, CodingKey {
        case reason = "Reason", retryable = "Retryable", neverStarted = "NeverStarted"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        // A reason this version does not know (a newer node's) reads as an engine error.
        let text = try c.decodeIfPresent(String.self, forKey: .reason) ?? ""
        reason = Reason(rawValue: text) ?? .engineError
        retryable = try c.decodeIfPresent(Bool.self, forKey: .retryable) ?? false
        neverStarted = try c.decodeIfPresent(Bool.self, forKey: .neverStarted) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(reason, forKey: .reason)
        try c.encode(retryable, forKey: .retryable)
        if neverStarted { try c.encode(true, forKey: .neverStarted) }
    }

    /// Records written before failures were typed marked them in the state message: a
    /// `[retryable] ` prefix, and the scheduler's own `node … was lost` / `was rejected by an
    /// administrator` notes. Returns the failure they meant and the message without the marker.
    public static func legacy(message: String) -> (failure: ExecutionFailure?, message: String) {
        let marker = "[retryable] "
        if message.hasPrefix(marker) {
            let clean = String(message.dropFirst(marker.count))
            let reason: Reason = clean.contains("restarted and no longer runs") ? .nodeRestarted : .engineError
            return (ExecutionFailure(reason, retryable: true), clean)
        }
        if message.hasPrefix("node ") {
            if message.hasSuffix(" was lost") { return (ExecutionFailure(.nodeLost, retryable: true), message) }
            if message.hasSuffix(" was rejected by an administrator") {
                return (ExecutionFailure(.nodeRejected, retryable: true), message)
            }
        }
        return (nil, message)
    }
}
