public import Models

/// One replica of a partition of a verified job, as the quorum rule sees it.
public struct Replica: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// Running, or about to.
        case running
        /// Finished, with the comparison key of its result (the CID of the compared part).
        case result(key: String)
        /// Ended without a result to compare: an error, a timeout, a lost node, a result the
        /// orchestrator cannot read.
        case failed
    }

    public var executionID: String
    public var outcome: Outcome
    /// What an earlier evaluation concluded of it.
    public var verdict: Verdict?

    public init(_ executionID: String, _ outcome: Outcome, verdict: Verdict? = nil) {
        self.executionID = executionID
        self.outcome = outcome
        self.verdict = verdict
    }

    var key: String? {
        if case .result(let key) = outcome { return key }
        return nil
    }
}

/// Replicas whose results have one comparison key.
public struct ResultGroup: Sendable, Hashable {
    public var key: String
    public var executionIDs: [String]
}

/// What to do with one partition of a verified job.
public enum QuorumDecision: Sendable, Hashable {
    /// The running replicas can still decide it.
    case wait
    /// Start this many more replicas (on nodes that keep the replicas distinct).
    case addReplicas(Int)
    /// A result is accepted: its replicas are valid, every other result is invalid, and the
    /// replicas still running are no longer needed.
    case accepted(key: String, valid: [String], invalid: [String], cancel: [String])
    /// No result can win within `MaxReplicas`: the partition fails, with the groups.
    case noConsensus([ResultGroup])
    /// More replicas failed than `MaxErrors` allows.
    case tooManyErrors(Int)
}

/// The quorum rule for one partition, after BOINC's validator and transitioner: results are
/// grouped by comparison key; a group of at least `Quorum` that is strictly larger than every
/// other group is accepted. Otherwise replicas are added (to `Replicas` at first, then one at a
/// time, as many as could still break the tie) up to `MaxReplicas`, then the partition fails
/// with `NoConsensus`. An acceptance stands: a result that arrives later is compared with the
/// accepted one, never regrouped against it.
public enum QuorumRule {
    public static func decide(_ replicas: [Replica], settings: Verification) -> QuorumDecision {
        let running = replicas.filter { $0.outcome == .running }.map(\.executionID)
        let results = replicas.filter { $0.key != nil }
        // An earlier acceptance: the key its valid replicas share.
        if let accepted = replicas.first(where: { $0.verdict == .valid })?.key {
            return .accepted(
                key: accepted, valid: results.filter { $0.key == accepted }.map(\.executionID),
                invalid: results.filter { $0.key != accepted }.map(\.executionID), cancel: running)
        }
        let groups = groups(of: results)
        let largest = groups.first?.executionIDs.count ?? 0
        let second = groups.count > 1 ? groups[1].executionIDs.count : 0
        if largest >= settings.quorum, largest > second, let winner = groups.first {
            return .accepted(
                key: winner.key, valid: winner.executionIDs, invalid: results.filter { $0.key != winner.key }.map(\.executionID),
                cancel: running)
        }
        let errors = replicas.filter { $0.outcome == .failed }.count
        if errors > settings.maxErrors { return .tooManyErrors(errors) }
        // The fewest more agreeing results that could make a winner, and at first the
        // replicas asked for.
        let needed = max(settings.quorum - largest, second - largest + 1, 1)
        let wanted = max(needed, settings.replicas - results.count)
        let room = max(settings.maxReplicas - replicas.count, 0)
        let add = min(max(wanted - running.count, 0), room)
        if add > 0 { return .addReplicas(add) }
        return running.isEmpty ? .noConsensus(groups) : .wait
    }

    /// Results grouped by key, the largest group first (ties: the group whose first result
    /// came first).
    public static func groups(of results: [Replica]) -> [ResultGroup] {
        var order: [String] = []
        var members: [String: [String]] = [:]
        for result in results {
            guard let key = result.key else { continue }
            if members[key] == nil { order.append(key) }
            members[key, default: []].append(result.executionID)
        }
        return order.enumerated()
            .sorted { members[$0.element]!.count != members[$1.element]!.count ? members[$0.element]!.count > members[$1.element]!.count : $0.offset < $1.offset }
            .map { ResultGroup(key: $0.element, executionIDs: members[$0.element]!) }
    }
}
