import BlockStore
import NodeAPI
import ContentAddressing
import Foundation
public import Logging
public import Models
import Scheduler
public import StateStore
import Wire

/// The orchestrator's behaviour, shared by the HTTP routes, the node hub and the workers:
/// accept jobs, run evaluations through the scheduler, record what nodes report.
public final class Orchestrator: Sendable {
    public let config: OrchestratorConfig
    public let database: AppDatabase
    let logger: Logger
    let broker = EvaluationBroker()
    let watchers: JobWatchers
    let waitlist = CapacityWaitlist()
    let liveLogs: LiveLogs
    let hub: NodeHub
    let scheduler: BatchScheduler
    let normalizer = JobNormalizer()
    /// This node's content store (`<data>/store`).
    let store: FileBlockStore
    let results: ResultService
    let logs: LogService
    let datasets: DatasetService
    let uploads: ResultUploads
    let users: UserService
    let joinTokens: JoinTokenService
    /// Challenges for compute nodes' hellos.
    let challenges = ChallengeBook()
    /// The orchestrator's Ed25519 key (`<data>/orchestrator.key`, 0600): it signs welcomes.
    let identity: KeySigner
    /// Whether the start's recovery is done: node liveness is judged only after it.
    let recovery = Recovery()

    actor Recovery {
        private(set) var done = false
        func finish() { done = true }
    }

    public init(config: OrchestratorConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        try FileManager.default.createDirectory(at: config.resultsDirectory, withIntermediateDirectories: true)
        let database = try AppDatabase.open(path: config.databasePath, chargeInterval: Self.nanos(config.chargeInterval))
        let store = try FileBlockStore(root: config.dataDirectory.appendingPathComponent("store"))
        let watchers = JobWatchers()
        let liveLogs = LiveLogs()
        self.database = database
        self.store = store
        self.watchers = watchers
        self.liveLogs = liveLogs
        self.scheduler = BatchScheduler(settings: config.scheduler)
        self.hub = NodeHub(logger: logger)
        self.results = ResultService(database: database, store: store, resultsDirectory: config.resultsDirectory, logger: logger)
        self.logs = LogService(database: database, watchers: watchers, liveLogs: liveLogs, store: store, resultsDirectory: config.resultsDirectory)
        self.uploads = ResultUploads(database: database, directory: config.resultsDirectory, maxBytes: config.maxResultBytes)
        self.users = UserService(database: database)
        self.joinTokens = JoinTokenService(database: database)
        try joinTokens.registerStartupToken(config.token, now: nowNanos())
        self.identity = KeySigner(try SigningKeyFile.loadOrCreate(at: config.dataDirectory.appendingPathComponent("orchestrator.key")))
        self.datasets = DatasetService(database: database, now: { nowNanos() }, signer: identity, maxShardBytes: UploadGrant.maxUploadBytes)
        if try users.bootstrapAdmin(keyFile: config.adminKeyFile) {
            logger.info("created the admin user; its API key is in \(config.adminKeyFile.path) (export COD_API_KEY=$(cat \(config.adminKeyFile.path)))")
        }
    }

    static func newIDs() -> IDGenerator<SystemRandomNumberGenerator> {
        IDGenerator(rng: SystemRandomNumberGenerator())
    }

    /// A new evaluation of `job`, due now.
    static func evaluation(
        of job: Job, trigger: Evaluation.Trigger, now: Int64, ids: inout IDGenerator<SystemRandomNumberGenerator>
    ) -> Evaluation {
        Evaluation(
            id: ids.evaluationID(), namespace: job.namespace, jobID: job.id, triggeredBy: trigger, priority: job.priority,
            type: job.type, createTime: now, modifyTime: now)
    }

    // MARK: Jobs

    /// Validates and stores a job, then queues its first evaluation.
    /// Job validation with every CID parsed at submission, so a typo fails with its field
    /// path instead of on a node.
    static let validator = JobValidator(checkCID: { text in
        do {
            _ = try CID(text)
            return nil
        } catch {
            return "\"\(text.prefix(100))\" is not a CID: \(error)"
        }
    })

