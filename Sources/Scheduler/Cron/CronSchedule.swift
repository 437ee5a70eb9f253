import Models

/// A schedule's ticks: the union of its cron expressions' times in its zone, as instants.
///
/// The wall clock is matched in the zone, and a matching wall time becomes an instant by
/// Cod's rule for the days the clocks change:
/// - a wall time that does not exist (the clocks jumped over it) fires at the first instant
///   after the jump, once however many matching times the jump skipped;
/// - a wall time that happens twice (the clocks went back) fires once, at its first occurrence.
/// `@every` ticks are the interval's multiples since the epoch, whatever the zone.
public struct CronSchedule: Sendable {
    public let expressions: [CronExpression]
    public let zone: any ZoneRules

    public init(_ expressions: [CronExpression], zone: any ZoneRules = FixedZone()) {
        self.expressions = expressions
        self.zone = zone
    }

    /// The first tick strictly after `instant`; nil when none comes within the search span.
    public func next(after instant: Int64) -> Int64? {
        var best: Int64?
        for expression in expressions {
            guard let time = next(of: expression, after: instant) else { continue }
            if best.map({ time < $0 }) ?? true { best = time }
        }
        return best
    }

    /// The next `count` ticks after `instant`.
    public func upcoming(after instant: Int64, count: Int) -> [Int64] {
        var times: [Int64] = []
        var cursor = instant
        while times.count < count, let time = next(after: cursor) {
            times.append(time)
            cursor = time
        }
        return times
    }

    func next(of expression: CronExpression, after instant: Int64) -> Int64? {
        if let interval = expression.interval {
            let (sum, overflow) = (instant.floorDivided(by: interval) + 1).multipliedReportingOverflow(by: interval)
            return overflow ? nil : sum
        }
        // Wall times before the instant's own wall time map to instants at or before it (the
        // mapping never goes backwards), so the search starts there.
        var wall = instant + zone.offset(at: instant) + 1
        while let candidate = expression.nextWall(atOrAfter: wall) {
            let time = self.instant(ofWall: candidate)
            if time > instant { return time }
            wall = candidate + 1
        }
        return nil
    }

    /// The instant of a wall time by the rule above.
    func instant(ofWall wall: Int64) -> Int64 {
        // Every offset in use lies within -26 h...+26 h, so the instants that can show this
        // wall time lie within a day and a bit of it.
        let low = wall - 26 * 3600
        let high = wall + 26 * 3600
        var segments: [(start: Int64, end: Int64, offset: Int64)] = []
        var start = low
        var offset = zone.offset(at: low)
        while let change = zone.nextTransition(after: start), change <= high {
            segments.append((start, change, offset))
            start = change
            offset = zone.offset(at: change)
        }
        segments.append((start, high + 1, offset))
        if segments.count == 1 { return wall - offset }
        // The first occurrence.
        for segment in segments {
            let time = wall - segment.offset
            if time >= segment.start && time < segment.end { return time }
        }
        // Skipped: the change that jumped over it.
        for index in 1..<segments.count where segments[index].start + segments[index].offset > wall {
            return segments[index].start
        }
        return wall - offset
    }
}
