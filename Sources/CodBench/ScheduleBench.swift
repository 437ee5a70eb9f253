import APIClient
import ArgumentParser
import CodTestKit
import Foundation
import Models
import Wire

/// `cod bench schedules`: how late ticks start (the delay from a tick's nominal time to its
/// job being stored, p50/p99 over `ticks` ticks of one-second schedules firing together) and
/// what 10,000 schedules cost an idle orchestrator (CPU and memory, against the same
/// orchestrator before they were created).
struct ScheduleBench {
    var schedules: Int
    var ticks: Int
    var idle: Int
    var idleSeconds: Int

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-schedule-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        print("cod bench schedules: \(ticks) ticks of \(schedules) one-second schedules; \(idle) idle schedules for \(idleSeconds) s")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
        let port = try Ports.free()
        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(port: port, data: base.appendingPathComponent("o"), token: "bench")
        let key = try await cluster.adminKey(data: base.appendingPathComponent("o"))
        let client = CodClient(host: "127.0.0.1", port: port, timeout: .minutes(10), credential: .apiKey(key))
        while (try? await client.schedules()) == nil { try await Task.sleep(for: .milliseconds(100)) }
        let pid = orchestrator.processIdentifier

        // Idle cost first, before any schedule fired: nothing but the schedule loop's pass.
        let before = try await Self.idleCost(pid, seconds: idleSeconds)
        let made = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for index in stride(from: worker, to: idle, by: 8) {
                        _ = try await client.putSchedule(Self.spec("idle-\(index)", cron: "0 3 * * *"))
                    }
                }
            }
            try await group.waitForAll()
        }
        let creation = (ContinuousClock.now - made).inSeconds
        let after = try await Self.idleCost(pid, seconds: idleSeconds)

        // Tick accuracy: every schedule ticks each second; each run records when its job was
        // stored.
        var ids: [String] = []
        for index in 0..<schedules {
            ids.append(try await client.putSchedule(Self.spec("tick-\(index)", cron: "@every 1s", catchUp: .all)).scheduleID)
        }
        // Read once the ticks are past, so reading does not load the orchestrator meanwhile.
        try await Task.sleep(for: .seconds(ticks / max(schedules, 1) + 3))
        for id in ids { try await client.setScheduleSuspended(id, true) }
        var delays: [Double] = []
        for id in ids {
            for run in try await client.scheduleRuns(id, limit: 10_000) where run.outcome == .started && run.key.hasPrefix("tick:") {
                delays.append(Double(run.time - run.nominalTime * 1_000_000_000) / 1_000_000)
            }
        }
        delays = Array(delays.sorted().prefix(ticks))
        func percentile(_ p: Double) -> String {
            guard !delays.isEmpty else { return "-" }
            return String(format: "%.1f ms", delays[min(delays.count - 1, Int(Double(delays.count - 1) * p))])
        }
        print("")
        print(TextTable.render(
            ["TICKS", "SCHEDULES FIRING TOGETHER", "DELAY P50", "DELAY P99", "MAX"],
            [[String(delays.count), String(schedules), percentile(0.5), percentile(0.99), percentile(1)]]))
        print("")
        print(TextTable.render(
            ["IDLE ORCHESTRATOR", "CPU", "RSS"],
            [["no schedules", String(format: "%.2f%% of a core", before.cpu * 100), SoakBench.mib(before.rss)],
             ["\(idle) schedules", String(format: "%.2f%% of a core", after.cpu * 100), SoakBench.mib(after.rss)]]))
        print(String(format: "created %d schedules in %.1f s (%.0f per second, 8 clients)", idle, creation, Double(idle) / max(creation, 0.001)))
    }

    static func spec(_ name: String, cron: String, catchUp: CatchUp = .latest) -> ScheduleSpec {
        ScheduleSpec(
            name: name, timing: ScheduleTiming(crons: [cron], catchUp: catchUp, history: HistoryLimits(succeeded: 10_000 / 10, failed: 1_000)),
            jobTemplate: Bench.trivialJob())
    }

    /// Fraction of a core and resident memory over `seconds` of idling.
    static func idleCost(_ pid: Int32, seconds: Int) async throws -> (cpu: Double, rss: Int64) {
        let start = ScaleBench.cpuSeconds(of: pid)
        try await Task.sleep(for: .seconds(seconds))
        return ((ScaleBench.cpuSeconds(of: pid) - start) / Double(seconds), SoakBench.memory(of: pid).rss)
    }
}
