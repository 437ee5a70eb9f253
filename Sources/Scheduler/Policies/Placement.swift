import Models

/// Places a batch or service job's partitions on the best nodes that fit, within one plan's
/// view of capacity, and decides what happens to the partitions no node can take.
struct Placement {
    let settings: SchedulerSettings
    let requested: Resources
    let maps: [Execution]
    /// Placing audits: every replica goes to a node that has no result or replica of its
    /// partition yet, whatever the job's mode.
    let audit: Bool
    private var allocated: [String: Resources]
    private var jobLoad: [String: Int] = [:]
    /// Each node's reason it took no partition.
    private(set) var reasons: [String: String] = [:]
    private(set) var unplaced: [Int] = []
    /// Partitions that no connected node could ever read locally (Locality: local).
    private(set) var withoutData: [Int] = []

    init(settings: SchedulerSettings, plan: PlanBuilder, maps: [Execution], audit: Bool = false) {
        self.settings = settings
        self.maps = maps
        self.audit = audit
        requested = settings.requestedResources(plan.job)
        allocated = Dictionary(plan.input.nodes.map { ($0.id, $0.allocated) }, uniquingKeysWith: { first, _ in first })
        for execution in maps where plan.buckets.isLive(execution) { jobLoad[execution.nodeID, default: 0] += 1 }
        // What this plan placed already (an audit placed after the partitions) takes room too.
        for execution in plan.plan.newExecutions {
            allocated[execution.nodeID] = (allocated[execution.nodeID] ?? Resources()) + execution.allocatedResources
            jobLoad[execution.nodeID, default: 0] += 1
        }
    }

    mutating func place(_ partitions: [Int], into plan: inout PlanBuilder, auditOf: Execution? = nil) {
        // A verified job's replicas of one partition go to distinct nodes (those placed in
        // this plan included).
        var placedNow: [Int: [String]] = [:]
        // Partitions of an Adaptive job whose first replica's node may run them alone.
        var alone = Set<Int>()
        let adaptive = plan.job.verification.map { $0.isVerified && $0.adaptive } ?? false
        for partition in partitions where !alone.contains(partition) {
            let attempts = maps.filter { $0.partitionIndex == partition }
            let tried = Set(attempts.map(\.nodeID) + placedNow[partition, default: []])
            guard let chosen = choose(partition, tried: tried, placedNow: Set(placedNow[partition, default: []]), plan: &plan) else {
                unplaced.append(partition)
                continue
            }
            // BOINC's adaptive replication: a node with n ≥ 10 valid results in a row runs the
            // partition alone with probability 1 - 1/n (the plan's seeded generator decides).
            var runsAlone = false
            if adaptive, attempts.isEmpty, placedNow[partition] == nil,
               let chance = plan.input.reputation[chosen.id]?.aloneProbability, chance > 0
            {
                runsAlone = Double(plan.rng.next() >> 11) / Double(UInt64(1) << 53) < chance
            }
            if runsAlone { alone.insert(partition) }
            let previous = attempts.max { $0.createTime < $1.createTime }
            let execution = plan.place(
                on: chosen.id, partition: partition, resources: requested, previous: auditOf == nil ? previous : nil, alone: runsAlone,
                auditOf: auditOf?.id)
            allocated[chosen.id] = (allocated[chosen.id] ?? Resources()) + requested
            jobLoad[chosen.id, default: 0] += 1
            placedNow[partition, default: []].append(chosen.id)
            let note = auditOf.map { " to check execution \(shortID($0.id))'s result" } ?? (previous == nil ? "" : " (retry)")
            plan.event("Scheduled partition \(partition) on node \(shortID(chosen.id))\(note)", topic: "Scheduling", execution: execution)
        }
    }

