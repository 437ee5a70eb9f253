import Models

/// Audits of accepted results: a Fast job's spot checks (``Job/spotChecks(partition:)``) and
/// re-checks of results a node produced unchecked before it was caught lying (the orchestrator
/// marks those with a `Recheck`). The accepted result and its re-runs, each on a node that
/// holds no other result of the partition, go through the ``QuorumRule`` with
/// ``Verification/audit``: one re-run that agrees confirms it; a disagreement brings a third
/// run, and two results that agree against it overturn it. Audits outlive a completed job and
/// never fail it; a decided audit's outcome is kept on the audited execution.
struct Audits {
    let settings: SchedulerSettings

    /// Starts, places and decides the audits of `maps` (the current version's map executions,
    /// audits included). Returns whether any audit is still undecided.
    @discardableResult
    func apply(_ plan: inout PlanBuilder, maps: [Execution]) -> Bool {
        let job = plan.job
        let spotChecking = job.verification.map { $0.mode == .fast && $0.spotCheck > 0 } ?? false
        guard spotChecking || maps.contains(where: { $0.check != nil }) else { return false }
        let reruns = Dictionary(grouping: maps.filter(\.isAudit), by: { $0.auditOf ?? "" })
        let accepted = Set(job.acceptedResults(among: maps.filter { !$0.isAudit }).map(\.id))
        var pending = false
        for original in maps where !original.isAudit && original.computeState.stateType == .completed {
            var check = original.check
            if check == nil, spotChecking, accepted.contains(original.id), job.spotChecks(partition: original.partitionIndex) {
                let started = ResultCheck(
                    .spotCheck,
                    message: "Spot check: partition \(original.partitionIndex)'s result from node \(shortID(original.nodeID)) will be re-run on another node and compared")
                plan.check(original, started)
                check = started
            }
            guard let check else { continue }
            let itsReruns = (reruns[original.id] ?? []).sorted { ($0.createTime, $0.id) < ($1.createTime, $1.id) }
            if check.outcome != nil {
                judgeLate(itsReruns, of: original, &plan)
            } else if decide(original, check: check, reruns: itsReruns, &plan) {
                pending = true
            }
        }
        return pending
    }

    /// One audit's next step; true while it is undecided.
    private func decide(_ original: Execution, check: ResultCheck, reruns: [Execution], _ plan: inout PlanBuilder) -> Bool {
        let partition = original.partitionIndex
        let what = check.reason == .spotCheck ? "Spot check" : "Re-check"
        func settle(_ outcome: ResultCheck.Outcome, _ message: String, _ plan: inout PlanBuilder) {
            plan.check(original, ResultCheck(check.reason, outcome: outcome, message: "\(what) of partition \(partition): " + message))
        }
        guard plan.input.resultKeys[original.id] != nil else {
            settle(.abandoned, "the result of execution \(shortID(original.id)) cannot be read here to compare", &plan)
            return false
        }
        // The audited result counts as one replica; its earlier verdict (unchecked) is no acceptance.
        var replicas = [Replica(original.id, .result(key: plan.input.resultKeys[original.id]!))]
        replicas += reruns.compactMap { VerifiedPartitions.replica(of: $0, plan) }
        let byID = Dictionary((reruns + [original]).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        switch QuorumRule.decide(replicas, settings: Verification.audit) {
        case .wait:
            return true
        case .addReplicas(let count):
            guard let stuck = place(count, rerunsOf: original, reruns: reruns, &plan) else { return true }
            settle(.abandoned, stuck, &plan)
            return false
        case .accepted(let key, let valid, let invalid, let cancel):
            for id in valid { if let execution = byID[id] { VerifiedPartitions.record(.valid, of: execution, key: key, partition: partition, &plan) } }
            for id in invalid { if let execution = byID[id] { VerifiedPartitions.record(.invalid, of: execution, key: key, partition: partition, &plan) } }
            for id in cancel {
                if let execution = byID[id] { plan.stop(execution, "\(what.lowercased()) of partition \(partition) is decided; this re-run is not needed") }
            }
            if valid.contains(original.id) {
                let others = valid.filter { $0 != original.id }.compactMap { byID[$0].map { shortID($0.nodeID) } }
                settle(.confirmed, "node \(others.joined(separator: ", "))'s re-run agrees with node \(shortID(original.nodeID))'s result (\(key))", &plan)
            } else {
                let winner = valid.first.map(shortID) ?? "?"
                settle(
                    .overturned,
                    "node \(shortID(original.nodeID))'s result differs from the result \(valid.count) other nodes agree on (\(key)); "
                        + "it is invalid, and the partition's result is now execution \(winner)'s", &plan)
            }
            return false
        case .noConsensus(let groups) where groups.count <= 1:
            let failed = replicas.filter { $0.outcome == .failed }.count
            settle(.abandoned, "\(failed) re-runs failed; the result stands, unconfirmed", &plan)
            return false
        case .noConsensus(let groups):
            let described = groups.map { "\($0.executionIDs.count) × \($0.key)" }.joined(separator: "; ")
            settle(.noConsensus, "the re-runs agree neither with node \(shortID(original.nodeID))'s result nor with each other (\(described)); it stands, unconfirmed", &plan)
            return false
        case .tooManyErrors(let errors):
            settle(.abandoned, "\(errors) re-runs failed; the result stands, unconfirmed", &plan)
            return false
        }
    }

    /// Places `count` re-runs; when none can be placed, waits for room if some node could ever
    /// take one. Returns why the audit must be given up, or nil while it goes on.
    private func place(_ count: Int, rerunsOf original: Execution, reruns: [Execution], _ plan: inout PlanBuilder) -> String? {
        let partition = original.partitionIndex
        var placement = Placement(settings: settings, plan: plan, maps: [original] + reruns, audit: true)
        placement.place(Array(repeating: partition, count: count), into: &plan, auditOf: original)
        guard placement.unplaced.count == count else { return nil }
        let holding = Set(([original] + reruns).filter { plan.buckets.isLive($0) || plan.buckets.bucket($0) == .completed }.map(\.nodeID))
        let rule = ReplicaPlacement(verification: plan.job.verification ?? Verification(), nodes: plan.input.nodes, replicaNodes: holding)
        let requested = settings.requestedResources(plan.job)
        let someday = placement.withoutData.isEmpty && plan.input.nodes.contains {
            rule.refusal(of: $0, partition: partition) == nil && Feasibility.canEverRun($0, job: plan.job, requested: requested)
        }
        if someday {
            plan.waitAndLookAgain(.capacity)
            return nil
        }
        return "no other node can re-run it (\(plan.summary(placement.reasons, default: "cannot take it")))"
    }

    /// Re-runs that finished after their audit was decided are compared with the result it
    /// accepted, so their nodes' reputations count them.
    private func judgeLate(_ reruns: [Execution], of original: Execution, _ plan: inout PlanBuilder) {
        let all = [original] + reruns
        guard let accepted = all.first(where: { $0.verdict == .valid }).flatMap({ plan.input.resultKeys[$0.id] }) else { return }
        for rerun in reruns where rerun.verdict == nil && rerun.computeState.stateType == .completed {
            guard let key = plan.input.resultKeys[rerun.id] else { continue }
            VerifiedPartitions.record(key == accepted ? .valid : .invalid, of: rerun, key: accepted, partition: original.partitionIndex, &plan)
        }
    }
}
