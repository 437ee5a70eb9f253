/// Schedules: a stored object next to jobs that starts a job from its template at each tick
/// of its cron expressions (and, with triggers, when something happens). The jobs it starts
/// are ordinary jobs; Bacalhau's job spec is unchanged.

/// What a missed tick becomes once the orchestrator can start it again.
public enum CatchUp: String, Codable, Sendable, Hashable, CaseIterable {
    /// Ticks that passed while they could not start are not run.
    case none = "None"
    /// The newest of them runs (Kubernetes, Nomad).
    case latest = "Latest"
    /// Each of them runs, up to `MaxCatchUp` (Airflow's catch-up), oldest first.
    case all = "All"
}

/// What a tick does while a job the schedule started is still running.
public enum ConcurrencyPolicy: String, Codable, Sendable, Hashable, CaseIterable {
    /// Start another.
    case allow = "Allow"
    /// Skip the tick (recorded as skipped, never run later).
    case forbid = "Forbid"
    /// Stop the running ones, then start.
    case replace = "Replace"
}

/// How many ended jobs of a schedule are kept; older ones are deleted with their results.
public struct HistoryLimits: Codable, Sendable, Hashable {
    public var succeeded: Int
    public var failed: Int

    public init(succeeded: Int = 3, failed: Int = 1) {
        self.succeeded = succeeded
        self.failed = failed
    }

    enum CodingKeys: String, CodingKey { case succeeded = "Succeeded", failed = "Failed" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        succeeded = try c.decodeIfPresent(Int.self, forKey: .succeeded) ?? 3
        failed = try c.decodeIfPresent(Int.self, forKey: .failed) ?? 1
    }
}

/// When a schedule fires.
public struct ScheduleTiming: Codable, Sendable, Hashable {
    /// Cron expressions; a tick is a time any of them names.
    public var crons: [String]
    /// Whether a six-field expression's first field is seconds.
    public var cronSeconds: Bool
    /// The IANA zone the expressions are read in; UTC unless set, never the server's zone.
    public var timeZone: String
    /// Seconds after its nominal time past which a tick that has not started is missed.
    public var startingDeadline: Int64?
    public var catchUp: CatchUp
    public var maxCatchUp: Int
    public var concurrencyPolicy: ConcurrencyPolicy
    /// No new ticks start while suspended (jobs already started go on).
    public var suspend: Bool
    public var history: HistoryLimits

    /// With `CatchUp: None`, how late a tick may start and still count as on time (unless
    /// `StartingDeadline` is shorter).
    public static let onTimeGrace: Int64 = 10
    /// The most ticks one catch-up starts.
    public static let maxCatchUpLimit = 10_000
    public static let maxCrons = 32
    public static let maxHistory = 1_000

    public init(
        crons: [String] = [], cronSeconds: Bool = false, timeZone: String = "UTC", startingDeadline: Int64? = nil,
        catchUp: CatchUp = .latest, maxCatchUp: Int = 100, concurrencyPolicy: ConcurrencyPolicy = .allow, suspend: Bool = false,
        history: HistoryLimits = HistoryLimits()
    ) {
        self.crons = crons
        self.cronSeconds = cronSeconds
        self.timeZone = timeZone
        self.startingDeadline = startingDeadline
        self.catchUp = catchUp
        self.maxCatchUp = maxCatchUp
        self.concurrencyPolicy = concurrencyPolicy
        self.suspend = suspend
        self.history = history
    }

