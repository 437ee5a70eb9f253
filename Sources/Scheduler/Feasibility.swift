import Models

/// Whether a node can run a job's task: now, later, or never, with the reason in words.
enum Feasibility {
    case fits(free: Resources)
    /// Could run it, but not now.
    case busy(String)
    /// Can never run it.
    case infeasible(String)

    /// The reason a node does not fit, or nil when it does.
    var reason: String? {
        switch self {
        case .fits: return nil
        case .busy(let reason), .infeasible(let reason): return reason
        }
    }

    /// Checks `node` for the job's (first) task, given what is already allocated on it.
    static func of(_ node: NodeCandidate, job: Job, requested: Resources, allocated: Resources) -> Feasibility {
        let state = node.state
        if state.membership != .approved { return .infeasible("membership is \(state.membership.rawValue)") }
        if state.connection != .connected { return .infeasible("disconnected") }
        if let quarantine = state.quarantine { return .infeasible(quarantine) }
        if state.liveness == .suspect { return .busy("suspect: its heartbeats stopped; waiting to see if it recovers") }
        if let missing = missingCapability(state.info, job: job) { return .infeasible(missing) }
        let info = state.info.computeNodeInfo
        if let refusal = job.pricing?.refusal(of: info.priceList) { return .infeasible(refusal) }
        if requested.gpu > 0, info.maxCapacity.gpu == 0 {
            return .infeasible("job needs \(requested.gpu) GPU\(requested.gpu == 1 ? "" : "s"); the node has none")
        }
        let shortfallAtAll = requested.shortfall(against: info.maxCapacity)
        if !shortfallAtAll.isEmpty {
            return .infeasible(
                "job needs more \(shortfallAtAll.joined(separator: " and ")) than the node has in total "
                    + "(\(describe(requested)) requested, \(describe(info.maxCapacity)) total)")
        }
        let free = info.maxCapacity - allocated
        let shortfallNow = requested.shortfall(against: free)
        if !shortfallNow.isEmpty {
            return .busy("not enough free \(shortfallNow.joined(separator: " and ")) right now")
        }
        return .fits(free: free)
    }

    /// Whether a node could run the job's task at all (ignoring what it runs now).
    static func canEverRun(_ node: NodeCandidate, job: Job, requested: Resources) -> Bool {
        if case .infeasible = of(node, job: job, requested: requested, allocated: Resources()) { return false }
        return true
    }

    /// What the node lacks to run the task at all: an engine, publisher, input type, network
    /// or label; nil when it has everything.
    private static func missingCapability(_ node: NodeInfo, job: Job) -> String? {
        let info = node.computeNodeInfo
        let task = job.task
        func offers(_ list: [String], _ value: String) -> Bool { list.map { $0.lowercased() }.contains(value) }
        let engine = task.engine.normalizedType
        if !offers(info.executionEngines, engine) {
            return "engine \(engine) not supported (has \(info.executionEngines.joined(separator: ", ")))"
        }
        let publisher = task.publisher.normalizedType
        if !offers(info.publishers, publisher) {
            return "publisher \(publisher) not supported (has \(info.publishers.joined(separator: ", ")))"
        }
        for input in task.inputSources where !offers(info.storageSources, input.source.normalizedType) {
            return "input type \(input.source.type) not supported (has \(info.storageSources.joined(separator: ", ")))"
        }
        let network = NetworkMode.of(task)
        if engine != "wasm", !offers(info.networks, network.rawValue) {
            if network == .http {
                return "network HTTP (a domain allowlist) is not offered (allows \(info.networks.joined(separator: ", ")); ask for Full on a node that allows it)"
            }
            return "network \(network.rawValue) not allowed (allows \(info.networks.joined(separator: ", ")))"
        }
        // A Trusted job runs only where every trust label is carried with its value.
        if let verification = job.verification, verification.mode == .trusted {
            for (key, value) in verification.trustLabels.sorted(by: { $0.key < $1.key }) where node.labels[key] != value {
                return "not trusted by the job: it lacks label \(key)=\(value) (Verification.TrustLabels)"
            }
        }
        return LabelSelector.firstMismatch(job.constraints, labels: node.labels)
    }

    static func describe(_ resources: Resources) -> String {
        let cpu = (resources.cpu * 1000).rounded() / 1000
        return "cpu \(cpu), memory \(ResourceParsing.formatBytes(resources.memory))"
    }
}

extension SchedulerSettings {
    /// What a task is allocated: what it asks for, the rest from its engine's defaults.
    public func requestedResources(_ job: Job) -> Resources {
        let defaults = ["docker", "process"].contains(job.task.engine.normalizedType)
            ? defaultProgramResources : defaultResources
        return ResourceParsing.resources(job.task.resources, defaults: defaults) ?? defaults
    }
}
