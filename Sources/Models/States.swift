/// The lifecycle state of a job. Serialised as Bacalhau's strings.
///
/// - `pending`: can transition to queued, running, completed, failed, stopped.
/// - `queued`: can transition to running, failed, stopped.
/// - `running`: can transition to completed, failed, stopped, queued (all its executions lost).
/// - `completed`, `failed`, `stopped`: terminal.
public enum JobStateType: String, Codable, Sendable, Hashable, CaseIterable {
    case undefined = "Undefined"
    case pending = "Pending"
    case queued = "Queued"
    case running = "Running"
    case completed = "Completed"
    case failed = "Failed"
    case stopped = "Stopped"

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = JobStateType.allCases.first { $0.rawValue.lowercased() == raw.lowercased() } ?? .undefined
    }

    /// Terminal states never change again.
    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .stopped: return true
        case .undefined, .pending, .queued, .running: return false
        }
    }

    /// Whether the state machine allows moving from `self` to `next`.
    public func canTransition(to next: JobStateType) -> Bool {
        if self == next { return true }
        switch self {
        case .undefined: return true
        case .pending: return next != .undefined
        case .queued: return [.running, .failed, .stopped, .completed].contains(next)
        case .running: return [.completed, .failed, .stopped, .queued].contains(next)
        case .completed, .failed, .stopped: return false
        }
    }
}

/// An execution's state as observed on the compute node. Serialised as integers, as Bacalhau does.
///
/// - `new` -> askForBid -> askForBidAccepted | askForBidRejected
/// - askForBidAccepted -> bidAccepted (orchestrator approved) | bidRejected
/// - bidAccepted -> running -> publishing -> completed | failed
/// - any non-terminal -> cancelled | failed
public enum ExecutionStateType: Int, Codable, Sendable, Hashable, CaseIterable {
    case undefined = 0
    case new = 1
    case askForBid = 2
    case askForBidAccepted = 3
    case askForBidRejected = 4
    case bidAccepted = 5
    case running = 6
    case publishing = 7
    case bidRejected = 8
    case completed = 9
    case failed = 10
    case cancelled = 11

    public var isTerminal: Bool {
        switch self {
        case .bidRejected, .completed, .failed, .cancelled, .askForBidRejected: return true
        case .undefined, .new, .askForBid, .askForBidAccepted, .bidAccepted, .running, .publishing: return false
        }
    }

    /// Executing means resources are held on the node.
    public var isExecuting: Bool {
        switch self {
        case .bidAccepted, .running, .publishing: return true
        case .undefined, .new, .askForBid, .askForBidAccepted, .askForBidRejected, .bidRejected, .completed, .failed,
            .cancelled:
            return false
        }
    }

    /// A readable name for tables: `Completed`, `AskForBidAccepted`.
    public var name: String {
        switch self {
        case .undefined: return "Undefined"
        case .new: return "New"
        case .askForBid: return "AskForBid"
        case .askForBidAccepted: return "AskForBidAccepted"
        case .askForBidRejected: return "AskForBidRejected"
        case .bidAccepted: return "BidAccepted"
        case .running: return "Running"
        case .publishing: return "Publishing"
        case .bidRejected: return "BidRejected"
        case .completed: return "Completed"
        case .failed: return "Failed"
        case .cancelled: return "Cancelled"
        }
    }

    /// Whether the compute side may move an execution from `self` to `next`. Late or duplicated
    /// reports (an older state after a newer one) are refused, which makes handlers idempotent.
    public func canTransition(to next: ExecutionStateType) -> Bool {
        if isTerminal { return false }
        if next == .failed || next == .cancelled { return true }
        return next.progressRank > progressRank
    }

    private var progressRank: Int {
        switch self {
        case .undefined: return 0
        case .new: return 1
        case .askForBid: return 2
        case .askForBidAccepted, .askForBidRejected: return 3
        case .bidAccepted, .bidRejected: return 4
        case .running: return 5
        case .publishing: return 6
        case .completed, .failed, .cancelled: return 7
        }
    }
}

/// What the scheduler wants an execution to do. Serialised as integers.
///
/// - `pending`: waiting for the node's bid to be approved. Can transition to running, stopped.
/// - `running`: approved. Can transition to stopped.
/// - `stopped`: terminal.
public enum ExecutionDesiredStateType: Int, Codable, Sendable, Hashable, CaseIterable {
    case pending = 0
    case running = 1
    case stopped = 2

    public var name: String {
        switch self {
        case .pending: return "Pending"
        case .running: return "Running"
        case .stopped: return "Stopped"
        }
    }
}

/// A state with a message: `{"StateType": 9, "Message": "..."}`.
public struct State<StateType: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    public var stateType: StateType
    public var message: String

    public init(_ stateType: StateType, message: String = "") {
        self.stateType = stateType
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case stateType = "StateType", message = "Message"
    }
}