    enum CodingKeys: String, CodingKey {
        case crons = "Crons", cron = "Cron", cronSeconds = "CronSeconds", timeZone = "TimeZone", startingDeadline = "StartingDeadline"
        case catchUp = "CatchUp", maxCatchUp = "MaxCatchUp", concurrencyPolicy = "ConcurrencyPolicy", suspend = "Suspend"
        case history = "History"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        crons = try c.decodeIfPresent([String].self, forKey: .crons) ?? []
        // `Cron: "..."` for one expression, as Nomad's older `cron`.
        if let one = try c.decodeIfPresent(String.self, forKey: .cron) { crons.append(one) }
        cronSeconds = try c.decodeIfPresent(Bool.self, forKey: .cronSeconds) ?? false
        timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone) ?? "UTC"
        startingDeadline = try c.decodeIfPresent(DurationSeconds.self, forKey: .startingDeadline)?.seconds
        catchUp = try c.decodeIfPresent(CatchUp.self, forKey: .catchUp) ?? .latest
        maxCatchUp = try c.decodeIfPresent(Int.self, forKey: .maxCatchUp) ?? 100
        concurrencyPolicy = try c.decodeIfPresent(ConcurrencyPolicy.self, forKey: .concurrencyPolicy) ?? .allow
        suspend = try c.decodeIfPresent(Bool.self, forKey: .suspend) ?? false
        history = try c.decodeIfPresent(HistoryLimits.self, forKey: .history) ?? HistoryLimits()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(crons, forKey: .crons)
        try c.encode(cronSeconds, forKey: .cronSeconds)
        try c.encode(timeZone, forKey: .timeZone)
        try c.encodeIfPresent(startingDeadline, forKey: .startingDeadline)
        try c.encode(catchUp, forKey: .catchUp)
        try c.encode(maxCatchUp, forKey: .maxCatchUp)
        try c.encode(concurrencyPolicy, forKey: .concurrencyPolicy)
        try c.encode(suspend, forKey: .suspend)
        try c.encode(history, forKey: .history)
    }

    /// Seconds after which a due tick is missed; nil: never.
    public var lateLimit: Int64? {
        switch (catchUp, startingDeadline) {
        case (.none, let deadline?): min(deadline, Self.onTimeGrace)
        case (.none, nil): Self.onTimeGrace
        case (_, let deadline): deadline
        }
    }

    /// What is wrong, per field (the cron expressions and zone are checked where they are
    /// parsed).
    public var problems: [(field: String, message: String)] {
        var problems: [(String, String)] = []
        if crons.count > Self.maxCrons { problems.append(("Schedule.Crons", "has \(crons.count) expressions; at most \(Self.maxCrons)")) }
        if let deadline = startingDeadline, deadline < 1 || deadline > 366 * 86_400 {
            problems.append(("Schedule.StartingDeadline", "must be from 1s to 366d, got \(deadline)s"))
        }
        if maxCatchUp < 1 || maxCatchUp > Self.maxCatchUpLimit {
            problems.append(("Schedule.MaxCatchUp", "must be from 1 to \(Self.maxCatchUpLimit), got \(maxCatchUp)"))
        }
        for (field, value) in [("Schedule.History.Succeeded", history.succeeded), ("Schedule.History.Failed", history.failed)]
        where value < 0 || value > Self.maxHistory {
            problems.append((field, "must be from 0 to \(Self.maxHistory), got \(value)"))
        }
        return problems
    }
}

/// A duration written as seconds (`90`) or with units (`90s`, `15m`, `1h30m`, `7d`).
public struct DurationSeconds: Codable, Sendable, Hashable {
    public var seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let number = try? c.decode(Int64.self) {
            seconds = number
            return
        }
        let text = try c.decode(String.self)
        guard let parsed = ResourceParsing.seconds(text) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "\"\(text.prefix(40))\" is not a duration such as 90s, 15m, 1h30m or 7d")
        }
        seconds = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(seconds)
    }
}

