import APIClient
import ArgumentParser
import Foundation
import JobSpec
import Models
import Scheduler
import Wire

/// `cod schedule ...`: jobs that start themselves on a clock.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Start jobs on a schedule (cron), catch up, backfill, suspend and resume.",
        discussion: """
            A schedule file has Name, Schedule (Crons, TimeZone, StartingDeadline, CatchUp,
            MaxCatchUp, ConcurrencyPolicy, Suspend, History) and JobTemplate (any job). Each tick
            starts exactly one job, named SCHEDULE-UNIXTIME, with COD_SCHEDULED_TIME and
            COD_TRIGGER in its environment. Times are UTC unless TimeZone names an IANA zone.
            """,
        subcommands: [Create.self, List.self, Describe.self, Runs.self, Next.self, Trigger.self, Backfill.self, Suspend.self, Resume.self, Delete.self])

    static func time(_ seconds: Int64?, zone: String = "UTC") -> String {
        guard let seconds else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: zone) ?? TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// RFC 3339 (`2026-12-01T02:00:00Z`) or Unix seconds.
    static func parseTime(_ text: String) throws -> Int64 {
        let seconds: Int64
        if let number = Int64(text) {
            seconds = number
        } else if let nanos = RFC3339.parse(text) {
            seconds = nanos.floorDivided(by: 1_000_000_000)
        } else {
            throw ValidationError("\(text) is not a time: write 2026-12-01T02:00:00Z (RFC 3339) or Unix seconds")
        }
        // 1970 to 9999: cron arithmetic past that is meaningless.
        guard (0...253_402_300_799).contains(seconds) else { throw ValidationError("\(text) is outside the years 1970 to 9999") }
        return seconds
    }

    static func runsTable(_ runs: [ScheduleRun], zone: String) -> String {
        Output.table(
            ["NOMINAL TIME", "OUTCOME", "JOB", "STATE", "NOTE"],
            runs.map { run in
                [time(run.nominalTime, zone: zone), run.outcome == .missed && run.count > 1 ? "Missed x\(run.count)" : run.outcome.rawValue,
                 run.jobID.isEmpty ? "-" : shortID(run.jobID), run.jobState ?? "-", run.message]
            })
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a schedule from a file, or update the one with its name.")
        @Option(name: .shortAndLong, help: "The schedule file (YAML or JSON).") var file: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let spec = try JobSpecParser.parseSchedule(text)
            let response = try await global.client().putSchedule(spec)
            try global.print(response) {
                print("\(response.created ? "Created" : "Updated") schedule \(spec.name) (\(response.scheduleID))")
                print("Next run: \(ScheduleCommand.time(response.nextRunTime, zone: spec.timing.timeZone))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List schedules.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let schedules = try await global.client().schedules()
            try global.print(ListResponse(items: schedules)) {
                print(Output.table(
                    ["ID", "NAME", "NAMESPACE", "CRONS", "ZONE", "NEXT RUN", "LAST TICK", "MISSED", "STATE"],
                    schedules.map { schedule in
                        let timing = schedule.spec.timing
                        return [shortID(schedule.id), schedule.spec.name, schedule.spec.namespace, timing.crons.joined(separator: "; "), timing.timeZone,
                                timing.suspend ? "-" : ScheduleCommand.time(schedule.nextRunTime, zone: timing.timeZone),
                                ScheduleCommand.time(schedule.lastScheduleTime, zone: timing.timeZone), String(schedule.missed),
                                timing.suspend ? "Suspended" : "Active"]
                    }))
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a schedule, its next five runs and its last runs with their outcomes.")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let description = try await global.client().describeSchedule(schedule)
            try global.print(description) {
                let schedule = description.schedule
                let timing = schedule.spec.timing
                print("Schedule:     \(schedule.spec.name) (\(schedule.id))")
                print("Namespace:    \(schedule.spec.namespace)   Owner: \(schedule.owner.isEmpty ? "-" : schedule.owner)")
                print("Crons:        \(timing.crons.joined(separator: "; "))  in \(timing.timeZone)")
                print("CatchUp:      \(timing.catchUp.rawValue) (at most \(timing.maxCatchUp))   StartingDeadline: \(timing.startingDeadline.map { "\($0)s" } ?? "none")")
                print("Concurrency:  \(timing.concurrencyPolicy.rawValue)   History: \(timing.history.succeeded) succeeded, \(timing.history.failed) failed")
                print("State:        \(timing.suspend ? "Suspended" : "Active")   Missed: \(schedule.missed)   Last tick: \(ScheduleCommand.time(schedule.lastScheduleTime, zone: timing.timeZone))")
                for trigger in schedule.spec.triggers {
                    let what = [trigger.jobName.map { " after job \($0)" }, trigger.schedule.map { " after schedule \($0)'s jobs" }].compactMap { $0 }.joined()
                    let dataset = trigger.dataset.map {
                        " when dataset \($0) grows (\((trigger.inputs ?? .delta).rawValue), debounce \(trigger.debounce ?? 0)s)"
                    } ?? ""
                    print("Trigger:      \(trigger.type.rawValue)\(what)\(dataset)")
                }
                if !schedule.warning.isEmpty { print("Warning:      \(schedule.warning)") }
                if !description.active.isEmpty { print("Running:      \(description.active.map(shortID).joined(separator: ", "))") }
                print("\nNext runs:")
                for time in description.nextRuns { print("  \(ScheduleCommand.time(time, zone: timing.timeZone))") }
                if description.nextRuns.isEmpty { print("  none") }
                print("\nLast runs:")
                print(description.runs.isEmpty ? "  none yet" : ScheduleCommand.runsTable(description.runs, zone: timing.timeZone))
            }
        }
    }

    struct Runs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List what a schedule did, newest first: jobs started, ticks skipped or missed.")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @Option(help: "How many (1 to 10000).") var limit = 100
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let client = try await global.client()
            let zone = try await client.describeSchedule(schedule).schedule.spec.timing.timeZone
            let runs = try await client.scheduleRuns(schedule, limit: min(max(limit, 1), 10_000))
            try global.print(ListResponse(items: runs)) { print(runs.isEmpty ? "none yet" : ScheduleCommand.runsTable(runs, zone: zone)) }
        }
    }

    struct Next: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print when a cron expression fires next (computed here, no server needed).")
        @Argument(help: "A cron expression, e.g. \"0 2 * * *\", \"@daily\" or \"@every 15m\".") var cron: String
        @Option(help: "IANA zone (default UTC).") var tz = "UTC"
        @Option(help: "How many times.") var count = 5
        @Option(help: "From this time (RFC 3339 or Unix seconds; default now).") var from: String?
        @Flag(help: "Read a six-field expression's first field as seconds.") var seconds = false

        func run() async throws {
            guard let zone = SystemZone(tz) else { throw ValidationError("\(tz) is not an IANA zone (e.g. UTC, Europe/Lisbon)") }
            guard (1...1000).contains(count) else { throw ValidationError("--count must be from 1 to 1000") }
            let expression: CronExpression
            do {
                expression = try CronExpression(cron, allowSeconds: seconds)
            } catch {
                throw ValidationError(error.description)
            }
            let start = try from.map(ScheduleCommand.parseTime) ?? Int64(Date().timeIntervalSince1970)
            let times = CronSchedule([expression], zone: zone).upcoming(after: start, count: count)
            for time in times { print(ScheduleCommand.time(time, zone: tz)) }
            if times.isEmpty { print("never") }
        }
    }

    struct Trigger: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start the schedule's job now, outside its clock.")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let runs = try await global.client().triggerSchedule(schedule)
            try global.print(ScheduleRunsResponse(runs: runs)) { print(ScheduleCommand.runsTable(runs, zone: "UTC")) }
        }
    }

    struct Backfill: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start a job for every tick in a past range that has none yet.")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @Option(help: "First time (RFC 3339 or Unix seconds).") var from: String
        @Option(help: "Last time (RFC 3339 or Unix seconds).") var to: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let runs = try await global.client().backfillSchedule(
                schedule, from: try ScheduleCommand.parseTime(from), to: try ScheduleCommand.parseTime(to))
            try global.print(ScheduleRunsResponse(runs: runs)) {
                print(runs.isEmpty ? "every tick in the range has a run already" : ScheduleCommand.runsTable(runs, zone: "UTC"))
            }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop starting jobs (running ones go on).")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let result = try await global.client().setScheduleSuspended(schedule, true)
            try global.print(result) { print("Suspended schedule \(result.spec.name)") }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start jobs again from the next tick (ticks while suspended are missed).")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let result = try await global.client().setScheduleSuspended(schedule, false)
            try global.print(result) {
                print("Resumed schedule \(result.spec.name); next run \(ScheduleCommand.time(result.nextRunTime, zone: result.spec.timing.timeZone))")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a schedule (the jobs it started stay).")
        @Argument(help: "Schedule ID, ID prefix or name.") var schedule: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.client().deleteSchedule(schedule)
            print("Deleted schedule \(schedule)")
        }
    }
}