    /// Accepts a job from `owner` (nil: from inside the process, as tests and benches submit),
    /// who needs `write:job` in its namespace and becomes its owner. `onlyFirstPartition` runs
    /// partition 0 alone (an estimate's sample).
    public func submit(_ submitted: Job, owner: Principal? = nil, onlyFirstPartition: Bool = false) async throws -> PutJobResponse {
        var job = try Self.validator.prepare(submitted, normalizer: normalizer)
        // The store's record of who submitted it, never the spec's claim.
        job.owner = owner?.name ?? ""
        (job.parentJobID, job.parentExecutionID) = (nil, nil)
        if let owner, !owner.allows(.writeJob, namespace: job.namespace) {
            throw CodError(
                .forbidden, "user \(owner.name) may not submit jobs in namespace \(job.namespace)",
                hint: "submit in a namespace your key allows (Namespace in the spec), or ask an admin for write:job there")
        }
        // A partitioned input decides the number of partitions.
        if let partitions = try await database.partitionCount(of: job) {
            if let count = submitted.count, count > 1, count != partitions {
                throw CodError(
                    .badRequest, "Count is \(count) but the partitioned input makes \(partitions) partitions",
                    hint: "leave Count out, or set Partition.Count (with By: file or size)")
            }
            job.count = partitions
        }
        if onlyFirstPartition { job.count = 1 }
        if let scope = owner?.scope { return try await submitChild(job, of: scope) }
        var ids = Self.newIDs()
        let now = nowNanos()
        // A named job that exists is updated: its spec becomes the next version (Bacalhau's
        // semantics). The same spec again changes nothing.
        if !submitted.name.isEmpty, let existing = try await database.job(named: job.name, namespace: job.namespace) {
            return try await update(existing, to: job, ids: &ids, now: now)
        }
        Self.makeFirstVersion(&job, id: ids.jobID(), now: now)
        if job.name.isEmpty { job.name = job.id }
        let evaluation = Self.evaluation(of: job, trigger: .jobRegister, now: now, ids: &ids)
        let event = JobHistory(
            type: .job, jobID: job.id, jobVersion: job.version,
            event: Event(message: "Job submitted", topic: "Submission", timestamp: now, details: ["NewState": "Pending"]),
            time: now)
        try await database.createJob(job, evaluation: evaluation, event: event, hold: try await hold(for: job))
        await broker.enqueue(evaluation)
        return PutJobResponse(jobID: job.id, evaluationID: evaluation.id, warnings: [])
    }

    /// A new job's store fields: its ID, Pending at version 1, created now.
    static func makeFirstVersion(_ job: inout Job, id: String, now: Int64) {
        job.id = id
        job.state = JobState(.pending)
        job.version = 1
        job.revision = 1
        job.createTime = now
        job.modifyTime = now
        // The store's field, not the submitter's: a spec that set it could move its own deadlines.
        job.versionCreateTime = 0
    }

    /// What submitting `job` holds of its owner's credits: its worst case on the nodes that
    /// may run it (``WorstCase/hold``: every execution of its partitions and its reduce to its
    /// timeout at the dearest price), at most its Budget. Nothing when no node asks a price.
    /// `nodes`: the nodes as a scheduling input already read them; nil reads the store.
    func hold(for job: Job, nodes known: [NodeState]? = nil) async throws -> Int64 {
        let nodes: [NodeState]
        if let known { nodes = known } else { nodes = try await database.nodeRecords() }
        let eligible = nodes.filter { $0.membership != .rejected }
        let partitions = [.ops, .daemon].contains(job.jobType) ? eligible.count : job.partitionCount
        guard let hold = WorstCase.hold(
            for: job, partitions: partitions, attempts: config.scheduler.maxRetries + 1,
            nodes: eligible.map { (list: $0.info.computeNodeInfo.priceList, capacity: $0.info.computeNodeInfo.maxCapacity) },
            requested: config.scheduler.requestedResources)
        else {
            throw CodError(
                .paymentRequired, "a \(job.type) job runs until it is stopped, and nodes here charge for the time it runs: nothing bounds its cost",
                hint: "set Budget.Max (micro-credits) in the job spec, or a Timeouts.ExecutionTimeout")
        }
        return hold
    }

    private func update(_ existing: Job, to job: Job, ids: inout IDGenerator<SystemRandomNumberGenerator>, now: Int64) async throws
        -> PutJobResponse
    {
        guard existing.type == job.type else {
            throw CodError(
                .badRequest, "job \(job.name) is a \(existing.type) job; an update cannot make it \(job.type)",
                hint: "give the new job another name, or stop and rerun the old one")
        }
        func spec(_ job: Job) -> [String] {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let parts: [any Encodable] = [job.priority, job.count ?? 1, job.constraints, job.meta, job.labels, job.tasks]
            return parts.map { String(decoding: (try? encoder.encode($0)) ?? Data(), as: UTF8.self) }
        }
        if spec(existing) == spec(job) {
            return PutJobResponse(
                jobID: existing.id, evaluationID: "",
                warnings: ["job \(job.name) is unchanged (version \(existing.version)); cod job rerun \(shortID(existing.id)) runs it again"])
        }
        var evaluation = Self.evaluation(of: existing, trigger: .jobRegister, now: now, ids: &ids)
        evaluation.priority = job.priority
        let version = try await database.updateJob(id: existing.id, spec: job, evaluation: evaluation, now: now)
        await broker.enqueue(evaluation)
        await watchers.notify(jobID: existing.id)
        return PutJobResponse(jobID: existing.id, evaluationID: evaluation.id, warnings: ["updated job \(job.name) to version \(version)"])
    }