/// Something other than the clock that starts a schedule's job. Each event starts at most one
/// job: the event's identity is the run's key.
public struct ScheduleTrigger: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable, Hashable, CaseIterable {
        /// Another job finished: a job with `JobName` in the schedule's namespace, or one that
        /// the schedule named `Schedule` started. Its result CIDs are the new job's inputs.
        case jobCompleted = "JobCompleted"
        /// An HMAC-SHA256-signed POST to the schedule's webhook.
        case webhook = "Webhook"
        /// The named dataset `Dataset` grew (`cod data add DIR --dataset NAME`): the job gets its
        /// new shards (`Inputs: Delta`) or all of them (`Full`), one partition per shard.
        case dataset = "Dataset"
    }

    /// Which of a grown dataset's shards a dataset trigger's job reads.
    public enum DatasetInputs: String, Codable, Sendable, Hashable, CaseIterable {
        /// The shards added since the trigger's last job (or since the schedule was made).
        case delta = "Delta"
        /// Every shard of the newest version.
        case full = "Full"
    }

    public var type: Kind
    public var jobName: String?
    public var schedule: String?
    /// The webhook's shared secret (at least 16 bytes); shown only to the owner and admins.
    public var secret: String?
    /// Where the input is mounted (default `/inputs/upstream` for a finished job's results,
    /// `/inputs/data` for a dataset).
    public var target: String?
    public var dataset: String?
    public var inputs: DatasetInputs?
    /// Seconds the dataset must stay unchanged before its job starts, so a burst of adds makes
    /// one job (default 0).
    public var debounce: Int64?

    public init(
        type: Kind, jobName: String? = nil, schedule: String? = nil, secret: String? = nil, target: String? = nil, dataset: String? = nil,
        inputs: DatasetInputs? = nil, debounce: Int64? = nil
    ) {
        (self.type, self.jobName, self.schedule, self.secret, self.target) = (type, jobName, schedule, secret, target)
        (self.dataset, self.inputs, self.debounce) = (dataset, inputs, debounce)
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type", jobName = "JobName", schedule = "Schedule", secret = "Secret", target = "Target", dataset = "Dataset"
        case inputs = "Inputs", debounce = "Debounce"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decode(Kind.self, forKey: .type)
        jobName = try c.decodeIfPresent(String.self, forKey: .jobName)
        schedule = try c.decodeIfPresent(String.self, forKey: .schedule)
        secret = try c.decodeIfPresent(String.self, forKey: .secret)
        target = try c.decodeIfPresent(String.self, forKey: .target)
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        inputs = try c.decodeIfPresent(DatasetInputs.self, forKey: .inputs)
        debounce = try c.decodeIfPresent(DurationSeconds.self, forKey: .debounce)?.seconds
    }

    public static let minimumSecretBytes = 16
    public static let defaultTarget = "/inputs/upstream"
    public static let defaultDatasetTarget = "/inputs/data"
    /// A day: a longer quiet spell is a clock's job.
    public static let maxDebounce: Int64 = 86_400

    public func problems(at path: String) -> [(field: String, message: String)] {
        var problems: [(String, String)] = []
        if let target, !target.hasPrefix("/") || target.contains("..") || target.utf8.count > 1024 {
            problems.append((path + ".Target", "must be an absolute path without '..', got \(target.prefix(80))"))
        }
        let fields = [("Dataset", dataset), ("JobName", jobName), ("Schedule", schedule), ("Secret", secret), ("Target", target)]
        for (field, value) in fields where value != nil {
            let allowed: Bool =
                switch (type, field) {
                case (.dataset, "Dataset"), (.dataset, "Target"), (.jobCompleted, "JobName"), (.jobCompleted, "Schedule"), (.jobCompleted, "Target"),
                    (.webhook, "Secret"):
                    true
                default: false
                }
            if !allowed { problems.append((path + "." + field, "does not apply to a \(type.rawValue) trigger")) }
        }
        if type != .dataset {
            if inputs != nil { problems.append((path + ".Inputs", "applies to a Dataset trigger only")) }
            if debounce != nil { problems.append((path + ".Debounce", "applies to a Dataset trigger only")) }
        }
        switch type {
        case .jobCompleted:
            if (jobName ?? "").isEmpty == (schedule ?? "").isEmpty {
                problems.append((path, "a JobCompleted trigger names one of JobName (a job) or Schedule (a schedule's jobs)"))
            }
        case .webhook:
            if (secret ?? "").utf8.count < Self.minimumSecretBytes || (secret ?? "").utf8.count > 1024 {
                problems.append((path + ".Secret", "a webhook needs a shared secret of \(Self.minimumSecretBytes) to 1024 bytes to check signatures with"))
            }
        case .dataset:
            if let problem = ScheduleSpec.nameProblem(dataset ?? "") { problems.append((path + ".Dataset", "the dataset's name " + problem)) }
            if let debounce, debounce < 0 || debounce > Self.maxDebounce {
                problems.append((path + ".Debounce", "must be from 0 to \(Self.maxDebounce) seconds, got \(debounce)"))
            }
        }
        return problems
    }
}

