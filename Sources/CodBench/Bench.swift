import APIClient
public import ArgumentParser
import BlockStore
import CodServers
import CodTestKit
import ComputeNode
import CSystemShims
import ContentAddressing
import Crypto
import Foundation
import Logging
import Models
import ServiceLifecycle

/// `cod bench`: the benchmark suites, each a subcommand with its own options. `cod bench`
/// alone runs `jobs`.
public struct Bench: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Measure Cod: job latency and throughput, content import, Docker overhead, a soak, scale and a sharded dataset.",
        subcommands: [Jobs.self, Import.self, Docker.self, Soak.self, Scale.self, Dataset.self, Estimate.self, Schedules.self], defaultSubcommand: Jobs.self)

    public init() {}

    /// `cod bench jobs`: submit-to-Completed latency and throughput for a trivial WASM job.
    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Job latency and throughput on a devstack (started in-process unless --api-port is given).")
        @Option(help: "Sequential jobs for the latency figures.") var jobs = 200
        @Option(help: "Jobs submitted at once for the throughput figure.") var concurrent = 1000
        @Option(help: "Compute nodes of the in-process devstack.") var computes = 3
        @Option(name: .customLong("api-port"), help: "Benchmark an already running cluster on this port instead.") var apiPort: Int?
        @Option(name: .customLong("api-host")) var apiHost = "127.0.0.1"
        @Flag(name: .customLong("compare-auth"), help: "Also run on a devstack that checks no credentials, and compare (alternating, two rounds each).")
        var compareAuth = false
        @Option(help: .hidden) var suite: String?

        func validate() throws {
            // `--suite` chose the benchmark before the suites were subcommands.
            if let suite, suite != "jobs" { throw ValidationError("the suites are subcommands now: cod bench \(suite) --help") }
        }

        func run() async throws {
            cod_line_buffer_stdout()
            let logger = LogSetup.bootstrap(level: "error")
            if let apiPort {
                let key = ProcessInfo.processInfo.environment["COD_API_KEY"] ?? ProcessInfo.processInfo.environment["BACALHAU_API_KEY"]
                try await Bench.measure(client: CodClient(baseURL: "\(apiHost):\(apiPort)", token: key), label: "cluster at \(apiHost):\(apiPort)", jobs: jobs, concurrent: concurrent)
                return
            }
            let (jobs, concurrent, computes) = (self.jobs, self.concurrent, self.computes)
            if compareAuth {
                try await Bench.compareAuthentication(jobs: jobs, concurrent: concurrent, computes: computes, logger: logger)
                return
            }
            try await Bench.withDevstack(computes: computes, logger: logger) { client in
                try await Bench.waitForComputes(computes, client: client)
                try await Bench.measure(client: client, label: "in-process devstack with \(computes) compute nodes", jobs: jobs, concurrent: concurrent)
            }
        }
    }

    /// `cod bench import`: content addressing of one large file and many small ones.
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Content import: one large file and many small ones, next to the disk's speed.")
        @Option(help: "Bytes of the large file.") var size = 1 << 30
        @Option(name: .customLong("small-files"), help: "Number of small files.") var smallFiles = 10_000

        func run() async throws {
            cod_line_buffer_stdout()
            try ImportBench(size: size, smallFiles: smallFiles).run()
        }
    }

    /// `cod bench docker`: the Docker executor's overhead next to the runtime's own command.
    struct Docker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Docker executor overhead next to running the same container directly.")
        @Option(help: "Image (must be present on the node).") var image = "busybox"
        @Option(name: .customLong("docker-host"), help: "Docker API socket (default: DOCKER_HOST).") var dockerHost: String?
        @Option(help: "Runs of each side.") var runs = 20
        @Option(help: "The direct command to compare against; IMAGE is replaced by --image.")
        var compare = "podman --runtime runc --cgroup-manager cgroupfs run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 IMAGE true"

        func run() async throws {
            cod_line_buffer_stdout()
            try await DockerBench(image: image, dockerHost: dockerHost, runs: runs, compare: compare).run(logger: LogSetup.bootstrap(level: "error"))
        }
    }

    /// `cod bench soak`: many short jobs while compute processes are killed.
    struct Soak: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Many short jobs across separate processes while compute processes are killed and restarted.")
        @Option(help: "Jobs to run.") var jobs = 10_000
        @Option(help: "Compute processes.") var computes = 3
        @Option(name: .customLong("kill-interval"), help: "Mean seconds between compute process kills; 0 kills none.") var killInterval = 5.0
        @Option(name: .customLong("keep-jobs"), help: "Ended jobs the garbage collection keeps at the end.") var keepJobs = 1000
        @Flag(name: .customLong("keep-data"), help: "Leave the data folder (stores, logs) for inspection.") var keepData = false

        func run() async throws {
            cod_line_buffer_stdout()
            try await SoakBench(jobs: jobs, computes: computes, killInterval: killInterval, keepJobs: keepJobs, keepData: keepData).run()
        }
    }

    /// `cod bench scale`: one orchestrator and many simulated compute nodes.
    struct Scale: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One orchestrator process and many simulated compute nodes: heartbeats, memory, scheduling.")
        @Option(help: "Simulated compute nodes.") var nodes = 1000
        @Option(name: .customLong("heartbeat-interval"), help: "Seconds between heartbeats.") var heartbeatInterval = 5.0
        @Option(name: .customLong("idle-seconds"), help: "Seconds of heartbeats only, measured.") var idleSeconds = 30.0
        @Option(help: "Sequential jobs for the scheduling latency.") var jobs = 200

        func run() async throws {
            cod_line_buffer_stdout()
            try await ScaleBench(nodes: nodes, heartbeatSeconds: heartbeatInterval, idleSeconds: idleSeconds, jobs: jobs)
                .run(logger: LogSetup.bootstrap(level: "error"))
        }
    }

    /// `cod bench dataset`: a sharded filter with 1 up to N compute processes, next to grep.
    struct Dataset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A map/reduce filter over a sharded dataset, next to grep over the same files.")
        @Option(help: "Bytes of generated logs.") var size = 1 << 30
        @Option(help: "Shards (and files).") var shards = 64
        @Option(help: "Compute processes: the curve runs 1 up to this many.") var computes = 3
        @Flag(name: .customLong("keep-data"), help: "Leave the data folder for inspection.") var keepData = false
        @Flag(name: .customLong("compare-verification"), help: "Run the job Fast, Verified (2 replicas) and Adaptive on --computes processes, same run.")
        var compareVerification = false
        @Option(help: ArgumentHelp(
            "Also run the filter with Ray over the same files: the script that does it (Benchmarks/ray-lisbon.sh).",
            discussion: "It installs Ray from PyPI into a virtualenv beside itself the first time."))
        var ray: String?

        func run() async throws {
            cod_line_buffer_stdout()
            var bench = DatasetBench(bytes: size, shards: shards, maxComputes: computes, keepData: keepData, compareVerification: compareVerification)
            bench.ray = ray.map { URL(fileURLWithPath: $0) }
            try await bench.run()
        }
    }

    struct Estimate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "How close estimates come to the cost: the weather example's first run from a sample, and a run after ten from history.")
        @Option(help: "Bytes of generated logs.") var size = 256 << 20
        @Option(help: "Shards (and partitions).") var shards = 3
        @Option(help: "Compute processes.") var computes = 3
        @Option(help: "Runs that build the history before the measured one.") var runs = 10

        func run() async throws {
            cod_line_buffer_stdout()
            try await EstimateBench(bytes: size, shards: shards, computes: computes, runs: runs).run()
        }
    }

    struct Schedules: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "How late ticks start (p50/p99 over one-second schedules), and what 10,000 schedules cost an idle orchestrator.")
        @Option(help: "One-second schedules firing together.") var schedules = 50
        @Option(help: "Ticks measured.") var ticks = 1000
        @Option(help: "Idle schedules (a daily cron that does not fire during the run).") var idle = 10_000
        @Option(help: "Seconds of idling measured, before and after.") var idleSeconds = 30

        func run() async throws {
            cod_line_buffer_stdout()
            try await ScheduleBench(schedules: schedules, ticks: ticks, idle: idle, idleSeconds: idleSeconds).run()
        }
    }

    /// The smallest WASI command: an exported `_start` that returns at once.
    static let trivialModule: [UInt8] = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,  // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00,  // one type: () -> ()
        0x03, 0x02, 0x01, 0x00,  // one function of that type
        0x07, 0x0a, 0x01, 0x06, 0x5f, 0x73, 0x74, 0x61, 0x72, 0x74, 0x00, 0x00,  // export "_start"
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b,  // body: end
    ]

    static func trivialJob(publisher: String = "noop") -> Job {
        var task = JobTask(name: "main")
        task.inputSources = [
            InputSource(
                source: SpecConfig(type: "inline", params: ["URL": .string(DataURL.encode(trivialModule, mediaType: "application/wasm"))]),
                target: "/wasm/noop.wasm")
        ]
        task.engine = WasmEngineSpec(entryModule: "/wasm/noop.wasm").specConfig
        task.publisher = SpecConfig(type: publisher)
        task.resources = ResourcesConfig(cpu: "10m", memory: "16Mb")
        // Unnamed: each submission is its own job (a name would make them versions of one).
        return Job(name: "", type: "batch", count: 1, tasks: [task])
    }

    /// Runs `body` against an in-process devstack in a scratch folder, then shuts the devstack
    /// down gracefully whether `body` succeeded or not (cancelling it mid-shutdown can hang).
    static func withDevstack(
        computes: Int, engineOptions: EngineOptions? = nil, requireCredentials: Bool = true, tls: Bool = false, logger: Logger,
        body: (CodClient) async throws -> Void
    ) async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: base) }
        let signal = PortSignal()
        let stack = try DevstackServices(
            base: base, token: "bench", port: 0, computes: computes, nodeTimeout: .seconds(30), engineOptions: engineOptions,
            requireCredentials: requireCredentials, tls: tls, logger: logger
        ) { port, _, _ in await signal.set(port) }
        let group = ServiceGroup(configuration: .init(services: stack.services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = await signal.wait()
            var outcome: Result<Void, any Error> = .success(())
            do {
                let policy = try ClientTLS.from(authorityFile: nil, fingerprint: stack.fingerprint)
                try await body(CodClient(
                    baseURL: "\(tls ? "https" : "http")://127.0.0.1:\(port)", token: requireCredentials ? stack.adminKey : nil, tls: policy))
            } catch {
                outcome = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try outcome.get()
        }
    }

    /// Waits (up to 10 s) until `count` compute nodes of the devstack have joined.
    static func waitForComputes(_ count: Int, client: CodClient) async throws {
        for _ in 0..<200 {
            if try await client.nodes().filter({ $0.connection == .connected }).count >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func measure(client: CodClient, label: String, jobs: Int, concurrent: Int) async throws {
        let job = trivialJob()
        print("cod bench: trivial WASM job (\(trivialModule.count)-byte module, noop publisher) on \(label)")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB\n")
        // Warm up connections, caches and the runner binary.
        for _ in 0..<10 { _ = try await runOne(job, client: client) }

        var latencies: [Double] = []
        var failures = 0
        for _ in 0..<jobs {
            let (seconds, state) = try await runOne(job, client: client)
            latencies.append(seconds)
            if state != .completed { failures += 1 }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000 }
        print("Latency, submit to Completed, \(jobs) sequential jobs:")
        print(String(format: "  p50 %.1f ms   p90 %.1f ms   p99 %.1f ms   max %.1f ms   mean %.1f ms   (failed: %d)",
            percentile(0.5), percentile(0.9), percentile(0.99), (latencies.last ?? 0) * 1000,
            latencies.reduce(0, +) / Double(max(latencies.count, 1)) * 1000, failures))

        let start = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<concurrent { group.addTask { try await client.submit(job).jobID } }
            var ids: [String] = []
            for try await id in group { ids.append(id) }
            return ids
        }
        let submitted = ContinuousClock.now - start
        var completed = 0
        var failed = 0
        for id in ids {
            var final = try await client.wait(id, afterRevision: 0, timeoutSeconds: 120)
            while !final.state.stateType.isTerminal { final = try await client.wait(id, afterRevision: final.revision, timeoutSeconds: 120) }
            if final.state.stateType == .completed { completed += 1 } else { failed += 1 }
        }
        let elapsed = ContinuousClock.now - start
        let seconds = elapsed.inSeconds
        let submitSeconds = submitted.inSeconds
        print("\nThroughput, \(concurrent) jobs submitted at once:")
        print(String(format: "  all submitted in %.2f s, all ended in %.2f s: %.0f jobs/s   (completed %d, failed %d)",
            submitSeconds, seconds, Double(concurrent) / seconds, completed, failed))
    }

    static func runOne(_ job: Job, client: CodClient) async throws -> (Double, JobStateType) {
        let start = ContinuousClock.now
        let id = try await client.submit(job).jobID
        var final = try await client.wait(id, afterRevision: 0, timeoutSeconds: 60)
        while !final.state.stateType.isTerminal { final = try await client.wait(id, afterRevision: final.revision, timeoutSeconds: 60) }
        let elapsed = ContinuousClock.now - start
        return (elapsed.inSeconds, final.state.stateType)
    }
}

extension Duration {
    /// The duration in seconds, for reports.
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
