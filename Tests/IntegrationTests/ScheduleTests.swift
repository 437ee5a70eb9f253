@testable import CodTestKit
import APIClient
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Models
import Testing
import Wire

/// Schedules through the real CLI and API on separate processes.
@Suite("Schedules (separate processes)", .serialized)
struct ScheduleEndToEndTests {
    /// A schedule file whose jobs print their environment (the echo_env fixture, inline).
    static func file(_ cluster: ServeCluster, name: String, crons: [String], extra: String = "", zone: String = "UTC") throws -> String {
        let module = try Data(contentsOf: URL(fileURLWithPath: try Paths.fixture("echo_env"))).base64EncodedString()
        let cronList = crons.map { "\"\($0)\"" }.joined(separator: ", ")
        let text = """
            {"Name": "\(name)", "Schedule": {"Crons": [\(cronList)], "TimeZone": "\(zone)"\(extra)},
             "JobTemplate": {"Type": "batch", "Tasks": [{"Name": "main",
               "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/m.wasm"}},
               "InputSources": [{"Target": "/app/m.wasm", "Source": {"Type": "inline",
                 "Params": {"URL": "data:application/wasm;base64,\(module)"}}}]}]}}
            """
        let path = cluster.base.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(6)).json")
        try Data(text.utf8).write(to: path)
        return path.path
    }

    static func describe(_ cluster: ServeCluster, _ name: String) async throws -> ScheduleDescription {
        let result = try await cluster.cli("schedule", "describe", name, "--output", "json")
        guard result.status == 0 else { throw TestFailure("describe failed: \(result.stderr)") }
        return try JSONDecoder().decode(ScheduleDescription.self, from: Data(result.stdout.utf8))
    }

    /// An orchestrator and one WASM compute node, connected.
    static func start(_ cluster: ServeCluster) async throws -> [Process] {
        let processes = [try cluster.orchestrator(), try cluster.compute(0, ["--engines", "wasm"])]
        try await cluster.waitForNodes(1)
        return processes
    }

    static func waitForAPI(_ cluster: ServeCluster) async throws {
        for _ in 0..<300 {
            if cluster.adminKey != nil, try await cluster.cli("schedule", "list").status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the orchestrator did not start")
    }

    @Test func schedulesRunTriggerBackfillAndRefuseBadSpecs() async throws {
        let cluster = try ServeCluster()
        let processes = try await ScheduleEndToEndTests.start(cluster)
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }

        // A bad expression, an unknown zone and a bad template: every problem by its field,
        // and nothing stored.
        let bad = try Self.file(cluster, name: "bad", crons: ["0 25 * * *"], zone: "Mars/Olympus")
        var text = try String(contentsOfFile: bad, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"Type\": \"batch\"", with: "\"Type\": \"sometimes\"")
        try Data(text.utf8).write(to: URL(fileURLWithPath: bad))
        let refused = try await cluster.cli("schedule", "create", "-f", bad)
        #expect(refused.status != 0)
        for field in ["Schedule.Crons[0]", "hour field \"25\"", "Schedule.TimeZone", "JobTemplate.Type"] {
            #expect(refused.stderr.contains(field), "\(field) in: \(refused.stderr)")
        }
        let list = try await cluster.cli("schedule", "list", "--output", "json")
        #expect(try JSONDecoder().decode(ListResponse<Schedule>.self, from: Data(list.stdout.utf8)).items.isEmpty)

        // Every two seconds, one at a time; each job gets its nominal time and trigger.
        let good = try Self.file(cluster, name: "ticker", crons: ["*/2 * * * * *"], extra: ", \"CronSeconds\": true, \"ConcurrencyPolicy\": \"Forbid\"")
        let created = try await cluster.cli("schedule", "create", "-f", good)
        #expect(created.status == 0, "\(created.stderr)")
        var description = try await Self.describe(cluster, "ticker")
        #expect(description.nextRuns.count == 5 && description.nextRuns.allSatisfy { $0 % 2 == 0 })
        var started: ScheduleRun?
        for _ in 0..<100 {
            description = try await Self.describe(cluster, "ticker")
            if let run = description.runs.first(where: { $0.outcome == .started && $0.jobState == "Completed" }) {
                started = run
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let run = try #require(started, "no scheduled job completed: \(description.runs)")
        let logs = try await cluster.cli("job", "logs", run.jobID)
        let nominal = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(run.nominalTime)))
        #expect(logs.stdout.contains("COD_SCHEDULED_TIME=\(nominal)"), "\(logs.stdout)")
        #expect(logs.stdout.contains("COD_TRIGGER={") && logs.stdout.contains("\"Type\":\"Schedule\""), "\(logs.stdout)")
        // One job per tick: distinct nominal times, each its own job.
        let runs = description.runs.filter { $0.outcome == .started }
        #expect(Set(runs.map(\.nominalTime)).count == runs.count && Set(runs.map(\.jobID)).count == runs.count)

        let listed = try await cluster.cli("schedule", "runs", "ticker", "--limit", "10000")
        #expect(listed.status == 0 && listed.stdout.contains("Started") && listed.stdout.contains(shortID(run.jobID)), "\(listed.stdout)\(listed.stderr)")

        // Suspended: no new runs; resumed, the ticks in between count as missed.
        #expect(try await cluster.cli("schedule", "suspend", "ticker").status == 0)
        let before = try await Self.describe(cluster, "ticker").runs.filter { $0.outcome == .started }.count
        try await Task.sleep(for: .seconds(5))
        let during = try await Self.describe(cluster, "ticker")
        #expect(during.runs.filter { $0.outcome == .started }.count == before && during.nextRuns.isEmpty)
        #expect(try await cluster.cli("schedule", "resume", "ticker").status == 0)
        #expect(try await Self.describe(cluster, "ticker").schedule.missed >= 2)

        // A manual trigger, and a backfill that starts only ticks without a run.
        #expect(try await cluster.cli("schedule", "suspend", "ticker").status == 0)
        let trigger = try await cluster.cli("schedule", "trigger", "ticker", "--output", "json")
        #expect(trigger.status == 0, "\(trigger.stderr)")
        let triggered = try JSONDecoder().decode(ScheduleRunsResponse.self, from: Data(trigger.stdout.utf8)).runs
        #expect(triggered.count == 1 && triggered[0].key.hasPrefix("manual:") && !triggered[0].jobID.isEmpty)
        // Ticks from before the schedule existed have no runs: a backfill starts each once.
        let createdAt = description.schedule.createTime / 1_000_000_000
        let from = createdAt - 9
        let to = createdAt - 1
        let expected = Set(stride(from: from + from % 2, through: to, by: 2))
        let backfill = try await cluster.cli("schedule", "backfill", "ticker", "--from", String(from), "--to", String(to), "--output", "json")
        #expect(backfill.status == 0, "\(backfill.stderr)")
        let filled = try JSONDecoder().decode(ScheduleRunsResponse.self, from: Data(backfill.stdout.utf8)).runs
        #expect(Set(filled.map(\.nominalTime)) == expected && filled.allSatisfy { $0.outcome == .started && !$0.jobID.isEmpty })
        let again = try await cluster.cli("schedule", "backfill", "ticker", "--from", String(from), "--to", String(to), "--output", "json")
        #expect(try JSONDecoder().decode(ScheduleRunsResponse.self, from: Data(again.stdout.utf8)).runs.isEmpty)

        // Another user may read but not change the admin's schedule (its jobs spend the
        // admin's credits).
        let add = try await cluster.cli("auth", "user", "add", "eve", "--capability", "read:job,write:job", "--output", "json")
        #expect(add.status == 0, "\(add.stderr)")
        let key = try #require(add.stdout.split(separator: "\"").drop { $0 != "APIKey" }.dropFirst(2).first.map(String.init))
        var eve = cluster
        eve.extraEnvironment = ["COD_API_KEY": key]
        let denied = try await Run.async([cluster.cod.path, "schedule", "delete", "ticker"], environment: eve.environment.merging(["COD_API_KEY": key]) { $1 })
        #expect(denied.status != 0 && denied.stderr.contains("may not change it"), "\(denied.stderr)")
        // Nor replace it by creating one with its name.
        let replaced = try await Run.async([cluster.cod.path, "schedule", "create", "-f", good], environment: eve.environment.merging(["COD_API_KEY": key]) { $1 })
        #expect(replaced.status != 0 && replaced.stderr.contains("may not change it"), "\(replaced.stderr)")
        #expect(try await Self.describe(cluster, "ticker").schedule.owner == "admin")
        #expect(try await cluster.cli("schedule", "delete", "ticker").status == 0)
        #expect(try await cluster.cli("schedule", "describe", "ticker").status != 0)
    }
}