/// What a user submits: `cod schedule create -f FILE`, `PUT /api/v1/orchestrator/schedules`.
public struct ScheduleSpec: Codable, Sendable {
    public var name: String
    public var namespace: String
    public var timing: ScheduleTiming
    public var triggers: [ScheduleTrigger]
    /// The job each tick starts (any job, as `cod job run` takes it).
    public var jobTemplate: Job

    public init(name: String, namespace: String = "default", timing: ScheduleTiming, triggers: [ScheduleTrigger] = [], jobTemplate: Job) {
        self.name = name
        self.namespace = namespace
        self.timing = timing
        self.triggers = triggers
        self.jobTemplate = jobTemplate
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", namespace = "Namespace", timing = "Schedule", triggers = "Triggers", jobTemplate = "JobTemplate"
    }

    public static let maxTriggers = 16

    /// The spec as someone who is neither its owner nor an admin sees it: no webhook secret,
    /// and the template's secrets hidden as a job's are.
    public var hidingSecrets: ScheduleSpec {
        var copy = self
        for index in copy.triggers.indices where copy.triggers[index].secret != nil { copy.triggers[index].secret = "(hidden)" }
        copy.jobTemplate = jobTemplate.hidingSecrets()
        return copy
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        namespace = try c.decodeIfPresent(String.self, forKey: .namespace) ?? ""
        timing = try c.decodeIfPresent(ScheduleTiming.self, forKey: .timing) ?? ScheduleTiming()
        triggers = try c.decodeIfPresent([ScheduleTrigger].self, forKey: .triggers) ?? []
        jobTemplate = try c.decode(Job.self, forKey: .jobTemplate)
    }

    /// A schedule name: what job names may be, and short enough to prefix them.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is required (a name like nightly-thumbnails)" }
        if name.utf8.count > 63 { return "is \(name.utf8.count) bytes; at most 63" }
        let allowed = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "_" || $0 == "." }
        if !allowed || name.hasPrefix("-") || name.hasPrefix(".") {
            return "\"\(name.prefix(40))\" may hold only lowercase letters, digits, '-', '_' and '.', and starts with a letter or digit"
        }
        return nil
    }
}

/// A stored schedule: the spec, who owns it, and where its clock stands.
public struct Schedule: Codable, Sendable {
    public var id: String
    public var owner: String
    public var spec: ScheduleSpec
    /// Unix nanoseconds.
    public var createTime: Int64
    public var modifyTime: Int64
    /// The newest nominal time dealt with (started, skipped or missed), Unix seconds; nil
    /// before the first.
    public var lastScheduleTime: Int64?
    /// The next nominal time, Unix seconds; nil when the expressions never fire again.
    public var nextRunTime: Int64?
    /// Ticks missed over the schedule's life.
    public var missed: Int64
    /// The last warning, e.g. too many missed ticks.
    public var warning: String

