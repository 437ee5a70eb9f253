import Models

/// Where the reconciler puts each execution of a job before deciding anything.
enum AttemptBucket: String, Sendable, CaseIterable {
    /// An earlier version's execution that still runs: a rerun replaces it.
    case superseded
    /// Active on a node that is gone or rejected: it failed with its node.
    case lost
    /// Running, or about to: nothing to do.
    case active
    /// Finished its work.
    case completed
    /// Ended for a reason that would happen again anywhere.
    case failedForGood
    /// Ended in a way another attempt may fix.
    case retryable
}

/// What the rules see besides the execution itself.
struct AttemptContext: Sendable {
    var job: Job
    var nodes: [String: NodeCandidate]

    init(job: Job, nodes: [NodeCandidate]) {
        self.job = job
        self.nodes = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Why the execution's node can no longer run it, if it cannot.
    func nodeLoss(of execution: Execution) -> ExecutionFailure.Reason? {
        guard let node = nodes[execution.nodeID] else { return .nodeLost }
        if node.state.membership == .rejected { return .nodeRejected }
        return node.state.connection == .disconnected ? .nodeLost : nil
    }
}

/// One row of the table: the bucket, why, and when it applies.
struct AttemptRule: Sendable {
    var bucket: AttemptBucket
    var why: String
    var applies: @Sendable (Execution, AttemptContext) -> Bool
}

/// The ordered rule table: the first row that applies classifies the execution.
enum AttemptRules {
    static let table: [AttemptRule] = [
        AttemptRule(bucket: .superseded, why: "an earlier version's execution still runs; the rerun replaces it") { execution, context in
            execution.isActive && execution.jobVersion < context.job.version
        },
        AttemptRule(bucket: .lost, why: "its node is gone or was rejected while it ran; it failed with the node") { execution, context in
            execution.isActive && context.nodeLoss(of: execution) != nil
        },
        AttemptRule(bucket: .active, why: "it runs, or its node is about to start it") { execution, _ in
            execution.isActive
        },
        AttemptRule(bucket: .completed, why: "it finished its work") { execution, _ in
            execution.computeState.stateType == .completed
        },
        AttemptRule(bucket: .failedForGood, why: "the program's own failure would happen again on any node") { execution, _ in
            execution.computeState.stateType == .failed && execution.failure?.retryable != true
        },
        AttemptRule(bucket: .retryable, why: "it ended (a node failure, a rejected bid, a retryable error) in a way another attempt may fix") { _, _ in
            true
        },
    ]

    /// The bucket of one execution and the rule's reason.
    static func classify(_ execution: Execution, _ context: AttemptContext) -> (bucket: AttemptBucket, why: String) {
        let rule = table.first { $0.applies(execution, context) }!
        return (rule.bucket, rule.why)
    }
}

/// A job's executions sorted into buckets, with the failures the scheduler concludes itself.
struct Buckets {
    private(set) var byExecution: [String: AttemptBucket] = [:]
    /// Executions of the current version (older versions only matter while superseded).
    private(set) var current: [Execution] = []
    /// Typed failures for executions whose node went away, by execution ID.
    private(set) var losses: [String: ExecutionFailure] = [:]

    init(_ input: SchedulingInput) {
        let context = AttemptContext(job: input.job, nodes: input.nodes)
        for execution in input.executions {
            let (bucket, _) = AttemptRules.classify(execution, context)
            byExecution[execution.id] = bucket
            if bucket == .lost, let reason = context.nodeLoss(of: execution) {
                // Only running work costs an attempt when its node goes; queued work goes back.
                let started = [.running, .publishing].contains(execution.computeState.stateType)
                losses[execution.id] = ExecutionFailure(reason, retryable: true, neverStarted: !started)
            }
            if execution.jobVersion == input.job.version { current.append(execution) }
        }
    }

    func bucket(_ execution: Execution) -> AttemptBucket { byExecution[execution.id] ?? .retryable }

    func executions(in bucket: AttemptBucket, of list: [Execution]? = nil) -> [Execution] {
        (list ?? current).filter { self.bucket($0) == bucket }
    }

    /// Active and not lost: what still holds (or will hold) a node.
    func isLive(_ execution: Execution) -> Bool { bucket(execution) == .active }

    /// Ended (including lost): the attempts a retry decision counts.
    func isEnded(_ execution: Execution) -> Bool {
        let bucket = bucket(execution)
        return bucket == .lost || bucket == .failedForGood || bucket == .retryable
    }

    /// The failure an ended execution stands for: the one the scheduler concludes for a lost
    /// node, else the one recorded.
    func failure(of execution: Execution) -> ExecutionFailure? {
        losses[execution.id] ?? execution.failure
    }
}