    /// Stops a job and its executions, and (unless `alone`) its unfinished descendants that
    /// end with it.
    public func stop(jobReference: String, reason: String, alone: Bool = false) async throws -> String {
        let id = try await database.resolveJobID(jobReference)
        var ids = Self.newIDs()
        let now = nowNanos()
        guard let job = try await database.job(id: id) else { throw CodError(.notFound, "job \(jobReference) not found") }
        let evaluation = Self.evaluation(of: job, trigger: .jobCancel, now: now, ids: &ids)
        let message = reason.isEmpty ? "job stopped by user" : reason
        guard let evaluationID = try await database.stopJob(id: id, reason: message, evaluation: evaluation, now: now) else {
            throw CodError(
                .conflict, "job \(shortID(id)) already ended as \(job.state.stateType.rawValue.lowercased())",
                hint: "only pending, queued or running jobs can be stopped")
        }
        await broker.enqueue(evaluation)
        await watchers.notify(jobID: id)
        if !alone { await stopOrphans() }
        return evaluationID
    }

    /// Runs a job again as its next version. `expectedVersion`, when given, must be the job's
    /// current version (so two people rerunning at once do not make two versions).
    public func rerun(jobReference: String, expectedVersion: UInt64?, reason: String) async throws -> RerunJobResponse {
        let id = try await database.resolveJobID(jobReference)
        guard let job = try await database.job(id: id) else { throw CodError(.notFound, "job \(jobReference) not found") }
        if let expectedVersion, expectedVersion != 0, expectedVersion != job.version {
            throw CodError(
                .conflict, "job \(shortID(id)) is at version \(job.version), not \(expectedVersion)",
                hint: "rerun without a version to rerun whatever is current")
        }
        var ids = Self.newIDs()
        let now = nowNanos()
        let evaluation = Self.evaluation(of: job, trigger: .jobRegister, now: now, ids: &ids)
        let version = try await database.rerunJob(id: id, reason: reason, evaluation: evaluation, now: now)
        await broker.enqueue(evaluation)
        await watchers.notify(jobID: id)
        return RerunJobResponse(jobID: id, jobVersion: version, evaluationID: evaluation.id)
    }