    public init(
        id: String, owner: String, spec: ScheduleSpec, createTime: Int64, modifyTime: Int64, lastScheduleTime: Int64? = nil,
        nextRunTime: Int64? = nil, missed: Int64 = 0, warning: String = ""
    ) {
        self.id = id
        self.owner = owner
        self.spec = spec
        self.createTime = createTime
        self.modifyTime = modifyTime
        self.lastScheduleTime = lastScheduleTime
        self.nextRunTime = nextRunTime
        self.missed = missed
        self.warning = warning
    }

    enum CodingKeys: String, CodingKey {
        case id = "ID", owner = "Owner", spec = "Spec", createTime = "CreateTime", modifyTime = "ModifyTime"
        case lastScheduleTime = "LastScheduleTime", nextRunTime = "NextRunTime", missed = "Missed", warning = "Warning"
    }

    /// Where ticks are counted from: the last one dealt with, else the creation (seconds).
    public var since: Int64 { lastScheduleTime ?? createTime.floorDivided(by: 1_000_000_000) }

    /// Whether a trigger watches the store: for other jobs finishing, or a dataset growing.
    public var watchesStore: Bool { spec.triggers.contains { $0.type == .jobCompleted || $0.type == .dataset } }
}

/// One thing a schedule did: a job started for a tick (or a trigger's event), or a tick
/// skipped or missed. Its key is unique per schedule, so a tick never starts two jobs.
public struct ScheduleRun: Codable, Sendable, Hashable {
    public enum Outcome: String, Codable, Sendable {
        case started = "Started"
        /// `ConcurrencyPolicy: Forbid` while a job ran.
        case skipped = "Skipped"
        /// Too late (deadline, catch-up policy); one record covers a span of ticks.
        case missed = "Missed"
        /// The job could not be created (e.g. no credits for its hold).
        case failed = "Failed"
    }

    public var scheduleID: String
    /// `tick:<unix seconds>`, `missed:<first>-<last>`, or a trigger event's identity.
    public var key: String
    /// Unix seconds; for a missed span, its last tick.
    public var nominalTime: Int64
    public var outcome: Outcome
    public var jobID: String
    /// For a span of missed ticks, how many.
    public var count: Int64
    public var message: String
    /// Unix nanoseconds.
    public var time: Int64
    /// The job's state, when read with it (not stored).
    public var jobState: String?

    public init(
        scheduleID: String, key: String, nominalTime: Int64, outcome: Outcome, jobID: String = "", count: Int64 = 1, message: String = "",
        time: Int64, jobState: String? = nil
    ) {
        self.scheduleID = scheduleID
        self.key = key
        self.nominalTime = nominalTime
        self.outcome = outcome
        self.jobID = jobID
        self.count = count
        self.message = message
        self.time = time
        self.jobState = jobState
    }

    enum CodingKeys: String, CodingKey {
        case scheduleID = "ScheduleID", key = "Key", nominalTime = "NominalTime", outcome = "Outcome", jobID = "JobID", count = "Count"
        case message = "Message", time = "Time", jobState = "JobState"
    }

    public static func tickKey(_ nominal: Int64) -> String { "tick:\(nominal)" }
}

extension Int64 {
    /// Division rounding toward minus infinity.
    public func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
    }
}

/// A time zone's rules as the core needs them: the UTC offset in effect at an instant and when
/// it next changes. The shell reads them from the system's zone database; tests may use fixed
/// or hand-made zones. Instants and offsets are seconds.
public protocol ZoneRules: Sendable {
    /// Seconds east of UTC in effect at `instant` (Unix seconds).
    func offset(at instant: Int64) -> Int64
    /// The first instant after `instant` at which the offset changes; nil when it never does.
    func nextTransition(after instant: Int64) -> Int64?
}

/// A zone whose offset never changes: UTC, or a fixed offset.
public struct FixedZone: ZoneRules {
    public let seconds: Int64

    public init(seconds: Int64 = 0) { self.seconds = seconds }

    public func offset(at instant: Int64) -> Int64 { seconds }
    public func nextTransition(after instant: Int64) -> Int64? { nil }
}