/// The orchestrator SIGKILLed at random moments across 200 ticks of a one-second schedule:
/// every nominal time gets exactly one job, none is missing and none is made twice.
@Suite("Schedules under a killed orchestrator (separate processes)", .serialized)
struct ScheduleCrashTests {
    @Test func twoHundredTicksThroughKillsMakeOneJobEach() async throws {
        let cluster = try ServeCluster()
        var orchestrator = try cluster.orchestrator()
        defer { if orchestrator.isRunning { orchestrator.interrupt() } }
        try await ScheduleEndToEndTests.waitForAPI(cluster)
        let file = try ScheduleEndToEndTests.file(
            cluster, name: "crash", crons: ["@every 1s"],
            extra: ", \"CatchUp\": \"All\", \"MaxCatchUp\": 1000, \"History\": {\"Succeeded\": 1000, \"Failed\": 1000}")
        let created = try await cluster.cli("schedule", "create", "-f", file, "--output", "json")
        #expect(created.status == 0, "\(created.stderr)")
        let first = try #require(try JSONDecoder().decode(PutScheduleResponse.self, from: Data(created.stdout.utf8)).nextRunTime)
        let last = first + 199
        var random = SplitMix64(seed: UInt64(first))
        var kills = 0
        while Int64(Date().timeIntervalSince1970) <= last {
            try await Task.sleep(for: .milliseconds(300 + Int(random.next() % 2200)))
            cluster.kill9(orchestrator)
            kills += 1
            // Down for a moment or for a few ticks.
            try await Task.sleep(for: .milliseconds(Int(random.next() % 1500)))
            orchestrator = try cluster.orchestrator()
        }
        var description = try await Self.caughtUp(cluster, through: last)
        description = try await ScheduleEndToEndTests.describe(cluster, "crash")
        let runs = try await Self.runs(cluster, description.schedule.id).filter { $0.nominalTime >= first && $0.nominalTime <= last }
        let started = runs.filter { $0.outcome == .started }
        #expect(runs.allSatisfy { $0.outcome == .started }, "\(runs.filter { $0.outcome != .started })")
        #expect(started.count == 200, "\(started.count) runs for 200 ticks after \(kills) kills")
        #expect(Set(started.map(\.nominalTime)) == Set(first...last))
        #expect(Set(started.map(\.jobID)).count == 200)
        // The jobs themselves: one per tick, named for it.
        let jobs = try await cluster.cli("job", "list", "--limit", "1000", "--output", "json")
        let stored = try JSONDecoder().decode(ListResponse<Job>.self, from: Data(jobs.stdout.utf8)).items
        let names = stored.map(\.name).filter { $0.hasPrefix("crash-") }.compactMap { Int64($0.dropFirst(6)) }.filter { $0 >= first && $0 <= last }
        #expect(names.count == 200 && Set(names) == Set(first...last), "\(names.count) jobs")
        #expect(kills >= 60)
    }

