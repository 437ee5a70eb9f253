import JobSpec
import Models
import Scheduler
import Testing

/// Which ticks are due, with the clock as input: Kubernetes' CronJob controller cases
/// (`pkg/controller/cronjob/utils_test.go`) made exact, and Cod's catch-up policies.
@Suite("Due ticks")
struct DueTicksTests {
    /// 2026-12-01T00:00:00Z.
    static let t0: Int64 = 1_796_083_200
    static let minutely = CronSchedule([try! CronExpression("* * * * *")])

    static func timing(_ catchUp: CatchUp = .latest, deadline: Int64? = nil, max: Int = 100) -> ScheduleTiming {
        ScheduleTiming(crons: ["* * * * *"], startingDeadline: deadline, catchUp: catchUp, maxCatchUp: max)
    }

    @Test func nothingDueBeforeTheFirstTick() {
        let due = DueTicks.at(Self.t0 + 59, since: Self.t0, schedule: Self.minutely, timing: Self.timing())
        #expect(due.start.isEmpty && due.missed == 0 && due.through == Self.t0 && due.next == Self.t0 + 60)
    }

    @Test func theTickDueNowStartsOnce() {
        let due = DueTicks.at(Self.t0 + 60, since: Self.t0, schedule: Self.minutely, timing: Self.timing())
        #expect(due.start == [Self.t0 + 60] && due.missed == 0 && due.through == Self.t0 + 60 && due.next == Self.t0 + 120)
        // The same pass again, from where the first left the clock, starts nothing.
        let again = DueTicks.at(Self.t0 + 60, since: due.through, schedule: Self.minutely, timing: Self.timing())
        #expect(again.start.isEmpty && again.missed == 0)
    }

    /// k8s: ticks older than `startingDeadlineSeconds` are missed, and only the newest of the
    /// rest starts.
    @Test func deadlineCutsOffOldTicks() {
        let due = DueTicks.at(Self.t0 + 600, since: Self.t0, schedule: Self.minutely, timing: Self.timing(deadline: 300))
        #expect(due.start == [Self.t0 + 600])
        // 4 too late (1..4 min), 5 on time but older than the newest.
        #expect(due.missed == 9 && due.firstMissed == Self.t0 + 60 && due.lastMissed == Self.t0 + 540)
        // With All, every on-time tick starts, oldest first.
        let all = DueTicks.at(Self.t0 + 600, since: Self.t0, schedule: Self.minutely, timing: Self.timing(.all, deadline: 300))
        #expect(all.start == stride(from: Self.t0 + 300, through: Self.t0 + 600, by: 60).map { $0 })
        #expect(all.missed == 4 && all.lastMissed == Self.t0 + 240)
    }

    /// k8s warns above 100 missed ticks (`TooManyMissedTimes`) but still starts the newest; the
    /// v1 controller started nothing (kubernetes#42649). The count is exact.
    @Test func moreThanAHundredMissedStillStartTheNewest() {
        let now = Self.t0 + 200 * 60 + 17
        let due = DueTicks.at(now, since: Self.t0, schedule: Self.minutely, timing: Self.timing())
        #expect(due.start == [Self.t0 + 200 * 60])
        #expect(due.missed == 199 && due.tooManyMissed)
        #expect(due.next == Self.t0 + 201 * 60 && due.through == Self.t0 + 200 * 60)
        let all = DueTicks.at(now, since: Self.t0, schedule: Self.minutely, timing: Self.timing(.all, max: 5))
        #expect(all.start == (196...200).map { Self.t0 + Int64($0) * 60 })
        #expect(all.missed == 195 && all.firstMissed == Self.t0 + 60 && all.lastMissed == Self.t0 + 195 * 60)
    }

    /// CatchUp None: ticks that passed while nothing could start them are not run; one a
    /// moment late (within the grace) still is.
    @Test func catchUpNoneRunsOnlyOnTimeTicks() {
        let late = DueTicks.at(Self.t0 + 630, since: Self.t0, schedule: Self.minutely, timing: Self.timing(.none))
        #expect(late.start.isEmpty && late.missed == 10 && late.through == Self.t0 + 600)
        let onTime = DueTicks.at(Self.t0 + 605, since: Self.t0, schedule: Self.minutely, timing: Self.timing(.none))
        #expect(onTime.start == [Self.t0 + 600] && onTime.missed == 9)
    }

    /// A year's outage of a one-second schedule is counted by arithmetic, exactly.
    @Test func fastIntervalsAreCountedExactly() throws {
        let every = CronSchedule([try CronExpression("@every 1s")])
        let year: Int64 = 365 * 86_400
        let due = DueTicks.at(Self.t0 + year, since: Self.t0, schedule: every, timing: ScheduleTiming(catchUp: .all, maxCatchUp: 100))
        #expect(due.start == ((year - 99)...year).map { Self.t0 + $0 })
        #expect(due.missed == year - 100 && due.firstMissed == Self.t0 + 1 && due.lastMissed == Self.t0 + year - 100)
        let deadline = DueTicks.at(
            Self.t0 + year, since: Self.t0, schedule: every, timing: ScheduleTiming(startingDeadline: 30, catchUp: .all, maxCatchUp: 100))
        #expect(deadline.start == ((year - 30)...year).map { Self.t0 + $0 })
        #expect(deadline.missed == year - 31)
        // Iterating agrees with arithmetic on a short span.
        let iterated = DueTicks.at(Self.t0 + 500, since: Self.t0, schedule: CronSchedule([try CronExpression("* * * * * *", allowSeconds: true)]),
            timing: ScheduleTiming(catchUp: .all, maxCatchUp: 100))
        let counted = DueTicks.at(Self.t0 + 500, since: Self.t0, schedule: every, timing: ScheduleTiming(catchUp: .all, maxCatchUp: 100))
        #expect(iterated == counted)
    }

