import ContentAddressing
import Crypto
import Foundation
import JobSpec
public import Models
import Scheduler
import StateStore
public import Wire

/// Schedules: stored next to jobs, fired by the schedule loop. Which ticks are due is the pure
/// ``DueTicks`` function of the clock; each tick's job is created in the transaction that moves
/// the schedule's clock on (``AppDatabase/fire(_:now:)``), under an identity derived from the
/// schedule and the tick, so one nominal time makes one job whenever the orchestrator dies.
extension Orchestrator {
    /// The ticks of a schedule's expressions in its zone; a field-level error for either.
    static func cronSchedule(_ timing: ScheduleTiming, triggered: Bool = false) throws -> CronSchedule {
        var problems: [ValidationProblem] = []
        let zone = SystemZone(timing.timeZone)
        if zone == nil {
            problems.append(.init(
                "Schedule.TimeZone",
                "\"\(timing.timeZone.prefix(64))\" is not an IANA zone this system knows (e.g. UTC, Europe/Lisbon, America/New_York)"))
        }
        if timing.crons.isEmpty && !triggered {
            problems.append(.init("Schedule.Crons", "is required without Triggers: at least one expression, e.g. \"0 2 * * *\""))
        }
        var expressions: [CronExpression] = []
        for (index, text) in timing.crons.prefix(ScheduleTiming.maxCrons).enumerated() {
            do {
                expressions.append(try CronExpression(String(text.prefix(200)), allowSeconds: timing.cronSeconds))
            } catch {
                problems.append(.init("Schedule.Crons[\(index)]", error.description))
            }
        }
        problems += timing.problems.map { ValidationProblem($0.field, $0.message) }
        guard problems.isEmpty, let zone else { throw CodError(.invalidJob, Self.describeSchedule(problems)) }
        return CronSchedule(expressions, zone: zone)
    }

