import Foundation
import JobSpec
import Models
import Scheduler
import Testing

/// Cron parsing and next-fire times, against croniter as the oracle.
@Suite("Cron expressions")
struct CronTests {
    static func schedule(_ cron: String, zone: String = "UTC", seconds: Bool = false) throws -> CronSchedule {
        let zoneRules = try #require(SystemZone(zone))
        return CronSchedule([try CronExpression(cron, allowSeconds: seconds)], zone: zoneRules)
    }

    static func unix(_ text: String) -> Int64 {
        Int64(ISO8601DateFormatter().date(from: text)!.timeIntervalSince1970)
    }

    static func iso(_ time: Int64, zone: String = "UTC") -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: zone)
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(time)))
    }

    /// Thousands of random expressions in nine zones (a quarter in DST weeks of Lisbon and New
    /// York): every next time equals croniter's, except at the clock changes where Cod's
    /// documented rule differs. Those cases are counted by kind and each is checked against the
    /// rule itself.
    @Test func matchesCroniter() throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Python/croniter_oracle.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, "20261203", "3000"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "croniter_oracle.py failed: is croniter installed (scripts/install-test-deps.sh)?")
        struct Case: Decodable {
            let cron: String
            let zone: String
            let start: Int64
            let next: [Int64]
        }
        let cases = try String(decoding: output, as: UTF8.self).split(separator: "\n").map {
            try JSONDecoder().decode(Case.self, from: Data($0.utf8))
        }
        #expect(cases.count == 3000)
        var compared = 0
        var differences: [String] = []
        var gapFirings = 0
        var secondOccurrences = 0
        for item in cases {
            let zone = try #require(SystemZone(item.zone))
            let schedule = CronSchedule([try CronExpression(item.cron)], zone: zone)
            let ours = schedule.upcoming(after: item.start, count: item.next.count)
            compared += ours.count
            guard ours != item.next else { continue }
            // Cod's rule for the days the clocks change (documented on CronSchedule), where
            // croniter differs: a wall time the clocks jumped over fires at the jump (croniter
            // may skip it), and a wall time that happens twice fires once (croniter fires both).
            let horizon = min(ours.last ?? .max, item.next.last ?? .max)
            let onlyOurs = Set(ours.filter { $0 <= horizon }).subtracting(item.next)
            let onlyTheirs = Set(item.next.filter { $0 <= horizon }).subtracting(ours)
            let explained =
                onlyOurs.allSatisfy { time in Self.isJump(time, zone) }
                && onlyTheirs.allSatisfy { time in Self.isSecondOccurrence(time, zone) }
            if explained {
                gapFirings += onlyOurs.count
                secondOccurrences += onlyTheirs.count
                continue
            }
            differences.append(
                "\(item.cron) in \(item.zone) after \(Self.iso(item.start, zone: item.zone)):\n  cod      \(ours.map { Self.iso($0, zone: item.zone) })\n  croniter \(item.next.map { Self.iso($0, zone: item.zone) })")
        }
        #expect(compared == 3000 * 8)
        for difference in differences.prefix(10) { print(difference) }
        #expect(differences.isEmpty, "\(differences.count) cases differ from croniter beyond Cod's DST rule")
        // The DST weeks do exercise the rule.
        #expect(gapFirings > 0)
        #expect(secondOccurrences > 0)
    }

    /// Whether `time` is an instant at which the clocks jumped forward.
    static func isJump(_ time: Int64, _ zone: SystemZone) -> Bool {
        zone.offset(at: time) > zone.offset(at: time - 1)
    }

    /// Whether the wall time at `time` was already shown once, before the clocks went back.
    static func isSecondOccurrence(_ time: Int64, _ zone: SystemZone) -> Bool {
        guard let change = zone.nextTransition(after: time - 26 * 3600), change <= time else { return false }
        let back = zone.offset(at: change - 1) - zone.offset(at: change)
        return back > 0 && time - change < back
    }
}