    static func caughtUp(_ cluster: ServeCluster, through last: Int64) async throws -> ScheduleDescription {
        for _ in 0..<300 {
            if let description = try? await ScheduleEndToEndTests.describe(cluster, "crash"),
                (description.schedule.lastScheduleTime ?? 0) >= last
            {
                return description
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("the schedule did not catch up to \(last)")
    }

    static func runs(_ cluster: ServeCluster, _ id: String) async throws -> [ScheduleRun] {
        try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).scheduleRuns(id, limit: 10_000)
    }
}

/// Triggers: a signed webhook starts a job (a wrong signature starts nothing), and that job's
/// completion starts the next step with its result as input: a two-step pipeline.
@Suite("Schedule triggers (separate processes)", .serialized)
struct ScheduleTriggerTests {
    static func post(_ cluster: ServeCluster, _ name: String, body: Data, signature: String?, delivery: String) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(cluster.port)/api/v1/orchestrator/schedules/\(name)/webhook")!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue(delivery, forHTTPHeaderField: "X-Cod-Delivery")
        if let signature { request.setValue(signature, forHTTPHeaderField: "X-Cod-Signature") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    static func sign(_ body: Data, _ secret: String) -> String {
        "sha256=" + HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8))).hexString
    }

    @Test func aSignedWebhookStartsAPipeline() async throws {
        let cluster = try ServeCluster()
        let processes = try await ScheduleEndToEndTests.start(cluster)
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }
        let secret = "a-long-shared-secret-0123456789"
        let hook = try ScheduleEndToEndTests.file(cluster, name: "ingest", crons: [])
        var text = try String(contentsOfFile: hook, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"Name\": \"ingest\",", with: "\"Name\": \"ingest\", \"Triggers\": [{\"Type\": \"Webhook\", \"Secret\": \"\(secret)\"}],")
        try Data(text.utf8).write(to: URL(fileURLWithPath: hook))
        let created = try await cluster.cli("schedule", "create", "-f", hook)
        #expect(created.status == 0, "\(created.stderr)")
        let step = try ScheduleEndToEndTests.file(cluster, name: "report", crons: [])
        text = try String(contentsOfFile: step, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"Name\": \"report\",", with: "\"Name\": \"report\", \"Triggers\": [{\"Type\": \"JobCompleted\", \"Schedule\": \"ingest\"}],")
        try Data(text.utf8).write(to: URL(fileURLWithPath: step))
        #expect(try await cluster.cli("schedule", "create", "-f", step).status == 0)

        // Wrong signature, or none: 401, and no job.
        let body = Data("{\"day\": \"2026-12-01\"}".utf8)
        let forged = try await Self.post(cluster, "ingest", body: body, signature: Self.sign(body, "not-the-secret-at-all-000"), delivery: "d1")
        #expect(forged.0 == 401, "\(forged)")
        #expect(try await Self.post(cluster, "ingest", body: body, signature: nil, delivery: "d1").0 == 401)
        #expect(try await ScheduleEndToEndTests.describe(cluster, "ingest").runs.isEmpty)
        let jobs = try await cluster.cli("job", "list", "--output", "json")
        #expect(try JSONDecoder().decode(ListResponse<Job>.self, from: Data(jobs.stdout.utf8)).items.isEmpty)

        // Signed: one job, whose trigger carries the payload; the same delivery again starts nothing.
        let signed = try await Self.post(cluster, "ingest", body: body, signature: Self.sign(body, secret), delivery: "d1")
        #expect(signed.0 == 200, "\(signed)")
        let runs = try JSONDecoder().decode(ScheduleRunsResponse.self, from: Data(signed.1.utf8)).runs
        #expect(runs.count == 1 && runs[0].key == "webhook:d1" && runs[0].outcome == .started)
        let again = try await Self.post(cluster, "ingest", body: body, signature: Self.sign(body, secret), delivery: "d1")
        let repeated = try JSONDecoder().decode(ScheduleRunsResponse.self, from: Data(again.1.utf8)).runs
        #expect(again.0 == 200 && repeated.isEmpty)
        let upstream = try await cluster.waitForEnd(runs[0].jobID)
        #expect(upstream.job.state.stateType == .completed, "\(upstream.job.state.message)")
        let logs = try await cluster.cli("job", "logs", runs[0].jobID)
        #expect(logs.stdout.contains("\"Type\":\"Webhook\"") && logs.stdout.contains("2026-12-01"), "\(logs.stdout)")

        // The second step starts once, after the first completed, with its result as input.
        var next: ScheduleRun?
        for _ in 0..<100 {
            if let run = try await ScheduleEndToEndTests.describe(cluster, "report").runs.first { next = run; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let second = try #require(next)
        #expect(second.key == "job:\(runs[0].jobID):v1")
        let downstream = try await cluster.waitForEnd(second.jobID)
        #expect(downstream.job.state.stateType == .completed, "\(downstream.job.state.message)")
        let resultCID = try #require(upstream.executions?.items.compactMap { $0.publishedResult.params["CID"] }.first)
        #expect(downstream.job.task.inputSources.contains { $0.target == "/inputs/upstream" && $0.source.params["CID"] == resultCID })
        let downstreamLogs = try await cluster.cli("job", "logs", second.jobID)
        #expect(downstreamLogs.stdout.contains("\"Type\":\"JobCompleted\"") && downstreamLogs.stdout.contains(runs[0].jobID))
        try await Task.sleep(for: .seconds(2))
        #expect(try await ScheduleEndToEndTests.describe(cluster, "report").runs.count == 1)

        // A webhook without a secret of its own is refused with the field.
        let weak = try ScheduleEndToEndTests.file(cluster, name: "weak", crons: [])
        text = try String(contentsOfFile: weak, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"Name\": \"weak\",", with: "\"Name\": \"weak\", \"Triggers\": [{\"Type\": \"Webhook\", \"Secret\": \"short\"}],")
        try Data(text.utf8).write(to: URL(fileURLWithPath: weak))
        let refused = try await cluster.cli("schedule", "create", "-f", weak)
        #expect(refused.status != 0 && refused.stderr.contains("Triggers[0].Secret"), "\(refused.stderr)")
    }
}