    static func describeSchedule(_ problems: [ValidationProblem]) -> String {
        "the schedule has \(problems.count) problem\(problems.count == 1 ? "" : "s"):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }

    static func nowSeconds() -> Int64 { nowNanos().floorDivided(by: 1_000_000_000) }

    /// Creates or updates a schedule of `owner`'s (nil: from inside the process), who needs
    /// `write:job` in its namespace. Only its owner or an admin may change a schedule, since its
    /// jobs spend its owner's credits.
    public func putSchedule(_ submitted: ScheduleSpec, owner: Principal?) async throws -> PutScheduleResponse {
        var spec = submitted
        if spec.namespace.isEmpty { spec.namespace = spec.jobTemplate.namespace.isEmpty ? "default" : spec.jobTemplate.namespace }
        var problems: [ValidationProblem] = []
        if let problem = ScheduleSpec.nameProblem(spec.name) { problems.append(.init("Name", problem)) }
        var template = spec.jobTemplate
        template.namespace = spec.namespace
        template.name = spec.name
        let normalized = normalizer.normalize(template)
        problems += Self.validator.validate(normalized).map { ValidationProblem("JobTemplate.\($0.path)", $0.message) }
        if spec.triggers.contains(where: { $0.type == .dataset }) {
            // Its jobs read the dataset as their partitioned input, one partition per shard.
            if normalized.jobType != .batch {
                problems.append(.init("JobTemplate.Type", "a Dataset trigger's job runs once per shard, so it must be a batch job, not \(normalized.type)"))
            }
            if let task = normalized.tasks.first, DatasetPartitioner.partitionedInput(of: task) != nil {
                problems.append(.init(
                    "JobTemplate.Tasks[0].InputSources", "a Dataset trigger adds the dataset as the partitioned input; the template cannot partition another"))
            }
        }
        if spec.triggers.count > ScheduleSpec.maxTriggers {
            problems.append(.init("Triggers", "has \(spec.triggers.count) triggers; at most \(ScheduleSpec.maxTriggers)"))
        }
        for (index, trigger) in spec.triggers.prefix(ScheduleSpec.maxTriggers).enumerated() {
            problems += trigger.problems(at: "Triggers[\(index)]").map { ValidationProblem($0.field, $0.message) }
            if trigger.schedule == spec.name {
                problems.append(.init("Triggers[\(index)].Schedule", "a schedule cannot be triggered by its own jobs (each would start the next)"))
            }
        }
        let cron: CronSchedule
        do {
            cron = try Self.cronSchedule(spec.timing, triggered: !spec.triggers.isEmpty)
        } catch let error as CodError {
            guard !problems.isEmpty else { throw error }
            throw CodError(.invalidJob, error.message + "\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
        }
        guard problems.isEmpty else { throw CodError(.invalidJob, Self.describeSchedule(problems)) }
        if let owner, !owner.allows(.writeJob, namespace: spec.namespace) {
            throw CodError(
                .forbidden, "user \(owner.name) may not create schedules in namespace \(spec.namespace)",
                hint: "use a namespace your key allows, or ask an admin for write:job there")
        }
        let now = nowNanos()
        var ids = Self.newIDs()
        let seconds = now.floorDivided(by: 1_000_000_000)
        let schedule = Schedule(
            id: "s-" + ids.uuid(), owner: owner?.name ?? "", spec: spec, createTime: now, modifyTime: now,
            nextRunTime: cron.next(after: seconds))
        // An update keeps the owner and the clock where it stood; the new expressions tick
        // from now. Whether the caller may replace it is checked in the same transaction.
        let stored = try await database.putSchedule(schedule) { existing in try Self.mayChange(existing, owner) }
        return PutScheduleResponse(scheduleID: stored.schedule.id, created: stored.created, nextRunTime: stored.schedule.nextRunTime)
    }

    static func mayChange(_ schedule: Schedule, _ principal: Principal?) throws {
        guard let principal, !principal.isAdmin, schedule.owner != principal.name else { return }
        throw CodError(
            .forbidden, "schedule \(schedule.spec.name) belongs to \(schedule.owner.isEmpty ? "the operator" : schedule.owner); user \(principal.name) may not change it",
            hint: "its jobs spend its owner's credits: ask the owner or an admin")
    }

    /// A schedule the caller may read; its secrets only for its owner and admins.
    public func schedule(_ reference: String, for principal: Principal?) async throws -> Schedule {
        let schedule = try await database.schedule(reference)
        if let principal, !principal.allows(.readJob, namespace: schedule.spec.namespace) {
            throw CodError(.notFound, "schedule \(reference) not found", hint: "list schedules with: cod schedule list")
        }
        return Self.visible(schedule, to: principal)
    }

    static func visible(_ schedule: Schedule, to principal: Principal?) -> Schedule {
        guard let principal, !principal.isAdmin, principal.name != schedule.owner else { return schedule }
        var copy = schedule
        copy.spec = schedule.spec.hidingSecrets
        return copy
    }

    public func schedules(for principal: Principal?) async throws -> [Schedule] {
        try await database.schedules(namespaces: principal?.namespaces(for: .readJob)).map { Self.visible($0, to: principal) }
    }

    public func describeSchedule(_ reference: String, for principal: Principal?) async throws -> ScheduleDescription {
        let schedule = try await self.schedule(reference, for: principal)
        let cron = try Self.cronSchedule(schedule.spec.timing, triggered: !schedule.spec.triggers.isEmpty)
        let from = max(schedule.since, Self.nowSeconds())
        let runs = try await database.scheduleRuns(id: schedule.id, limit: 20)
        let active = runs.filter { $0.outcome == .started && !(JobStateType(rawValue: $0.jobState ?? "")?.isTerminal ?? true) }
        return ScheduleDescription(
            schedule: schedule, nextRuns: schedule.spec.timing.suspend ? [] : cron.upcoming(after: from, count: 5), runs: runs,
            active: active.map(\.jobID))
    }

    public func scheduleRuns(_ reference: String, for principal: Principal?, limit: Int) async throws -> [ScheduleRun] {
        try await database.scheduleRuns(id: try await schedule(reference, for: principal).id, limit: limit)
    }

    public func deleteSchedule(_ reference: String, by principal: Principal?) async throws {
        let schedule = try await self.schedule(reference, for: principal)
        try Self.mayChange(schedule, principal)
        try await database.deleteSchedule(id: schedule.id)
    }

    /// Suspends (no tick starts) or resumes. The ticks that pass while suspended are missed:
    /// resuming counts them and starts from the next one.
    public func setSuspended(_ reference: String, _ suspended: Bool, by principal: Principal?) async throws -> Schedule {
        let schedule = try await self.schedule(reference, for: principal)
        try Self.mayChange(schedule, principal)
        if suspended {
            return try await database.setSuspended(
                id: schedule.id, true, through: nil, missed: 0, next: schedule.nextRunTime, now: nowNanos())
        }
        let cron = try Self.cronSchedule(schedule.spec.timing, triggered: !schedule.spec.triggers.isEmpty)
        let now = Self.nowSeconds()
        let due = DueTicks.at(now, since: schedule.since, schedule: cron, timing: ScheduleTiming(catchUp: .all, maxCatchUp: 1))
        let passed = due.missed + Int64(due.start.count)
        return try await database.setSuspended(id: schedule.id, false, through: due.through, missed: passed, next: due.next, now: nowNanos())
    }

    /// Starts the schedule's job now, outside its clock (Nomad's `periodic force`), whatever
    /// runs: the concurrency policy is for ticks.
    public func triggerSchedule(_ reference: String, by principal: Principal?) async throws -> [ScheduleRun] {
        let schedule = try await self.schedule(reference, for: principal)
        try Self.mayChange(schedule, principal)
        let now = nowNanos()
        var ids = Self.newIDs()
        let key = "manual:\(ids.uuid())"
        let start = try await start(schedule, key: key, nominal: Self.nowSeconds(), trigger: ["Type": "Manual"], now: now)
        return try await fireOutsideClock(schedule, [start], explicit: true, now: now)
    }

    /// Starts a job for every tick in `[from, to]` that has none yet (Airflow's backfill),
    /// whatever runs: ticks already run, skipped or refused keep their record; missed ones
    /// get their job.
    public func backfill(_ reference: String, from: Int64, to: Int64, by principal: Principal?) async throws -> [ScheduleRun] {
        let schedule = try await self.schedule(reference, for: principal)
        try Self.mayChange(schedule, principal)
        let now = Self.nowSeconds()
        guard from >= 0, to >= 0, from <= now, from <= to else {
            throw CodError(
                .badRequest, "backfill needs 0 <= From <= To and From not in the future (now \(now)), got From \(from), To \(to)",
                hint: "give --from before --to, both in the past (RFC 3339 or Unix seconds)")
        }
        let cron = try Self.cronSchedule(schedule.spec.timing, triggered: !schedule.spec.triggers.isEmpty)
        let nanos = nowNanos()
        var ticks: [Int64] = []
        var cursor = from - 1
        while let tick = cron.next(after: cursor), tick <= min(to, now) {
            guard ticks.count < BackfillRequest.maxTicks else {
                throw CodError(
                    .badRequest, "the range holds more than \(BackfillRequest.maxTicks) ticks",
                    hint: "backfill a shorter range at a time")
            }
            ticks.append(tick)
            cursor = tick
        }
        var starts: [AppDatabase.ScheduledStart] = []
        for tick in ticks {
            starts.append(try await start(schedule, key: ScheduleRun.tickKey(tick), nominal: tick, trigger: ["Type": "Backfill"], now: nanos))
        }
        return try await fireOutsideClock(schedule, starts, explicit: true, now: nanos)
    }

    /// Fires `starts` outside the schedule's clock (a trigger, a backfill, an event): the clock
    /// stays where it is, and if the loop moves it meanwhile, the firing is made again on the
    /// schedule as it is then (the starts do not depend on it). `explicit`: a person's trigger or
    /// backfill, which starts whatever runs.
    private func fireOutsideClock(
        _ schedule: Schedule, _ starts: [AppDatabase.ScheduledStart], explicit: Bool = false, now: Int64
    ) async throws -> [ScheduleRun] {
        var firing = AppDatabase.ScheduleFiring(
            scheduleID: schedule.id, expectedLast: schedule.lastScheduleTime, through: nil, next: schedule.nextRunTime, starts: starts,
            explicit: explicit)
        for _ in 0..<5 {
            let outcome = try await database.fire(firing, now: now)
            if outcome.applied {
                await queue(outcome)
                return outcome.runs
            }
            let current = try await database.schedule(schedule.id)
            (firing.expectedLast, firing.next) = (current.lastScheduleTime, current.nextRunTime)
        }
        throw CodError(.conflict, "the schedule kept changing; try again")
    }

    private func queue(_ outcome: AppDatabase.FiringOutcome) async {
        for evaluation in outcome.evaluations { await broker.enqueue(evaluation) }
        for jobID in outcome.stoppedJobIDs { await watchers.notify(jobID: jobID) }
    }

    // MARK: Triggers

    /// A signed POST to a schedule's webhook: `X-Cod-Signature: sha256=HEX` is the HMAC-SHA256
    /// of the body with the trigger's secret. The delivery's identity (`X-Cod-Delivery`, else the
    /// body's SHA-256) is the run's key, so a delivery sent again starts nothing. A wrong or
    /// missing signature starts nothing and says only that.
    public func webhook(_ reference: String, body: Data, signature: String?, delivery: String?) async throws -> [ScheduleRun] {
        guard let schedule = try? await database.schedule(reference),
            case let secrets = schedule.spec.triggers.filter({ $0.type == .webhook }).compactMap(\.secret), !secrets.isEmpty
        else {
            throw CodError(.notFound, "no schedule \(reference.prefix(80)) with a webhook", hint: "add a Webhook trigger to the schedule")
        }
        let given = (signature ?? "").hasPrefix("sha256=") ? String((signature ?? "").dropFirst(7)).lowercased() : ""
        let valid = secrets.contains { secret in
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
            return Secrets.equal(Data(mac).hexString, given)
        }
        guard valid else {
            throw CodError(
                .unauthorized, "the webhook signature does not match",
                hint: "send X-Cod-Signature: sha256=HEX, the HMAC-SHA256 of the exact body with the trigger's Secret")
        }
        guard !schedule.spec.timing.suspend else {
            throw CodError(.conflict, "schedule \(schedule.spec.name) is suspended", hint: "cod schedule resume \(schedule.spec.name)")
        }
        let identity = delivery.map { String($0.prefix(128)).filter { $0.isLetter || $0.isNumber || "-_.".contains($0) } }
            .flatMap { $0.isEmpty ? nil : $0 } ?? SHA256.hash(data: body).hexString
        var details = ["Type": "Webhook", "Delivery": identity]
        if body.count <= 4096, let text = String(data: body, encoding: .utf8) { details["Payload"] = text } else { details["PayloadBytes"] = String(body.count) }
        let now = nowNanos()
        let start = try await start(schedule, key: "webhook:\(identity)", nominal: Self.nowSeconds(), trigger: details, now: now)
        return try await fireOutsideClock(schedule, [start], now: now)
    }

    /// Starts the jobs of schedules whose triggers saw something change in the store: a
    /// JobCompleted trigger one per finished job and version, with its results as inputs; a
    /// Dataset trigger one per version of its dataset that stayed unchanged for its debounce.
    /// Both read the store, so what happened during a restart is not lost.
    func fireStoreTriggers() async {
        let schedules: [Schedule]
        do {
            schedules = try await database.schedulesWatchingStore()
        } catch {
            logger.error("store triggers: \(error)")
            return
        }
        // One schedule that cannot start its job does not hold up the others.
        for schedule in schedules {
            for trigger in schedule.spec.triggers {
                do {
                    switch trigger.type {
                    case .jobCompleted:
                        for upstream in try await database.completedJobs(watchedBy: trigger, of: schedule) {
                            try await fire(schedule, after: upstream, trigger: trigger)
                        }
                    case .dataset:
                        try await fire(schedule, onGrowthOf: trigger)
                    case .webhook:
                        break
                    }
                } catch {
                    logger.error("schedule \(schedule.spec.name), \(trigger.type.rawValue) trigger: \(error)")
                }
            }
        }
    }

    /// How long a dataset trigger waits for nodes to announce a new version's shards before
    /// starting its job anyway (which then says which shard no node holds).
    static let announceGrace: Int64 = 120 * 1_000_000_000

    /// The named dataset's newest version, once it has stayed unchanged for the debounce and
    /// its shards are announced by connected nodes, starts one job (its key is the version) reading the shards added since the trigger's
    /// last job (`Delta`) or all of them (`Full`), one partition per shard.
    private func fire(_ schedule: Schedule, onGrowthOf trigger: ScheduleTrigger) async throws {
        guard let name = trigger.dataset,
            let change = try await database.datasetChange(name: name, scheduleID: schedule.id, since: schedule.createTime)
        else { return }
        let now = nowNanos()
        let quiet = now - change.head.time
        guard quiet >= (trigger.debounce ?? 0) * 1_000_000_000 else { return }
        let delta = (trigger.inputs ?? .delta) == .delta
        let first = delta ? change.base?.shards ?? 0 : 0
        // The adder's nodes announce new shards with their next heartbeats: wait for them (a
        // job started sooner would find no node holding its data), but not for ever.
        if quiet < Self.announceGrace {
            let held = Set(try await database.nodes().filter { $0.connection == .connected }.flatMap(\.info.computeNodeInfo.heldRoots))
            guard change.manifest.shards.dropFirst(first).allSatisfy({ held.contains(CID.v1String($0.cid)) }) else { return }
        }
        var partition: [String: JSONValue] = ["By": .string("shard")]
        if first > 0 { partition["FromShard"] = .int(Int64(first)) }
        let input = InputSource(
            source: SpecConfig(type: "ipfs", params: ["CID": .string(change.head.cid), "Partition": .object(partition)]),
            target: trigger.target ?? ScheduleTrigger.defaultDatasetTarget)
        let details = [
            "Type": "Dataset", "Dataset": name, "Version": String(change.head.version), "CID": change.head.cid,
            "Inputs": delta ? "Delta" : "Full", "Shards": "\(first)-\(change.head.shards - 1)",
            "SinceVersion": String(change.base?.version ?? 0),
        ]
        let start = try await start(
            schedule, key: "dataset:\(name):v\(change.head.version)", nominal: Self.nowSeconds(), trigger: details, inputs: [input], now: now)
        _ = try await fireOutsideClock(schedule, [start], now: now)
    }

    private func fire(_ schedule: Schedule, after upstream: Job, trigger: ScheduleTrigger) async throws {
        let results: [SpecConfig]
        do {
            results = try await self.results.results(jobID: upstream.id, baseURL: "")
        } catch let error as CodError where error.code == .unavailable {
            return  // merging: next pass
        }
        let cids = results.compactMap { result -> String? in
            guard result.type == "ipfs", case .string(let cid)? = result.params["CID"] else { return nil }
            return cid
        }
        let target = trigger.target ?? ScheduleTrigger.defaultTarget
        let inputs = cids.enumerated().map { index, cid in
            InputSource(source: SpecConfig(type: "ipfs", params: ["CID": .string(cid)]), target: cids.count == 1 ? target : "\(target)/\(index)")
        }
        let details = ["Type": "JobCompleted", "JobID": upstream.id, "JobName": upstream.name, "ResultCIDs": cids.joined(separator: ",")]
        let now = nowNanos()
        let start = try await start(
            schedule, key: "job:\(upstream.id):v\(upstream.version)", nominal: Self.nowSeconds(), trigger: details, inputs: inputs, now: now)
        _ = try await fireOutsideClock(schedule, [start], now: now)
    }

    // MARK: The loop

    /// One pass over the schedules due now: each due schedule's ticks, by the pure rule, all
    /// stored with their jobs in one transaction. Returns when the next tick of any schedule is
    /// due (Unix seconds).
    func runDueSchedules() async -> Int64? {
        let now = Self.nowSeconds()
        do {
            await fireStoreTriggers()
            let due = try await database.dueSchedules(now: now)
            if !due.isEmpty {
                let nanos = nowNanos()
                let nodes = try await database.nodeRecords()
                var firings: [AppDatabase.ScheduleFiring] = []
                for schedule in due {
                    do {
                        firings.append(try await firing(for: schedule, now: now, nanos: nanos, nodes: nodes))
                    } catch {
                        logger.error("schedule \(schedule.spec.name): \(error)")
                        // A schedule that cannot fire (a zone gone from the system, a template
                        // no longer valid) is not retried in a tight loop: it waits a minute.
                        try? await database.stallSchedule(id: schedule.id, until: now + 60, warning: "cannot start its jobs: \(error)")
                    }
                }
                for outcome in try await database.fire(all: firings, now: nanos) { await queue(outcome) }
            }
            return try await database.earliestScheduledTick()
        } catch {
            logger.error("schedule loop: \(error)")
            return now + 1
        }
    }

    private func firing(for schedule: Schedule, now: Int64, nanos: Int64, nodes: [NodeState]) async throws -> AppDatabase.ScheduleFiring {
        let cron = try Self.cronSchedule(schedule.spec.timing, triggered: !schedule.spec.triggers.isEmpty)
        let due = DueTicks.at(now, since: schedule.since, schedule: cron, timing: schedule.spec.timing)
        var starts: [AppDatabase.ScheduledStart] = []
        for tick in due.start {
            starts.append(
                try await start(schedule, key: ScheduleRun.tickKey(tick), nominal: tick, trigger: ["Type": "Schedule"], nodes: nodes, now: nanos))
        }
        var warning: String?
        if due.tooManyMissed {
            warning = "TooManyMissedTicks: \(due.missed) ticks missed (the orchestrator was down or the schedule suspended); set StartingDeadline or CatchUp to say which to run"
            logger.warning("schedule \(schedule.spec.name): \(warning ?? "")")
        }
        let missed = due.firstMissed.flatMap { first in due.lastMissed.map { (due.missed, first, $0) } }
        return AppDatabase.ScheduleFiring(
            scheduleID: schedule.id, expectedLast: schedule.lastScheduleTime, through: due.through, next: due.next, missed: missed,
            warning: warning, starts: starts)
    }

    /// The job a schedule starts for `key`: its template, named and identified by the
    /// schedule and the key, with `COD_SCHEDULED_TIME` and `COD_TRIGGER` in its env, owned by
    /// the schedule's owner, with its hold.
    func start(
        _ schedule: Schedule, key: String, nominal: Int64, trigger: [String: String], inputs: [InputSource] = [], nodes: [NodeState]? = nil,
        now: Int64
    ) async throws -> AppDatabase.ScheduledStart {
        var template = schedule.spec.jobTemplate
        template.namespace = schedule.spec.namespace
        for index in template.tasks.indices { template.tasks[index].inputSources += inputs }
        var job = try Self.validator.prepare(template, normalizer: normalizer)
        (job.parentJobID, job.parentExecutionID) = (nil, nil)
        if let partitions = try await database.partitionCount(of: job) { job.count = partitions }
        let nominalText = RFC3339.format(nanos: nominal * 1_000_000_000)
        var details = trigger
        details["Schedule"] = schedule.spec.name
        details["ScheduleID"] = schedule.id
        details["Key"] = key
        details["NominalTime"] = nominalText
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let triggerJSON = String(decoding: try encoder.encode(details), as: UTF8.self)
        for index in job.tasks.indices {
            job.tasks[index].env["COD_SCHEDULED_TIME"] = nominalText
            job.tasks[index].env["COD_TRIGGER"] = triggerJSON
        }
        job.name = "\(schedule.spec.name)-\(key.hasPrefix("tick:") ? String(nominal) : String(key.replacingOccurrences(of: ":", with: "-").prefix(80)))"
        job.labels["cod.schedule"] = schedule.spec.name
        job.meta["cod.schedule.id"] = schedule.id
        job.meta["cod.schedule.key"] = key
        job.owner = schedule.owner
        Self.makeFirstVersion(&job, id: Self.scheduledJobID(scheduleID: schedule.id, key: key), now: now)
        var ids = Self.newIDs()
        let evaluation = Self.evaluation(of: job, trigger: .jobRegister, now: now, ids: &ids)
        let event = JobHistory(
            type: .job, jobID: job.id, jobVersion: 1,
            event: Event(
                message: "Job started by schedule \(schedule.spec.name) for \(key.hasPrefix("tick:") ? nominalText : key)", topic: "Submission",
                timestamp: now, details: ["NewState": "Pending"]),
            time: now)
        let stop = Self.evaluation(of: job, trigger: .jobCancel, now: now, ids: &ids)
        return AppDatabase.ScheduledStart(
            key: key, nominalTime: nominal, job: job, evaluation: evaluation, event: event, hold: try await hold(for: job, nodes: nodes),
            stopEvaluation: { running in
                var evaluation = stop
                evaluation.id = "v-" + Self.derivedUUID("stop\u{0}\(running.id)\u{0}\(key)")
                (evaluation.jobID, evaluation.namespace, evaluation.priority, evaluation.type) =
                    (running.id, running.namespace, running.priority, running.type)
                return evaluation
            })
    }

    /// `j-` and a UUID derived from the schedule and the key: the same tick is the same job.
    static func scheduledJobID(scheduleID: String, key: String) -> String {
        "j-" + derivedUUID("cod-schedule\u{0}\(scheduleID)\u{0}\(key)")
    }

    static func derivedUUID(_ text: String) -> String {
        uuidString(Array(SHA256.hash(data: Data(text.utf8))), version: 5)
    }

    /// Deletes the ended jobs of schedules beyond their history limits, with their results.
    func pruneScheduleHistory() async {
        do {
            let ids = try await database.jobsBeyondScheduleHistory()
            guard !ids.isEmpty else { return }
            let pruned = try await database.pruneEndedJobs(ids: ids, now: nowNanos())
            var report = GarbageCollectionResponse(jobs: pruned.jobIDs.count, executions: pruned.executionIDs.count)
            try await releaseFiles(of: pruned, into: &report)
        } catch {
            logger.error("pruning schedules' history failed: \(error)")
        }
    }
}
