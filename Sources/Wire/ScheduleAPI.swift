public import Models

/// `GET /api/v1/orchestrator/schedules/{id}`: the schedule, its next five ticks and its last
/// runs with their jobs' states.
public struct ScheduleDescription: Codable, Sendable {
    public var schedule: Schedule
    /// Unix seconds.
    public var nextRuns: [Int64]
    public var runs: [ScheduleRun]
    /// Jobs it started that have not ended.
    public var active: [String]

    public init(schedule: Schedule, nextRuns: [Int64], runs: [ScheduleRun], active: [String]) {
        self.schedule = schedule
        self.nextRuns = nextRuns
        self.runs = runs
        self.active = active
    }

    enum CodingKeys: String, CodingKey { case schedule = "Schedule", nextRuns = "NextRuns", runs = "Runs", active = "Active" }
}

/// `PUT /api/v1/orchestrator/schedules`'s answer.
public struct PutScheduleResponse: Codable, Sendable {
    public var scheduleID: String
    public var created: Bool
    /// Unix seconds; nil when it never fires.
    public var nextRunTime: Int64?

    public init(scheduleID: String, created: Bool, nextRunTime: Int64?) {
        self.scheduleID = scheduleID
        self.created = created
        self.nextRunTime = nextRunTime
    }

    enum CodingKeys: String, CodingKey { case scheduleID = "ScheduleID", created = "Created", nextRunTime = "NextRunTime" }
}

/// `POST .../schedules/{id}/backfill`: start a job for every tick in `[From, To]` (Unix
/// seconds) that has no run yet, oldest first, at most ``maxTicks``.
public struct BackfillRequest: Codable, Sendable {
    public var from: Int64
    public var to: Int64

    public static let maxTicks = 1_000

    public init(from: Int64, to: Int64) {
        self.from = from
        self.to = to
    }

    enum CodingKeys: String, CodingKey { case from = "From", to = "To" }
}

/// What a trigger, backfill, suspend or resume did.
public struct ScheduleRunsResponse: Codable, Sendable {
    public var runs: [ScheduleRun]

    public init(runs: [ScheduleRun]) { self.runs = runs }

    enum CodingKeys: String, CodingKey { case runs = "Runs" }
}
