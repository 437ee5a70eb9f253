import Models

/// A verified batch job's partitions: each one's replicas go through the ``QuorumRule``; this
/// records its verdicts, stops the replicas no longer needed, and says which partitions need
/// more replicas, are done, or failed.
struct VerifiedPartitions {
    let verification: Verification

    func census(_ plan: inout PlanBuilder, maps: [Execution]) -> PartitionPolicy.Census {
        var census = PartitionPolicy.Census()
        let byPartition = Dictionary(grouping: maps, by: \.partitionIndex)
        for partition in 0..<plan.job.partitionCount {
            let attempts = (byPartition[partition] ?? []).sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
            // An accepted result under audit (a re-check after its node was caught): the audit
            // decides it from now on.
            if attempts.contains(where: { $0.check != nil }) {
                census.completed += 1
                continue
            }
            let replicas = attempts.compactMap { Self.replica(of: $0, plan) }
            let byID = Dictionary(attempts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            let running = replicas.contains { $0.outcome == .running }
            // A partition that runs alone (Adaptive) needs its one result; should that replica
            // fail, the partition is replicated as usual.
            let lone = attempts.first { $0.alone == true }.flatMap { execution in replicas.first { $0.executionID == execution.id } }
            let runsAlone = lone.map { $0.outcome != .failed } ?? false
            var settings = verification
            if runsAlone {
                settings.replicas = 1
                settings.quorum = 1
            }
            switch QuorumRule.decide(replicas, settings: settings) {
            case .wait:
                census.running += 1
            case .addReplicas(let count):
                census.needsPlacement += Array(repeating: partition, count: count)
                if running { census.running += 1 }
            case .accepted(let key, let valid, let invalid, let cancel):
                census.completed += 1
                for id in valid {
                    if let execution = byID[id] { Self.record(runsAlone ? .unchecked : .valid, of: execution, key: key, partition: partition, &plan) }
                }
                for id in invalid { if let execution = byID[id] { Self.record(.invalid, of: execution, key: key, partition: partition, &plan) } }
                for id in cancel {
                    if let execution = byID[id] { plan.stop(execution, "partition \(partition)'s result was accepted; this replica is not needed") }
                }
            case .noConsensus(let groups):
                let described = groups.map { "\($0.executionIDs.count) × \($0.key) (\($0.executionIDs.map(shortID).joined(separator: ", ")))" }
                census.failed.append((
                    partition,
                    "NoConsensus: \(replicas.count) replicas (MaxReplicas \(verification.maxReplicas)) gave no result that \(verification.quorum) agree on "
                        + "and more agree on than on any other: " + (described.isEmpty ? "no results" : described.joined(separator: "; "))
                ))
            case .tooManyErrors(let errors):
                let last = attempts.last { Self.replica(of: $0, plan)?.outcome == .failed }
                census.failed.append((
                    partition,
                    "\(errors) replicas failed (MaxErrors \(verification.maxErrors))" + (last.map { "; the last: \($0.failureSummary)" } ?? "")
                ))
            }
        }
        return census
    }

    /// After the job ended: results that came in late (a replica told to stop finished
    /// first) are compared with their partition's accepted result, as BOINC does, so the node's
    /// reputation counts them too. Nothing else changes.
    func judgeLate(_ plan: inout PlanBuilder, maps: [Execution]) {
        for (partition, attempts) in Dictionary(grouping: maps, by: \.partitionIndex).sorted(by: { $0.key < $1.key })
        where !attempts.contains(where: { $0.check != nil }) {
            let accepted = attempts.first { $0.verdict == .valid }.flatMap { plan.input.resultKeys[$0.id] }
            guard let accepted else { continue }
            for execution in attempts where execution.verdict == nil && execution.computeState.stateType == .completed {
                guard let key = plan.input.resultKeys[execution.id] else { continue }
                Self.record(key == accepted ? .valid : .invalid, of: execution, key: accepted, partition: partition, &plan)
            }
        }
    }

    /// An execution as a replica; nil for an attempt that never started (a node declined it),
    /// which is no replica (its node is still never asked again for this partition).
    static func replica(of execution: Execution, _ plan: PlanBuilder) -> Replica? {
        switch plan.buckets.bucket(execution) {
        case .active: return Replica(execution.id, .running, verdict: execution.verdict)
        case .completed:
            // A result the orchestrator could not read counts as a failure, never as a match.
            guard let key = plan.input.resultKeys[execution.id] else { return Replica(execution.id, .failed, verdict: execution.verdict) }
            return Replica(execution.id, .result(key: key), verdict: execution.verdict)
        case .superseded: return nil
        case .lost, .failedForGood, .retryable:
            // Cancelled: stopped by this rule once a result was accepted, or with the job.
            if execution.computeState.stateType == .cancelled { return nil }
            if plan.buckets.failure(of: execution)?.neverStarted == true { return nil }
            return Replica(execution.id, .failed, verdict: execution.verdict)
        }
    }

    static func record(_ verdict: Verdict, of execution: Execution, key: String, partition: Int, _ plan: inout PlanBuilder) {
        guard execution.verdict != verdict else { return }
        let message = switch verdict {
        case .valid: "its result agrees with partition \(partition)'s accepted result (\(key))"
        case .invalid: "its result differs from partition \(partition)'s accepted result (\(key)); it is invalid"
        case .unchecked: "its result (\(key)) is accepted unchecked: its node's run of valid results let partition \(partition) run alone (Adaptive)"
        }
        plan.record(verdict, of: execution, message)
    }
}
