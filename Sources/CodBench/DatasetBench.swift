import APIClient
import CodTestKit
import ArgumentParser
import ContentAddressing
import Foundation
import Models
import Wire

/// `cod bench dataset`: the Lisbon rainfall filter over a generated dataset of sensor
/// logs (1 GiB in 64 shards by default) on 1..N compute processes, next to `grep` over the
/// same files on this machine, measured in the same run.
struct DatasetBench {
    var bytes: Int
    var shards: Int
    var maxComputes: Int
    var keepData = false
    /// Runs the job Fast, Verified (2 replicas) and Adaptive on one cluster of `maxComputes`
    /// instead of the 1..N curve.
    var compareVerification = false
    /// `Benchmarks/ray-lisbon.sh`: runs the same filter with Ray over the same files.
    var ray: URL?

    /// The map's filter: rainy readings in the bounding box of the 10 km circle around Lisbon
    /// (the same expression as examples/weather).
    static let boxFilter =
        #"^[^,]*,[^,]*,38\.(6[3-9]|7[0-9]|8[01])[0-9]*,-9\.(0[2-9]|1[0-9]|2[0-5])[0-9]*,[^,]*,[^,]*,([1-9][0-9]*\.[0-9]|0\.[1-9])$"#
    /// The reduce: readings truly within 10 km, counted and summed.
    static let circleFilter = #"""
        awk -F, -v lat=38.7223 -v lon=-9.1393 'function rad(d) { return d * 3.141592653589793 / 180 }
        { dlat = rad($3 - lat); dlon = rad($4 - lon); a = sin(dlat / 2) ^ 2 + cos(rad(lat)) * cos(rad($3)) * sin(dlon / 2) ^ 2;
          if (2 * 6371 * atan2(sqrt(a), sqrt(1 - a)) <= 10) { n++; total += $7 } }
        END { printf "%d readings, %.1f mm\n", n, total }'
        """#

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-dataset-bench-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { if !keepData { try? FileManager.default.removeItem(at: base) } }
        print("cod bench dataset: the Lisbon rainfall filter over \(ResourceParsing.formatBytes(UInt64(bytes))) of sensor logs in \(shards) shards")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")

        let logs = base.appendingPathComponent("logs")
        let clock = ContinuousClock()
        var started = clock.now
        let lines = try Self.generate(into: logs, files: shards, bytes: bytes)
        print("generated \(lines) readings in \(shards) files in \(Self.seconds(clock.now - started))")

        // The floor: grep over the same files on one machine, page cache warm (one unmeasured
        // run first), then the same awk over its output.
        let files = try FileManager.default.contentsOfDirectory(atPath: logs.path).sorted().map { logs.appendingPathComponent($0).path }
        let floorCommand = "grep -hE '\(Self.boxFilter)' \(files.joined(separator: " ")) | \(Self.circleFilter)"
        _ = try Self.shell(floorCommand)
        var floorTimes: [Duration] = []
        var floorAnswer = ""
        for _ in 0..<3 {
            started = clock.now
            floorAnswer = try Self.shell(floorCommand)
            floorTimes.append(clock.now - started)
        }
        let oneCore = floorTimes.min()!
        print("grep + awk, one process: \(Self.seconds(oneCore)) (best of 3) -> \(floorAnswer.trimmingCharacters(in: .whitespacesAndNewlines))")
        // The floor is what the machine does with all its cores: one grep per core over its
        // share of the files, each into its own file (pipes would interleave their lines),
        // then the same awk over them all.
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let allCoreCommand = Self.allCoreFloor(files: files, cores: cores, scratch: base.appendingPathComponent("floor"))
        _ = try Self.shell(allCoreCommand)
        var allCoreTimes: [Duration] = []
        for _ in 0..<3 {
            started = clock.now
            let answer = try Self.shell(allCoreCommand)
            allCoreTimes.append(clock.now - started)
            guard answer == floorAnswer else { throw ValidationError("the all-core floor answered \(answer), one grep \(floorAnswer)") }
        }
        let floor = allCoreTimes.min()!
        print("floor: grep + awk, \(cores) processes (one per core): \(Self.seconds(floor)) (best of 3)")
        var peer: Duration?
        if let ray {
            peer = try Self.ray(script: ray, logs: logs, cpus: cores, expected: floorAnswer)
            print("Ray, one task per file running the same grep, \(cores) CPUs: \(Self.seconds(peer!)) (best of 3)")
        }

        if compareVerification {
            try await compareModes(logs: logs, base: base.appendingPathComponent("verification"), executable: executable, floorAnswer: floorAnswer)
            return
        }
        var rows: [[String]] = []
        for computes in 1...maxComputes {
            let result = try await runCluster(computes: computes, logs: logs, base: base.appendingPathComponent("cluster-\(computes)"), executable: executable)
            let match = result.answer == floorAnswer.trimmingCharacters(in: .whitespacesAndNewlines)
            rows.append([
                String(computes), Self.seconds(result.best), String(format: "%.2fx", Self.ratio(result.best, floor)),
                String(format: "%.2fx", Self.ratio(result.best, oneCore)), peer.map { String(format: "%.2fx", Self.ratio(result.best, $0)) } ?? "-",
                Self.seconds(result.addTime), ResourceParsing.formatBytes(result.local), ResourceParsing.formatBytes(result.network),
                match ? "same" : "DIFFERENT: \(result.answer)",
            ])
            print("\(computes) compute process\(computes == 1 ? "" : "es"): \(result.runs.map(Self.seconds).joined(separator: ", ")) (best \(Self.seconds(result.best)), \(String(format: "%.2fx", Self.ratio(result.best, floor))) the floor)")
        }
        print("")
        print(TextTable.render(
            ["COMPUTES", "JOB (BEST OF 3)", "VS ALL-CORE FLOOR", "VS ONE GREP", "VS RAY", "DATA ADD", "READ LOCALLY", "READ OVER NETWORK", "ANSWER"],
            rows))
    }

    struct ClusterResult {
        var runs: [Duration]
        var best: Duration { runs.min()! }
        var addTime: Duration
        var local: UInt64
        var network: UInt64
        var answer: String
    }

    func runCluster(computes: Int, logs: URL, base: URL, executable: URL) async throws -> ClusterResult {
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let port = try Ports.free()
        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(port: port, data: base.appendingPathComponent("o"), token: "bench", ["--heartbeat-interval", "0.5"])
        for index in 0..<computes {
            _ = try cluster.compute(index, port: port, data: base.appendingPathComponent("c\(index)"), token: "bench", engines: "process")
        }
        let key = try await cluster.adminKey(data: base.appendingPathComponent("o"))
        let client = CodClient(host: "127.0.0.1", port: port, timeout: .minutes(10), credential: .apiKey(key))
        try await cluster.waitForComputes(computes, client: client, orchestrator: orchestrator)
        let clock = ContinuousClock()
        var started = clock.now
        // Added as a user would: `cod data add --shards`, which prints the dataset's CID.
        let datasetCID = try Self.cod(
            executable, apiKey: key, ["data", "add", logs.path, "--shards", String(shards), "--replication", "1", "--name", "bench", "--cid-version", "1",
                         "--quiet", "--api-host", "127.0.0.1", "--api-port", String(port)])
        let addTime = clock.now - started

        var runs: [Duration] = []
        var local: UInt64 = 0
        var network: UInt64 = 0
        var answer = ""
        for _ in 0..<3 {
            started = clock.now
            let submitted = try await client.submit(Self.job(datasetCID))
            var job = try await client.job(submitted.jobID).job
            while !job.state.stateType.isTerminal {
                job = try await client.wait(submitted.jobID, afterRevision: job.revision, timeoutSeconds: 30)
            }
            runs.append(clock.now - started)
            guard job.state.stateType == .completed else {
                throw ValidationError("the job \(job.state.stateType.rawValue.lowercased()): \(job.state.message)")
            }
            let executions = try await client.executions(job.id)
            local = executions.filter { !$0.isReduce }.reduce(0) { $0 + ($1.inputStats?.localBytes ?? 0) }
            network = executions.filter { !$0.isReduce }.reduce(0) { $0 + ($1.inputStats?.networkBytes ?? 0) }
            answer = executions.first(where: \.isReduce)?.runOutput?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        }
        return ClusterResult(runs: runs, addTime: addTime, local: local, network: network, answer: answer)
    }

    /// CPU seconds used so far by `processes` and the children they waited for (sandboxes,
    /// runners), from /proc.
    static func cpuSeconds(_ processes: [Process]) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return processes.reduce(0) { total, process in
            guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")")
            else { return total }
            // Fields after the command: state is field 3; utime, stime, cutime, cstime are 14-17.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 15 else { return total }
            let used = fields[11...14].compactMap { Double($0) }.reduce(0, +)
            return total + used / ticks
        }
    }

    /// The same job Fast, Verified (2 replicas, quorum 2) and Adaptive, three runs each, on one
    /// cluster whose dataset has 2 replicas of every shard (so replicas read locally too).
    /// Adaptive runs after Verified, when every node's reputation for the program is warm.
    func compareModes(logs: URL, base: URL, executable: URL, floorAnswer: String) async throws {
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        let port = try Ports.free()
        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(port: port, data: base.appendingPathComponent("o"), token: "bench", ["--heartbeat-interval", "0.5"])
        var processes = [orchestrator]
        for index in 0..<maxComputes {
            processes.append(try cluster.compute(index, port: port, data: base.appendingPathComponent("c\(index)"), token: "bench", engines: "process"))
        }
        let key = try await cluster.adminKey(data: base.appendingPathComponent("o"))
        let client = CodClient(host: "127.0.0.1", port: port, timeout: .minutes(10), credential: .apiKey(key))
        try await cluster.waitForComputes(maxComputes, client: client, orchestrator: orchestrator)
        let datasetCID = try Self.cod(
            executable, apiKey: key, ["data", "add", logs.path, "--shards", String(shards), "--replication", String(min(2, maxComputes)), "--name", "bench",
                         "--cid-version", "1", "--quiet", "--api-host", "127.0.0.1", "--api-port", String(port)])
        print("\(maxComputes) compute processes; dataset added with 2 replicas of each shard")
        let modes: [(String, Verification?)] = [
            ("Fast", nil),
            ("Verified", Verification(mode: .verified, replicas: 2, quorum: 2)),
            ("Adaptive", Verification(mode: .verified, replicas: 2, quorum: 2, adaptive: true)),
        ]
        var rows: [[String]] = []
        var fastBest: Duration?
        for (name, verification) in modes {
            var runs: [(wall: Duration, cpu: Double, executions: Int, alone: Int, answer: String)] = []
            for _ in 0..<3 {
                var job = Self.job(datasetCID)
                job.verification = verification
                let cpuBefore = Self.cpuSeconds(processes)
                let clock = ContinuousClock()
                let started = clock.now
                let submitted = try await client.submit(job)
                var current = try await client.job(submitted.jobID).job
                while !current.state.stateType.isTerminal {
                    current = try await client.wait(submitted.jobID, afterRevision: current.revision, timeoutSeconds: 30)
                }
                let wall = clock.now - started
                guard current.state.stateType == .completed else {
                    throw ValidationError("the \(name) job \(current.state.stateType.rawValue.lowercased()): \(current.state.message)")
                }
                let executions = try await client.executions(current.id)
                let maps = executions.filter { !$0.isReduce && $0.computeState.stateType == .completed }
                let answer = executions.first(where: \.isReduce)?.runOutput?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                runs.append((wall, Self.cpuSeconds(processes) - cpuBefore, maps.count, maps.filter { $0.alone == true }.count, answer))
                print("\(name): \(Self.seconds(wall)), \(String(format: "%.1f", runs.last!.cpu)) CPU s, \(maps.count) map executions for \(shards) partitions")
            }
            let best = runs.min { $0.wall < $1.wall }!
            if verification == nil { fastBest = best.wall }
            let cpu = runs.map(\.cpu).reduce(0, +) / Double(runs.count)
            let same = runs.allSatisfy { $0.answer == floorAnswer.trimmingCharacters(in: .whitespacesAndNewlines) }
            rows.append([
                name, Self.seconds(best.wall), fastBest.map { String(format: "%.2fx", Self.ratio(best.wall, $0)) } ?? "-",
                String(format: "%.1f", cpu), String(format: "%.1f", Double(runs.map(\.executions).reduce(0, +)) / Double(runs.count) / Double(shards)),
                String(runs.map(\.alone).reduce(0, +) / runs.count), same ? "same" : "DIFFERENT",
            ])
        }
        print("")
        print(TextTable.render(["MODE", "JOB (BEST OF 3)", "VS FAST", "CPU S (MEAN)", "EXECUTIONS PER PARTITION", "ALONE (MEAN)", "ANSWER"], rows))
    }

    /// Runs `cod` with `arguments` and returns what it printed, trimmed; a failure says what it printed.
    static func cod(_ executable: URL, apiKey: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["COD_API_KEY": apiKey]) { $1 }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0 else { throw ValidationError("cod \(arguments.prefix(2).joined(separator: " ")) failed: \(text)") }
        return text
    }

    /// The map/reduce job: one partition per shard where the shard lives, then the reduce.
    static func job(_ cid: String) -> Job {
        var map = JobTask(
            name: "map",
            engine: SpecConfig(type: "process", params: [
                "Command": "sh",
                "Arguments": ["-c", .string("grep -rhE '\(boxFilter)' /inputs > /outputs/candidates.csv || test $? -eq 1")],
            ]),
            publisher: SpecConfig(type: "ipfs"))
        map.inputSources = [InputSource(
            source: SpecConfig(type: "ipfs", params: ["CID": .string(cid), "Partition": ["By": "shard"], "Locality": "local"]), target: "/inputs")]
        map.resultPaths = [ResultPath(name: "outputs", path: "/outputs")]
        map.resources = ResourcesConfig(cpu: "0.25", memory: "256Mb")
        let reduce = JobTask(
            name: "reduce",
            engine: SpecConfig(type: "process", params: ["Command": "sh", "Arguments": ["-c", .string("cat /inputs/*/outputs/candidates.csv | \(circleFilter)")]]),
            publisher: SpecConfig(type: "ipfs"))
        // Unnamed: each run is its own job.
        return Job(name: "", type: "batch", tasks: [map, reduce])
    }

    /// Writes `files` CSV files of hourly readings totalling about `bytes`, deterministic.
    static func generate(into folder: URL, files: Int, bytes: Int) throws -> Int {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var rng = SplitMix64(seed: 42)
        func unit() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
        func tenths(_ value: Int) -> String { Self.tenths(value) }
        // Sensors: one in eight within ~15 km of Lisbon, the rest over Portugal.
        let sensors = (0..<2000).map { index -> (String, String, String) in
            let lat: Double, lon: Double
            if index % 8 == 0 {
                let distance = unit() * 15 / 111, angle = unit() * 2 * Double.pi
                lat = 38.7223 + distance * sin(angle)
                lon = -9.1393 + distance * cos(angle) / cos(38.7223 * Double.pi / 180)
            } else {
                lat = 37 + unit() * 5
                lon = -9.4 + unit() * 3.1
            }
            return (String(format: "s%04d", index), String(format: "%.4f", lat), String(format: "%.4f", lon))
        }
        let perFile = bytes / files
        var lines = 0
        var hour = 0
        let start = 1_735_689_600  // 2025-01-01T00:00:00Z
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        for file in 0..<files {
            var text = ""
            text.reserveCapacity(perFile + 256)
            while text.utf8.count < perFile {
                let stamp = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(start + hour * 3600)))
                for (name, lat, lon) in sensors {
                    // Values in tenths, formatted by hand: this writes a gigabyte quickly.
                    let rain = unit() < 0.12 ? Int(-log(max(unit(), 1e-9)) * 18) : 0
                    let temperature = 110 + Int(rng.next() % 100)
                    let pressure = 10050 + Int(rng.next() % 200)
                    text += stamp + "," + name + "," + lat + "," + lon + "," + tenths(temperature) + "," + tenths(pressure) + "," + tenths(rain) + "\n"
                    lines += 1
                }
                hour += 1
            }
            try Data(text.utf8).write(to: folder.appendingPathComponent(String(format: "logs-%03d.csv", file)))
        }
        return lines
    }

    static func tenths(_ value: Int) -> String {
        String(value / 10) + "." + String(value % 10)
    }

    /// `text` as one word for `sh`.
    static func quoted(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// One `grep` per core, each over every `cores`-th file into its own output, then the
    /// reduce's `awk` over all of them.
    static func allCoreFloor(files: [String], cores: Int, scratch: URL) -> String {
        var script = "rm -rf \(quoted(scratch.path)); mkdir -p \(quoted(scratch.path))\n"
        for core in 0..<max(cores, 1) {
            let share = stride(from: core, to: files.count, by: max(cores, 1)).map { quoted(files[$0]) }.joined(separator: " ")
            script += "grep -hE \(quoted(boxFilter)) \(share) > \(quoted(scratch.appendingPathComponent("part-\(core)").path)) &\n"
        }
        script += "wait\ncat \(quoted(scratch.path))/part-* | \(circleFilter)\n"
        return script
    }

    /// Ray's best of 3 over the same files, from its script's last line; its answer must be
    /// the floor's.
    static func ray(script: URL, logs: URL, cpus: Int, expected: String) throws -> Duration {
        let output = try shell(
            [script.path, logs.path, boxFilter, circleFilter, "--cpus", String(cpus)].map(quoted).joined(separator: " "))
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix("ray best: ") }),
            let seconds = Double(line.dropFirst("ray best: ".count).prefix { $0 != " " })
        else { throw ValidationError("the Ray script printed no result:\n\(output)") }
        let answer = line.components(separatedBy: " -> ").last ?? ""
        guard answer == expected.trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw ValidationError("Ray answered \(answer), grep \(expected)")
        }
        return .milliseconds(Int64(seconds * 1000))
    }

    static func shell(_ command: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self)
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.2f s", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    static func ratio(_ a: Duration, _ b: Duration) -> Double {
        (Double(a.components.seconds) + Double(a.components.attoseconds) / 1e18) / max(Double(b.components.seconds) + Double(b.components.attoseconds) / 1e18, 1e-9)
    }
}