/// Dataset triggers: adds to a named dataset make its versions, and a burst of adds within the
/// debounce starts one job that reads just the new shards.
@Suite("Dataset triggers (separate processes)", .serialized)
struct DatasetTriggerTests {
    static func folder(_ cluster: ServeCluster, _ name: String, files: [String]) throws -> String {
        let folder = cluster.base.appendingPathComponent("adds/\(name)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in files { try Data("\(file) of \(name)\n".utf8).write(to: folder.appendingPathComponent(file)) }
        return folder.path
    }

    /// A schedule whose jobs print the files they were given, one partition per shard.
    static func schedule(_ cluster: ServeCluster, name: String, trigger: String) throws -> String {
        let text = """
            {"Name": "\(name)", "Triggers": [\(trigger)],
             "JobTemplate": {"Type": "batch", "Tasks": [{"Name": "list",
               "Engine": {"Type": "process", "Params": {"Command": "sh", "Arguments": ["-c", "cd /inputs/data && find . -type f | sort"]}}}]}}
            """
        let path = cluster.base.appendingPathComponent("\(name).json")
        try Data(text.utf8).write(to: path)
        return path.path
    }

    /// The files each of the job's partitions listed, all together, sorted.
    static func listed(_ cluster: ServeCluster, _ jobID: String) async throws -> [String] {
        let ended = try await cluster.waitForEnd(jobID)
        #expect(ended.job.state.stateType == .completed, "\(ended.job.state.message)")
        let outputs = (ended.executions?.items ?? []).filter { $0.computeState.stateType == .completed }.compactMap { $0.runOutput?.stdout }
        return outputs.flatMap { $0.split(separator: "\n").map { String($0.dropFirst(2)) } }.sorted()
    }

    static func runs(_ cluster: ServeCluster, _ name: String, atLeast count: Int) async throws -> [ScheduleRun] {
        for _ in 0..<150 {
            let runs = try await ScheduleEndToEndTests.describe(cluster, name).runs
            if runs.count >= count { return runs }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("schedule \(name) did not start \(count) jobs")
    }

    @Test func fiveAddsWithinTheDebounceStartOneJobWithTheNewData() async throws {
        let cluster = try ServeCluster()
        let processes = [try cluster.orchestrator(), try cluster.compute(0, ["--engines", "process", "--heartbeat-interval", "0.5"])]
        defer {
            for process in processes where process.isRunning { process.interrupt() }
        }
        try await cluster.waitForNodes(1)

        // Version 1 is there before the schedules: Delta starts from it, Full reads it too.
        let first = try await cluster.cli("data", "add", try Self.folder(cluster, "day0", files: ["a.txt"]), "--dataset", "photos")
        #expect(first.status == 0 && first.stdout.contains("version 1"), "\(first.stdout)\(first.stderr)")
        let delta = try Self.schedule(cluster, name: "thumbs", trigger: #"{"Type": "Dataset", "Dataset": "photos", "Debounce": "2s"}"#)
        #expect(try await cluster.cli("schedule", "create", "-f", delta).status == 0)
        let full = try Self.schedule(cluster, name: "census", trigger: #"{"Type": "Dataset", "Dataset": "photos", "Inputs": "Full", "Debounce": 2}"#)
        #expect(try await cluster.cli("schedule", "create", "-f", full).status == 0)
        try await Task.sleep(for: .seconds(3))
        #expect(try await ScheduleEndToEndTests.describe(cluster, "thumbs").runs.isEmpty, "version 1 was there before the schedule")

        // Five adds started together: each lands as its own version (those that lose the race
        // build on the winner), and the burst starts one job per schedule.
        let folders = try (1...5).map { try Self.folder(cluster, "day\($0)", files: ["f\($0).txt"]) }
        let started = Date()
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for folder in folders { group.addTask { try await cluster.cli("data", "add", folder, "--dataset", "photos", "--quiet") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for result in results { #expect(result.status == 0, "\(result.stderr)") }
        let head = try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).namedDataset("photos")
        #expect(head?.version == 6 && head?.dataset.shards.count == 6 && head?.dataset.fileCount == 6)
        let runs = try await Self.runs(cluster, "thumbs", atLeast: 1)
        try await Task.sleep(for: .seconds(3))
        let settled = try await ScheduleEndToEndTests.describe(cluster, "thumbs").runs
        #expect(settled.count == 1 && runs[0].key == "dataset:photos:v6", "\(settled.map(\.key)) after adds over \(Date().timeIntervalSince(started)) s")
        #expect(try await Self.listed(cluster, runs[0].jobID) == (1...5).map { "f\($0).txt" })
        let everything = try await Self.runs(cluster, "census", atLeast: 1)
        #expect(everything.count == 1)
        #expect(try await Self.listed(cluster, everything[0].jobID) == ["a.txt"] + (1...5).map { "f\($0).txt" })
        let logs = try await cluster.cli("job", "describe", runs[0].jobID, "--output", "json")
        #expect(logs.stdout.contains("FromShard"), "the job reads from the first new shard on")

        // The next add starts the next job, with only what it added.
        #expect(try await cluster.cli("data", "add", try Self.folder(cluster, "day6", files: ["g.txt", "h.txt"]), "--dataset", "photos").status == 0)
        let later = try await Self.runs(cluster, "thumbs", atLeast: 2)
        let next = try #require(later.first { $0.key == "dataset:photos:v7" })
        #expect(try await Self.listed(cluster, next.jobID) == ["g.txt", "h.txt"])

        // Version 7's root is the CID of one folder holding every file added, as kubo gives it.
        let union = cluster.base.appendingPathComponent("union")
        try FileManager.default.createDirectory(at: union, withIntermediateDirectories: true)
        for day in ["day0", "day1", "day2", "day3", "day4", "day5", "day6"] {
            let folder = cluster.base.appendingPathComponent("adds/\(day)")
            for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
                try FileManager.default.copyItem(at: folder.appendingPathComponent(file), to: union.appendingPathComponent(file))
            }
        }
        let hashed = try await cluster.cli("data", "add", union.path, "--only-hash", "--quiet")
        let v7 = try await CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey).namedDataset("photos")
        #expect(hashed.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == v7?.dataset.cid, "\(hashed.stdout) \(hashed.stderr)")

        // A dataset only grows: a file it has is refused, and nothing moves.
        let clash = try await cluster.cli("data", "add", try Self.folder(cluster, "again", files: ["a.txt"]), "--dataset", "photos")
        #expect(clash.status != 0 && clash.stderr.contains("already has a.txt"), "\(clash.stderr)")
        let admin = CodClient(baseURL: "127.0.0.1:\(cluster.port)", token: cluster.adminKey)
        let unchanged = try await admin.namedDataset("photos")
        #expect(unchanged?.version == 7)

        // Hostile versions through the API: a negative After, a path for a name, a stale After,
        // and a version that drops a shard are refused by what is wrong, and nothing moves.
        var dropped = try #require(unchanged).dataset
        dropped.shards.removeLast()
        dropped.cid = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"
        var renamed = dropped
        renamed.name = "../photos"
        for (manifest, after, field) in [(dropped, -5, "After"), (renamed, 0, "Dataset.Name"), (dropped, 3, "version 7, not 3"), (dropped, 7, "keeps its 7 shards")] {
            do {
                _ = try await admin.saveDataset(manifest, after: after)
                Issue.record("a hostile version after \(after) was stored")
            } catch let error as CodError {
                #expect(error.message.contains(field), "\(field): \(error.message)")
            }
        }
        #expect(try await admin.namedDataset("photos")?.version == 7)
        #expect(try await admin.namedDataset("../photos") == nil)

        // A Dataset trigger's template that partitions an input of its own is refused by field.
        let bad = cluster.base.appendingPathComponent("bad.json")
        try Data(#"""
            {"Name": "bad", "Triggers": [{"Type": "Dataset", "Dataset": "photos", "Debounce": 100000, "Secret": "x"}],
             "JobTemplate": {"Type": "service", "Tasks": [{"Name": "x", "Engine": {"Type": "process", "Params": {"Command": "true"}}}]}}
            """#.utf8).write(to: bad)
        let refused = try await cluster.cli("schedule", "create", "-f", bad.path)
        #expect(refused.status != 0, "\(refused.stdout)")
        for field in ["Triggers[0].Secret", "JobTemplate.Type"] { #expect(refused.stderr.contains(field), "\(field): \(refused.stderr)") }
    }
}

/// Hostile schedule requests against a running orchestrator: each is refused with a 4xx that
/// names the problem, nothing is stored, and the server stays up.
@Suite("Hostile schedules (separate processes)", .serialized)
struct HostileScheduleTests {
    static func send(_ cluster: ServeCluster, _ method: String, _ path: String, _ body: Data) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(cluster.port)/api/v1/orchestrator/\(path)")!, timeoutInterval: 30)
        request.httpMethod = method
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("Bearer \(cluster.adminKey ?? "")", forHTTPHeaderField: "Authorization")
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func refusedWithReasonsAndTheServerStaysUp() async throws {
        let cluster = try ServeCluster()
        let orchestrator = try cluster.orchestrator()
        defer { if orchestrator.isRunning { orchestrator.interrupt() } }
        try await ScheduleEndToEndTests.waitForAPI(cluster)
        let template = #""JobTemplate": {"Type": "batch", "Tasks": [{"Name": "m", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]}"#
        let manyCrons = Array(repeating: "\"* * * * *\"", count: 1000).joined(separator: ",")
        let cases: [(String, String)] = [
            ("{{{", "not valid JSON"),
            (#"{"Name": "x"}"#, "JobTemplate"),
            (#"{"Name": "x", "Schedule": {"Crons": ["@hourly"], "MaxCatchUp": 1000000000000000}, \#(template)}"#, "Schedule.MaxCatchUp"),
            (#"{"Name": "x", "Schedule": {"Crons": ["@hourly"], "StartingDeadline": "9999999999999999999d"}, \#(template)}"#, "StartingDeadline"),
            (#"{"Name": "x", "Schedule": {"Crons": [\#(manyCrons)]}, \#(template)}"#, "at most 32"),
            (#"{"Name": "../../etc/passwd", "Schedule": {"Crons": ["@hourly"]}, \#(template)}"#, "Name"),
            (#"{"Name": "x", "Schedule": {"Crons": ["@every 99999999999999999d"]}, \#(template)}"#, "Crons[0]"),
            (#"{"Name": "x", "Schedule": {"Crons": ["* * * * * * * * *"], "CronSeconds": true}, \#(template)}"#, "9 fields"),
            (#"{"Name": "x", "Schedule": {"Crons": ["@hourly"], "TimeZone": "../../../etc/passwd"}, \#(template)}"#, "TimeZone"),
            (#"{"Name": "x", "Triggers": [{"Type": "Webhook"}], \#(template)}"#, "Triggers[0].Secret"),
            (#"{"Name": "x", "Triggers": [{"Type": "Sometimes"}], \#(template)}"#, "Triggers"),
        ]
        for (body, reason) in cases {
            let (status, text) = try await Self.send(cluster, "PUT", "schedules", Data(body.utf8))
            #expect((400..<500).contains(status) && text.contains(reason), "\(body.prefix(120)): \(status) \(text.prefix(300))")
        }
        let huge = try await Self.send(cluster, "PUT", "schedules", Data(repeating: UInt8(ascii: " "), count: 3 << 20))
        #expect(huge.0 == 413, "\(huge)")
        // A valid one, then hostile actions on it.
        let valid = #"{"Name": "ok", "Schedule": {"Crons": ["0 3 * * *"]}, \#(template)}"#
        #expect(try await Self.send(cluster, "PUT", "schedules", Data(valid.utf8)).0 == 200)
        for range in [#"{"From": -9223372036854775808, "To": 5}"#, #"{"From": 9223372036854775807, "To": 9223372036854775807}"#, #"{"From": 10, "To": 5}"#] {
            let (status, text) = try await Self.send(cluster, "POST", "schedules/ok/backfill", Data(range.utf8))
            #expect(status == 400 && text.contains("backfill needs"), "\(range): \(status) \(text)")
        }
        let unknown = try await Self.send(cluster, "POST", "schedules/nope/webhook", Data("{}".utf8))
        #expect(unknown.0 == 404)
        let noHook = try await Self.send(cluster, "POST", "schedules/ok/webhook", Data("{}".utf8))
        #expect(noHook.0 == 404 && noHook.1.contains("webhook"))
        let bigHook = try await Self.send(cluster, "POST", "schedules/ok/webhook", Data(count: 3 << 20))
        #expect(bigHook.0 == 413)
        // The server is up, and only the valid schedule is stored, with no runs.
        #expect(orchestrator.isRunning)
        let list = try await cluster.cli("schedule", "list", "--output", "json")
        #expect(try JSONDecoder().decode(ListResponse<Schedule>.self, from: Data(list.stdout.utf8)).items.map(\.spec.name) == ["ok"])
        #expect(try await ScheduleEndToEndTests.describe(cluster, "ok").runs.isEmpty)
    }
}
