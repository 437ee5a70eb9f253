import Models

/// Which of a schedule's ticks are due at `now`, and what becomes of each: the one function
/// the orchestrator's schedule loop, `cod schedule describe` and the tests share. It takes the
/// clock as input and reads nothing else.
///
/// The ticks considered are those after `since` (the last tick already dealt with, or the
/// schedule's creation) up to and including `now`. A tick older than the starting deadline is
/// missed. Of the rest, `CatchUp` decides: `Latest` starts the newest, `All` starts all of
/// them up to `MaxCatchUp` (the newest ones; older ones are missed), and `None` is `Latest`
/// with a deadline of ``ScheduleTiming/onTimeGrace`` unless a shorter one is set, so ticks
/// that passed while the orchestrator was down are not run. Every tick is counted exactly,
/// however many there are (an `@every` interval by arithmetic).
public struct DueTicks: Equatable, Sendable {
    /// Nominal times to start now, oldest first.
    public var start: [Int64] = []
    /// Due ticks not started: too late, or beyond `MaxCatchUp`.
    public var missed: Int64 = 0
    public var firstMissed: Int64?
    public var lastMissed: Int64?
    /// The newest tick dealt with: the schedule's next `since`. Equal to `since` when none was due.
    public var through: Int64
    /// The first tick after `now`; nil when the expressions never fire again.
    public var next: Int64?

    /// More missed ticks than this is worth a warning (Kubernetes' `TooManyMissedTimes`).
    public static let manyMissed: Int64 = 100

    public init(
        start: [Int64] = [], missed: Int64 = 0, firstMissed: Int64? = nil, lastMissed: Int64? = nil, through: Int64, next: Int64?
    ) {
        (self.start, self.missed, self.firstMissed, self.lastMissed, self.through, self.next) =
            (start, missed, firstMissed, lastMissed, through, next)
    }

    public var tooManyMissed: Bool { missed > Self.manyMissed }

    public static func at(_ now: Int64, since: Int64, schedule: CronSchedule, timing: ScheduleTiming) -> DueTicks {
        var due = DueTicks(through: since, next: nil)
        guard now > since else {
            due.next = schedule.next(after: since)
            return due
        }
        let lateBefore: Int64? = timing.lateLimit.map { now - $0 }
        let keep = timing.catchUp == .all ? max(1, timing.maxCatchUp) : 1
        var cursor = since
        func miss(_ count: Int64, first: Int64?, last: Int64?) {
            guard count > 0 else { return }
            due.missed += count
            if due.firstMissed == nil { due.firstMissed = first }
            due.lastMissed = last
        }
        // A single `@every` interval is counted by arithmetic up to where the ticks that can
        // still start begin, so a long outage of a fast schedule costs nothing.
        let intervals = Set(schedule.expressions.map(\.interval))
        if intervals.count == 1, let interval = intervals.first ?? nil {
            // The oldest tick that may start: not late, and among the newest `keep`.
            let newest = now.floorDivided(by: interval) * interval
            var oldest = newest - Int64(keep - 1) * interval
            if let lateBefore { oldest = max(oldest, -(-lateBefore).floorDivided(by: interval) * interval) }
            let skipTo = oldest - interval
            if skipTo > cursor {
                let count = skipTo.floorDivided(by: interval) - cursor.floorDivided(by: interval)
                miss(count, first: schedule.next(after: cursor), last: skipTo)
                cursor = skipTo
            }
        }
        // The newest `keep` on-time ticks; everything else due is missed, oldest first.
        var kept: [Int64] = []
        func evict(leaving count: Int) {
            let excess = kept.count - count
            guard excess > 0 else { return }
            miss(Int64(excess), first: kept[0], last: kept[excess - 1])
            kept.removeFirst(excess)
        }
        while let tick = schedule.next(after: cursor), tick <= now {
            cursor = tick
            if let lateBefore, tick < lateBefore {
                miss(1, first: tick, last: tick)
                continue
            }
            kept.append(tick)
            if kept.count >= 2 * keep + 16 { evict(leaving: keep) }
        }
        evict(leaving: keep)
        due.start = kept
        due.through = cursor
        due.next = schedule.next(after: max(cursor, now))
        return due
    }
}