    /// The best node for one partition: with Locality local only nodes holding its whole
    /// slice qualify; otherwise the ranking prefers nodes holding more of it.
    private mutating func choose(_ partition: Int, tried: Set<String>, placedNow: Set<String>, plan: inout PlanBuilder) -> NodeCandidate? {
        var candidates: [(NodeCandidate, Ranking)] = []
        var holderExists = false
        let data = plan.input.partitioning
        // Replicas that run or gave a result keep their nodes from the next; a node whose
        // replica failed gave no result and may run another (the ranking still prefers others).
        let holding = Set(maps.filter { $0.partitionIndex == partition && (plan.buckets.isLive($0) || plan.buckets.bucket($0) == .completed) }.map(\.nodeID))
            .union(placedNow)
        let distinctReplicas = audit || plan.job.isVerified
        let replicaRule = distinctReplicas
            ? ReplicaPlacement(verification: plan.job.verification ?? Verification(), nodes: plan.input.nodes, replicaNodes: holding) : nil
        for node in plan.input.nodes {
            if let replicaRule, let reason = replicaRule.refusal(of: node, partition: partition) {
                reasons[node.id] = reasons[node.id] ?? reason
                continue
            }
            var locality = 0.0
            if let data {
                let (held, total) = data.local(partition, on: node)
                if data.locality == .local, held < total {
                    reasons[node.id] = reasons[node.id] ?? "does not hold partition \(partition)'s data (Locality local)"
                    continue
                }
                locality = total == 0 ? 1 : Double(held) / Double(total)
                if held == total, Feasibility.canEverRun(node, job: plan.job, requested: requested) { holderExists = true }
            }
            let feasibility = Feasibility.of(node, job: plan.job, requested: requested, allocated: allocated[node.id] ?? Resources())
            guard case .fits(let free) = feasibility else {
                reasons[node.id] = feasibility.reason
                continue
            }
            candidates.append((node, Ranking(
                locality: locality, jobLoad: jobLoad[node.id, default: 0], alreadyTried: tried.contains(node.id), free: free,
                // Reputation ranks the further replicas and retries of a partition, not its
                // first one: new nodes still get first replicas and so a reputation of their own.
                reputation: tried.isEmpty ? nil : plan.input.reputation[node.id],
                price: plan.job.pricing == nil ? 0 : Pricing.referenceCost(of: node.state.info.computeNodeInfo.priceList, requested: requested),
                strategy: plan.job.pricing?.strategy)))
        }
        let chosen = Ranking.best(candidates, rng: &plan.rng)
        if chosen == nil, data?.locality == .local, !holderExists { withoutData.append(partition) }
        return chosen
    }

    /// Whether some node could take the unplaced partitions once it has room (and holds
    /// their data where they need it), rather than never.
    func onlyBusy(_ plan: PlanBuilder) -> Bool {
        withoutData.isEmpty && plan.input.nodes.contains { node in
            if case .infeasible = Feasibility.of(node, job: plan.job, requested: requested, allocated: Resources()) { return false }
            return true
        }
    }

    /// Partitions nobody can take: wait for capacity (or data), or fail with every node's reason.
    func settleUnplaced(_ plan: inout PlanBuilder, running: Int, count: Int) {
        let job = plan.job
        let summary = plan.summary(reasons, default: "busy with this job's other partitions")
        let onlyBusy = onlyBusy(plan)
        if plan.deadlines.mayWait(at: plan.now, onlyBusy: onlyBusy) {
            // Feasible nodes are full (or the user allowed queueing): look again later; any
            // execution that ends also wakes the job.
            let message = withoutData.isEmpty
                ? "waiting for capacity: \(unplaced.count) of \(count) partitions not placed yet (\(summary))"
                : "waiting for a node that holds partition \(withoutData[0])'s data (Locality local): \(withoutData.count) partitions wait (\(summary))"
            if running + plan.plan.newExecutions.count == 0 {
                plan.setJobState(.queued, message)
            } else {
                plan.setJobState(.running)
            }
            plan.waitAndLookAgain(withoutData.isEmpty ? .capacity : .data)
            return
        }
        let suitable = plan.input.nodes.filter { reasons[$0.id] == nil }.count
        plan.discardPlacements()
        plan.stopLive("job cannot be placed", among: maps)
        if let partition = withoutData.first, let data = plan.input.partitioning, data.slices.indices.contains(partition) {
            let shards = data.slices[partition].shards.joined(separator: ", ")
            plan.setJobState(
                .failed,
                "partition \(partition) cannot run: no connected node holds its data (shard \(shards)) and the input's Locality is local. "
                    + "Bring back a node that holds it, add replicas (cod data add --replication), or set Locality: any. (\(summary))")
            return
        }
        plan.setJobState(
            .failed,
            "not enough nodes to run job. requested: \(count), available: \(plan.input.nodes.count), suitable: \(suitable). \(summary)")
    }
}