    /// `@every` ticks are multiples of the interval since the epoch: every orchestrator, before
    /// and after a restart, agrees on them.
    @Test func everyTicksOnMultiplesOfItsInterval() throws {
        let schedule = CronSchedule([try CronExpression("@every 15m")], zone: try #require(SystemZone("Asia/Kolkata")))
        #expect(schedule.upcoming(after: Self.t0 + 1, count: 3) == [Self.t0 + 900, Self.t0 + 1800, Self.t0 + 2700])
    }

    /// Cod's DST rule in Lisbon: on 29 March 2026 the clocks jump from 01:00 to 02:00, so
    /// 01:30 fires at 02:00 (01:00 UTC), once however many times the jump swallowed; on 25
    /// October 01:00-02:00 happens twice and 01:30 fires once, at its first occurrence.
    @Test func lisbonClockChanges() throws {
        let lisbon = try #require(SystemZone("Europe/Lisbon"))
        let daily = CronSchedule([try CronExpression("30 1 * * *")], zone: lisbon)
        let spring = CronTests.unix("2026-03-28T12:00:00Z")
        #expect(daily.upcoming(after: spring, count: 2) == [CronTests.unix("2026-03-29T01:00:00Z"), CronTests.unix("2026-03-30T00:30:00Z")])
        let quarterly = CronSchedule([try CronExpression("*/15 1 29 3 *")], zone: lisbon)
        #expect(quarterly.upcoming(after: spring, count: 1) == [CronTests.unix("2026-03-29T01:00:00Z")])
        #expect(quarterly.next(after: CronTests.unix("2026-03-29T01:00:00Z")) == CronTests.unix("2027-03-29T00:00:00Z"))
        let autumn = CronTests.unix("2026-10-24T12:00:00Z")
        #expect(daily.upcoming(after: autumn, count: 2) == [CronTests.unix("2026-10-25T00:30:00Z"), CronTests.unix("2026-10-26T01:30:00Z")])
        // New York: 02:30 does not exist on 8 March 2026 and fires at 03:00 EDT (07:00 UTC).
        let newYork = CronSchedule([try CronExpression("30 2 * * *")], zone: try #require(SystemZone("America/New_York")))
        #expect(newYork.next(after: CronTests.unix("2026-03-07T12:00:00Z")) == CronTests.unix("2026-03-08T07:00:00Z"))
    }

    @Test(arguments: [
        ("CRON_TZ=Europe/Lisbon 0 2 * * *", "TimeZone"), ("0 2 * * * *", "CronSeconds"), ("0 0 30 2 *", "never fire"),
        ("0 5-2 * * *", "backwards"), ("*/0 * * * *", "step"), ("@reboot", "macro"), ("60 * * * *", "outside 0-59"),
        ("0 0 * JANUARY *", "not a number"), ("", "empty"), ("@every 0s", "at least 1s"), ("* * *", "3 fields"),
    ])
    func refusedWithTheReason(cron: String, reason: String) {
        #expect {
            _ = try CronExpression(cron)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func namesStepsAndSundays() throws {
        let weekdays = try CronExpression("0 9 * * MON-FRI")
        let sundays = CronSchedule([try CronExpression("0 0 * * 7")])
        // 2026-12-06 is a Sunday.
        #expect(sundays.next(after: Self.t0) == CronTests.unix("2026-12-06T00:00:00Z"))
        #expect(CronSchedule([weekdays]).upcoming(after: CronTests.unix("2026-12-04T10:00:00Z"), count: 1) == [CronTests.unix("2026-12-07T09:00:00Z")])
        let seconds = CronSchedule([try CronExpression("*/20 * * * * *", allowSeconds: true)])
        #expect(seconds.upcoming(after: Self.t0, count: 3) == [Self.t0 + 20, Self.t0 + 40, Self.t0 + 60])
    }
}

/// Hostile expressions: whatever text arrives, parsing ends with an expression or a reason,
/// and an accepted expression's next times come in bounded time and strictly increase.
@Suite("Cron expressions from hostile text")
struct HostileCronTests {
    static let tokens = [
        "*", "?", "0", "59", "60", "7", "31", "32", "-1", "99999999999999999999", "*/0", "*/1", "*/61", "1-5", "5-1", "1-5/2", "3/2",
        "JAN", "jan-dec", "MON-FRI", "SUN", "FOO", ",", "1,,2", "/", "-", "@every", "@every 1s", "@daily", "@reboot", "L", "W", "#", "\u{0}",
        "１", "e", "1e3", "0x10", "CRON_TZ=UTC", "@every 99999999999999d", "@every -5s",
    ]

    @Test func neverTrapsAndAlwaysEnds() {
        var random = SplitMix64(seed: 16)
        var accepted = 0
        for _ in 0..<20_000 {
            let count = Int(random.next() % 8)
            let text = (0..<count).map { _ in Self.tokens[Int(random.next() % UInt64(Self.tokens.count))] }.joined(separator: " ")
            guard let expression = try? CronExpression(text, allowSeconds: random.next() % 2 == 0) else { continue }
            accepted += 1
            let times = CronSchedule([expression]).upcoming(after: DueTicksTests.t0, count: 3)
            #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 }, "\(text)")
            #expect(times.allSatisfy { $0 > DueTicksTests.t0 }, "\(text)")
        }
        #expect(accepted > 100)
    }
}