    /// Waits until the job's revision passes `afterRevision` or it ends, up to `timeout`.
    public func waitForChange(jobID: String, afterRevision: UInt64, timeout: Duration) async throws -> Job {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = await watchers.generation(of: jobID)
            guard let job = try await database.job(id: jobID) else { throw CodError(.notFound, "job \(jobID) not found") }
            if job.revision > afterRevision || job.state.stateType.isTerminal { return job }
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return job }
            await watchers.wait(jobID: jobID, seen: seen, timeout: remaining)
        }
    }

    // MARK: Evaluations

    /// Runs one batch of evaluations for one job: snapshot, schedule, apply (retrying on a
    /// conflicting concurrent change), then send what the plan put in the outbox.
    func process(_ batch: [Evaluation]) async {
        guard let evaluation = batch.max(by: { $0.createTime < $1.createTime }) else { return }
        for attempt in 1...5 {
            do {
                let now = nowNanos()
                guard var input = try await database.schedulingInput(for: evaluation, now: now) else {
                    for item in batch { try await database.failEvaluation(id: item.id, reason: "job not found") }
                    return
                }
                input.resultKeys = ComparisonKeys.of(input.executions, job: input.job, store: store)
                for index in input.nodes.indices { input.nodes[index].state = quarantined(input.nodes[index].state) }
                let plan = scheduler.schedule(input)
                let outcome = try await database.apply(plan, now: now)
                guard outcome.applied else {
                    logger.debug("plan for \(evaluation.jobID) was stale (attempt \(attempt)); retrying")
                    continue
                }
                for message in outcome.outbox { await hub.send(message) }
                for next in outcome.newEvaluations { await broker.enqueue(next) }
                if !outcome.undeliverable.isEmpty {
                    logger.warning("job \(shortID(evaluation.jobID)): \(outcome.undeliverable.count) executions too large to send; failed them")
                    await evaluate(jobIDs: [evaluation.jobID], trigger: .execFailure)
                }
                // A job that waits for capacity or data (the plan says) also waits on the list
                // that freed capacity and joining nodes serve first; a pause or a deadline does not.
                if plan.waiting?.wantsWakeUps == true {
                    await waitlist.add(evaluation.jobID, priority: evaluation.priority)
                } else {
                    await waitlist.remove(evaluation.jobID)
                }
                if outcome.jobState?.stateType == .completed, ResultService.mergesResults(of: input.job) {
                    await mergeResults(of: evaluation.jobID)
                } else if input.job.state.stateType == .completed, ResultService.mergesResults(of: input.job),
                    plan.updatedExecutions.contains(where: { $0.check?.outcome == .overturned })
                {
                    // An audit replaced a partition's result after the merge: merge again.
                    await mergeResults(of: evaluation.jobID, again: true)
                }
                if outcome.jobState != nil || !plan.newExecutions.isEmpty || !plan.updatedExecutions.isEmpty {
                    await watchers.notify(jobID: evaluation.jobID)
                }
                if let state = outcome.jobState, state.stateType.isTerminal {
                    await watchers.forget(jobID: evaluation.jobID)
                    logger.info("job \(shortID(evaluation.jobID)) \(state.stateType.rawValue.lowercased()) \(state.message)")
                }
                return
            } catch {
                logger.error("evaluation \(evaluation.id) failed: \(error)")
                if attempt == 5 {
                    for item in batch { try? await database.failEvaluation(id: item.id, reason: "\(error)") }
                }
            }
        }
    }

    /// `node` with the reason it gets no new work when its invalid results reached the
    /// operator's limit.
    func quarantined(_ node: NodeState) -> NodeState {
        let limit = config.quarantineAfterInvalid
        guard limit > 0, node.invalidResults >= limit else { return node }
        var node = node
        node.quarantine = "quarantined: \(node.invalidResults) of its results were found invalid (limit \(limit), --quarantine-after); it gets no new work "
            + "until an operator runs: cod node release \(shortID(node.info.nodeID))"
        return node
    }

    /// Queues an evaluation for each job, e.g. after capacity frees up or a node leaves.
    /// Merges a completed partitioned job's results before anyone is told it completed.
    func mergeResults(of jobID: String, again: Bool = false) async {
        do {
            try await results.merge(jobID: jobID, again: again)
        } catch {
            logger.error("job \(shortID(jobID)): cannot merge its partitions' results: \(error)")
        }
    }

    func evaluate(jobIDs: [String], trigger: Evaluation.Trigger) async {
        var ids = Self.newIDs()
        let now = nowNanos()
        for jobID in jobIDs {
            // Node joins and recoveries evaluate every waiting job: one pending evaluation per
            // job is enough.
            if await broker.isWaiting(jobID: jobID) { continue }
            do {
                // Built from the job, so it keeps the job's namespace and priority.
                guard let job = try await database.job(id: jobID) else { continue }
                let evaluation = Self.evaluation(of: job, trigger: trigger, now: now, ids: &ids)
                try await database.addEvaluation(evaluation)
                await broker.enqueue(evaluation)
            } catch {
                logger.error("cannot queue evaluation for \(jobID): \(error)")
            }
        }
    }

    /// On start: every pending evaluation goes back to the broker, and every unfinished job is
    /// re-evaluated so nothing stays stuck after a crash.
    func recover() async throws {
        do {
            try await recoverState()
        } catch {
            await recovery.finish()
            throw error
        }
        await recovery.finish()
    }

    private func recoverState() async throws {
        // First of all, nodes get a fresh grace period to reconnect before they count as lost:
        // their last heartbeats are from before the restart, and the ticker must not judge
        // them by those while the jobs are recovered.
        let now = nowNanos()
        for node in try await database.nodes() where node.connection == .connected {
            try await database.heartbeat(
                nodeID: node.info.nodeID, capacity: node.info.computeNodeInfo.availableCapacity,
                running: node.info.computeNodeInfo.runningExecutions, now: now)
        }
        let pending: [Evaluation]
        do {
            pending = try await database.pendingEvaluations()
        } catch {
            // Unreadable evaluations must not keep the orchestrator from serving: the jobs
            // themselves are re-evaluated below.
            logger.error("cannot read pending evaluations: \(error)")
            pending = []
        }
        for evaluation in pending { await broker.enqueue(evaluation) }
        let unfinished = try await database.queuedJobIDs(limit: 1_000_000)
        if !unfinished.isEmpty {
            logger.info("recovering \(unfinished.count) unfinished jobs and \(pending.count) pending evaluations")
            await evaluate(jobIDs: unfinished, trigger: .restart)
        }
        // Jobs that completed just before a crash get the merged result they were due.
        for jobID in try await database.completedJobsAwaitingMerge() { await mergeResults(of: jobID) }
    }

    static func nanos(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}

