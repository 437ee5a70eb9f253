public import Models

/// What a compute node's report does to its execution: the state it moves to, why, and what
/// it records. Pure; the store applies it in one transaction, only along legal transitions.
public struct ReportTransition: Sendable, Equatable {
    public var executionID: String
    public var newState: ExecutionStateType
    public var stateMessage: String = ""
    public var failure: ExecutionFailure?
    public var output: RunCommandResult?
    public var inputStats: InputStats?
    /// What the execution used, when the node reported it and it is believable.
    public var usage: Usage?
    /// The node's price script's quote for it, when it has one (the store caps it by the
    /// quote the execution was placed with).
    public var quote: PriceList?
    /// Where the result is, for a completed execution that published one.
    public var published: SpecConfig?
    /// A result bundle the orchestrator stores (size, SHA-256), for the `local` publisher.
    public var storedBundle: (size: Int64, sha256: String)?
    /// The history event's message and details.
    public var event: String
    public var details: [String: String] = [:]

    public static func == (lhs: ReportTransition, rhs: ReportTransition) -> Bool {
        lhs.executionID == rhs.executionID && lhs.newState == rhs.newState && lhs.stateMessage == rhs.stateMessage
            && lhs.failure == rhs.failure && lhs.published == rhs.published && lhs.event == rhs.event && lhs.details == rhs.details
            && lhs.storedBundle?.size == rhs.storedBundle?.size && lhs.storedBundle?.sha256 == rhs.storedBundle?.sha256
    }

    /// The transition a report asks for; nil for messages that are not execution reports.
    public static func of(_ message: NodeMessage) -> ReportTransition? {
        switch message {
        case .bidResult(let bid):
            guard !bid.accepted else {
                return ReportTransition(executionID: bid.executionID, newState: .bidAccepted, stateMessage: bid.reason, event: "Node accepted the execution")
            }
            return ReportTransition(
                executionID: bid.executionID, newState: .askForBidRejected, stateMessage: bid.reason,
                failure: ExecutionFailure(.bidRejected, retryable: true, neverStarted: true), event: "Node rejected the execution: \(bid.reason)")
        case .executionProgress(let progress):
            return ReportTransition(
                executionID: progress.executionID, newState: progress.state,
                event: progress.state == .running ? "Node accepted the execution and started it" : "Publishing results")
        case .runResult(let result):
            var transition = ReportTransition(
                executionID: result.executionID, newState: .completed, output: result.output, inputStats: result.inputStats,
                usage: believable(result.usage), event: "Completed with exit code \(result.output.exitCode)")
            transition.quote = result.quote
            if let cid = result.resultCID {
                transition.published = SpecConfig(type: "ipfs", params: ["CID": .string(cid)])
            } else if result.resultBundleSize >= 0 {
                transition.published = SpecConfig(
                    type: "cod", params: ["ExecutionID": .string(result.executionID), "SHA256": .string(result.resultBundleSHA256),
                        "Size": .int(result.resultBundleSize)])
                transition.storedBundle = (result.resultBundleSize, result.resultBundleSHA256)
            }
            return transition
        case .computeError(let error):
            let failure = nodeClaim(error.typedFailure)
            var transition = ReportTransition(
                executionID: error.executionID, newState: .failed, stateMessage: error.message, failure: failure, output: error.output,
                inputStats: error.inputStats, usage: believable(error.usage), event: error.message,
                details: ["IsError": "true", "Retryable": String(failure.retryable), "Reason": failure.reason.rawValue])
            transition.quote = error.quote
            return transition
        case .hello, .heartbeat, .welcome, .runExecution, .cancelExecution, .reject, .ack, .logChunk:
            return nil
        }
    }
}

extension ReportTransition {
    /// A node's usage report, if it can be recorded: impossible figures (negative, not finite,
    /// a year of wall time) are dropped rather than priced.
    static func believable(_ usage: Usage?) -> Usage? {
        guard let usage, usage.problem == nil else { return nil }
        return usage
    }

    /// A failure as a node may report it. Node failures (lost, rejected, restarted) are the
    /// orchestrator's to conclude, with their larger retry budget: a node that claims one for
    /// its own execution reports an engine error.
    static func nodeClaim(_ failure: ExecutionFailure) -> ExecutionFailure {
        failure.reason.isInfrastructure ? ExecutionFailure(.engineError, retryable: failure.retryable) : failure
    }
}

/// The handshake's decisions about a node that says hello. Pure; the store reads what they
/// need and applies them in one transaction.
public enum HandshakeRules {
    /// Whether the node's process restarted since the store last heard from it (a new message
    /// session), so its message streams start over.
    public static func isNewSession(stored: String, hello session: String) -> Bool {
        stored != session
    }

    /// Whether executions may have been lost: only a restarted process loses them (a new
    /// session, or the old one resumed from the node's disk). Otherwise an execution the node
    /// no longer runs has ended and its report is among the messages it replays.
    public static func mayHaveLostWork(stored: String, hello session: String, resumed: Bool) -> Bool {
        stored != session || resumed
    }

    /// The node's active executions in the store that its new process no longer runs and did
    /// not report ended: they fail with the restart. Work that had not started costs the job
    /// nothing (it goes back to placement).
    public static func lost(
        _ live: [Execution], nodeID: String, running: Set<String>, reported: Set<String>
    ) -> [(execution: Execution, failure: ExecutionFailure, message: String)] {
        live.filter { !running.contains($0.id) && !reported.contains($0.id) && $0.computeState.stateType.canTransition(to: .failed) }
            .map { execution in
                let started = [.running, .publishing].contains(execution.computeState.stateType)
                return (execution, ExecutionFailure(.nodeRestarted, retryable: true, neverStarted: !started),
                    "node \(shortID(nodeID)) restarted and no longer runs this execution")
            }
    }

    /// Why the node must stop an execution it says it runs, or nil when it should go on: the
    /// work was given up (it ran elsewhere) or is unknown here.
    public static func stopReason(running execution: Execution?, nodeID: String) -> String? {
        guard let execution else { return "the orchestrator has no record of this execution" }
        if execution.nodeID == nodeID, execution.isActive { return nil }
        return "given up while node \(shortID(nodeID)) was unreachable; it ran elsewhere"
    }
}
