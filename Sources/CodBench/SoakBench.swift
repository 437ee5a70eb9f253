import APIClient
import CodTestKit
import ArgumentParser
import Foundation
import Models
import Wire

/// `cod bench soak`: many short jobs through one orchestrator process and several
/// compute processes, while compute processes are killed (SIGKILL) and restarted at random.
/// Reports how every job ended (none may be lost, no partition may complete twice),
/// throughput, the orchestrator's memory, and its store's size before and after garbage
/// collection.
struct SoakBench {
    var jobs: Int
    var computes: Int
    /// Mean seconds between kills; 0 kills nothing.
    var killInterval: Double
    /// Ended jobs kept by the garbage collection at the end.
    var keepJobs: Int
    /// Leave the cluster's data folder (stores, logs) for inspection.
    var keepData = false
    /// Submissions in flight at once.
    var inFlight = 64

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-soak-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        // The logs stay for a look when something went wrong.
        var keepLogs = keepData
        defer { if !keepLogs { try? FileManager.default.removeItem(at: base) } }
        let port = try Ports.free()
        print("cod bench soak: \(jobs) short WASM jobs (results published by CID) across \(computes) compute processes")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB; "
            + (killInterval > 0 ? "a random compute process is killed (SIGKILL) and restarted every ~\(killInterval) s" : "no kills"))

        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(
            port: port, data: base.appendingPathComponent("o"), token: "soak",
            ["--node-timeout", "5", "--heartbeat-interval", "0.5", "--keep-jobs", String(keepJobs), "--job-retention", "0", "--gc-interval", "86400"])
        @Sendable func startCompute(_ index: Int) throws -> Process {
            try cluster.compute(index, port: port, data: base.appendingPathComponent("c\(index)"), token: "soak", engines: "wasm")
        }
        let initial = try (0..<computes).map(startCompute)
        let client = CodClient(host: "127.0.0.1", port: port, credential: .apiKey(try await cluster.adminKey(data: base.appendingPathComponent("o"))))
        try await cluster.waitForComputes(computes, client: client, orchestrator: orchestrator)

        // Kill and restart compute processes while the jobs run.
        let killer = killAndRestart(initial, start: startCompute)

        let job = Bench.trivialJob(publisher: "ipfs")
        let start = ContinuousClock.now
        let (ids, submitErrors) = try await submitAll(job, client: client)
        let submitted = ContinuousClock.now - start

        // Wait for every job to end (bounded), counting how each did.
        let (states, failures) = try await waitForAll(ids, client: client)
        let elapsed = ContinuousClock.now - start
        killer.cancel()
        let kills = await killer.value

        // No partition may have completed twice (checked on every job that completed).
        let doubled = try await countCompletedTwice(ids, client: client)

        let memory = Self.memory(of: orchestrator.processIdentifier)
        let data = base.appendingPathComponent("o/orchestrator")
        let before = Self.parts(of: data)
        let collectStart = ContinuousClock.now
        let collected = try await client.collectGarbage()
        let collectTime = ContinuousClock.now - collectStart
        let after = Self.parts(of: data)
        let memoryAfter = Self.memory(of: orchestrator.processIdentifier)

        let completed = states[.completed, default: 0]
        let failed = states.filter { $0.key != .completed }.values.reduce(0, +)
        let lost = jobs - completed - failed
        print("\nResults:")
        print("  jobs: \(jobs) submitted (\(submitErrors) submissions refused), \(completed) completed, \(failed) failed, \(lost) lost (never ended or unknown)")
        for (message, count) in failures.sorted(by: { $0.value > $1.value }).prefix(5) { print("    failed \(count)x: \(message)") }
        print("  partitions completed twice: \(doubled)")
        print("  compute processes killed and restarted: \(kills)")
        print(String(format: "  all submitted in %.1f s; all ended in %.1f s: %.0f jobs/s", submitted.inSeconds, elapsed.inSeconds,
            Double(completed + failed) / elapsed.inSeconds))
        print("  orchestrator memory: RSS \(Self.mib(memory.rss)) now, \(Self.mib(memory.peak)) peak; after garbage collection \(Self.mib(memoryAfter.rss))")
        print("  orchestrator data on disk, before -> after garbage collection "
            + String(format: "(removed %d jobs, %d executions, %d result blocks in %.1f s; kept the newest %d):", collected.jobs,
                collected.executions, collected.blocks, collectTime.inSeconds, keepJobs))
        for (name, bytes) in before {
            print("    \(name): \(Self.mib(bytes)) -> \(Self.mib(after.first { $0.0 == name }?.1 ?? 0))")
        }
        if lost > 0 || doubled > 0 {
            keepLogs = true
            print("  logs kept in \(base.path)")
            throw ExitCode(1)
        }
        if keepData { print("  data and logs kept in \(base.path)") }
    }

    /// Kills a random compute process every ~`killInterval` seconds and restarts it 0.3 s
    /// later on the same data folder; the task's value is the number of kills.
    func killAndRestart(_ initial: [Process], start: @escaping @Sendable (Int) throws -> Process) -> Task<Int, Never> {
        let killInterval = self.killInterval
        return Task { () -> Int in
            guard killInterval > 0 else { return 0 }
            var nodes = initial
            var kills = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(Int64(killInterval * Double.random(in: 0.5...1.5) * 1000)))
                if Task.isCancelled { break }
                let index = Int.random(in: 0..<nodes.count)
                kill(nodes[index].processIdentifier, SIGKILL)
                nodes[index].waitUntilExit()
                kills += 1
                try? await Task.sleep(for: .milliseconds(300))
                if let restarted = try? start(index) { nodes[index] = restarted }
            }
            return kills
        }
    }

    /// Submits `jobs` copies of the job, `inFlight` at a time; returns the IDs and how many
    /// submissions were refused.
    func submitAll(_ job: Job, client: CodClient) async throws -> (ids: [String], refused: Int) {
        var ids: [String] = []
        var submitErrors = 0
        try await withThrowingTaskGroup(of: String?.self) { group in
            var next = 0
            func add() {
                group.addTask {
                    // The API answers even while nodes die; a refused submission is counted.
                    try? await client.submit(job).jobID
                }
                next += 1
            }
            while next < min(inFlight, jobs) { add() }
            for try await id in group {
                if let id { ids.append(id) } else { submitErrors += 1 }
                if next < jobs { add() }
                if ids.count % 1000 == 0 && id != nil { print("  submitted \(ids.count)") }
            }
        }
        return (ids, submitErrors)
    }

    /// Waits for every job to end (at most 10 minutes each); returns how many ended in each
    /// state and the commonest failure messages. Jobs that never end are counted by the caller.
    func waitForAll(_ ids: [String], client: CodClient) async throws -> (states: [JobStateType: Int], failures: [String: Int]) {
        var states: [JobStateType: Int] = [:]
        var failures: [String: Int] = [:]
        try await withThrowingTaskGroup(of: (String, Job?).self) { group in
            var pending = ids[...]
            func add() {
                guard let id = pending.popFirst() else { return }
                group.addTask {
                    let waitUntil = ContinuousClock.now + .seconds(600)
                    var revision: UInt64 = 0
                    while ContinuousClock.now < waitUntil {
                        guard let job = try? await client.wait(id, afterRevision: revision, timeoutSeconds: 30) else {
                            try await Task.sleep(for: .milliseconds(200))
                            continue
                        }
                        if job.state.stateType.isTerminal { return (id, job) }
                        revision = job.revision
                    }
                    return (id, nil)
                }
            }
            for _ in 0..<inFlight { add() }
            for try await (_, job) in group {
                if let job {
                    states[job.state.stateType, default: 0] += 1
                    if job.state.stateType != .completed { failures[String(job.state.message.prefix(120)), default: 0] += 1 }
                }
                let done = states.values.reduce(0, +)
                if done % 1000 == 0 && job != nil { print("  ended \(done)") }
                add()
            }
        }
        return (states, failures)
    }

    /// How many completed jobs have a partition that completed twice.
    func countCompletedTwice(_ ids: [String], client: CodClient) async throws -> Int {
        var doubled = 0
        try await withThrowingTaskGroup(of: Bool.self) { group in
            var pending = ids[...]
            func add() {
                guard let id = pending.popFirst() else { return }
                group.addTask {
                    let executions = (try? await client.executions(id)) ?? []
                    let completed = executions.filter { $0.computeState.stateType == .completed }
                    return Set(completed.map(\.partitionIndex)).count != completed.count
                }
            }
            for _ in 0..<inFlight { add() }
            for try await twice in group {
                if twice { doubled += 1 }
                add()
            }
        }

        return doubled
    }

    static func mib(_ bytes: Int64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }

    /// Current and peak resident memory of a process, from /proc.
    static func memory(of pid: Int32) -> (rss: Int64, peak: Int64) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int64 {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int64(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// Sizes of the orchestrator's database, content store and result bundles, and their total.
    static func parts(of data: URL) -> [(String, Int64)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: data.path)) ?? []
        let database = names.filter { $0.hasPrefix("state.sqlite") }.map { size(of: data.appendingPathComponent($0)) }.reduce(0, +)
        let store = size(of: data.appendingPathComponent("store"))
        let bundles = size(of: data.appendingPathComponent("results"))
        return [("database (SQLite and its WAL)", database), ("content store", store), ("result bundles", bundles),
                ("total", database + store + bundles)]
    }

    /// Bytes on disk (allocated blocks) of a file, or of the files under a folder.
    static func size(of url: URL) -> Int64 {
        func allocated(_ path: String) -> Int64 {
            var info = stat()
            return lstat(path, &info) == 0 ? Int64(info.st_blocks) * 512 : 0
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return 0 }
        guard isDirectory.boolValue else { return allocated(url.path) }
        var total: Int64 = 0
        for case let file as String in FileManager.default.enumerator(atPath: url.path) ?? FileManager.DirectoryEnumerator() {
            total += allocated(url.appendingPathComponent(file).path)
        }
        return total
    }
}
