import APIClient
import ArgumentParser
import BlockStore
import ComputeNode
import CSystemShims
import ContentAddressing
import Crypto
import Foundation
import Logging
import Models
import ServiceLifecycle

/// `cod bench`: measures submit-to-Completed latency and throughput for a trivial WASM job.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure job latency and throughput on a devstack (started in-process unless --api-port is given).")

    @Option(help: "Sequential jobs for the latency figures.") var jobs = 200
    @Option(help: "Jobs submitted at once for the throughput figure.") var concurrent = 1000
    @Option(help: "Compute nodes of the in-process devstack.") var computes = 3
    @Option(name: .customLong("api-port"), help: "Benchmark an already running cluster on this port instead.") var apiPort: Int?
    @Option(name: .customLong("api-host")) var apiHost = "127.0.0.1"
    @Option(help: "What to measure: jobs, import (content addressing), docker, soak (kills nodes under load), scale (1,000 simulated nodes), or dataset (a sharded filter next to grep).") var suite = "jobs"
    @Option(name: .customLong("dataset-size"), help: "Bytes of generated logs for --suite dataset.") var datasetSize = 1 << 30
    @Option(name: .customLong("dataset-shards"), help: "Shards (and files) for --suite dataset.") var datasetShards = 64
    @Option(name: .customLong("soak-jobs"), help: "Jobs for --suite soak.") var soakJobs = 10_000
    @Option(name: .customLong("kill-interval"), help: "Mean seconds between compute process kills for --suite soak; 0 kills none.") var killInterval = 5.0
    @Option(name: .customLong("keep-jobs"), help: "Ended jobs the garbage collection keeps at the end of --suite soak.") var keepJobs = 1000
    @Option(name: .customLong("sim-nodes"), help: "Simulated compute nodes for --suite scale.") var simNodes = 1000
    @Option(name: .customLong("heartbeat-interval"), help: "Seconds between heartbeats for --suite scale.") var heartbeatInterval = 5.0
    @Option(name: .customLong("idle-seconds"), help: "Seconds of heartbeats only, measured, for --suite scale.") var idleSeconds = 30.0
    @Flag(name: .customLong("keep-data"), help: "Leave --suite soak's data folder (stores, logs) for inspection.") var keepData = false
    @Option(name: .customLong("import-size"), help: "Bytes of the large file for --suite import.") var importSize = 1 << 30
    @Option(name: .customLong("small-files"), help: "Number of small files for --suite import.") var smallFiles = 10_000
    @Option(help: "Image for --suite docker (must be present on the node).") var image = "busybox"
    @Option(name: .customLong("docker-host"), help: "Docker API socket for --suite docker (default: DOCKER_HOST).") var dockerHost: String?
    @Option(help: "Runs of each side for --suite docker.") var runs = 20
    @Option(help: "The direct command --suite docker compares against; IMAGE is replaced by --image.")
    var compare = "podman --runtime runc --cgroup-manager cgroupfs run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 IMAGE true"

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

    func run() async throws {
        // Progress shows as it happens even when the output goes to a file or a pipe.
        cod_line_buffer_stdout()
        if suite == "import" {
            try ImportBench(size: importSize, smallFiles: smallFiles).run()
            return
        }
        if suite == "soak" {
            try await SoakBench(jobs: soakJobs, computes: computes, killInterval: killInterval, keepJobs: keepJobs, keepData: keepData).run()
            return
        }
        if suite == "dataset" {
            // The scaling curve: 1 up to --computes compute processes.
            try await DatasetBench(bytes: datasetSize, shards: datasetShards, maxComputes: computes, keepData: keepData).run()
            return
        }
        if suite == "scale" {
            try await ScaleBench(nodes: simNodes, heartbeatSeconds: heartbeatInterval, idleSeconds: idleSeconds, jobs: jobs)
                .run(logger: LogSetup.bootstrap(level: "error"))
            return
        }
        guard suite == "jobs" || suite == "docker" else { throw ValidationError("--suite is jobs, import, docker, soak, scale or dataset") }
        let logger = LogSetup.bootstrap(level: "error")
        if suite == "docker" {
            try await DockerBench(image: image, dockerHost: dockerHost, runs: runs, compare: compare).run(logger: logger)
            return
        }
        if let apiPort {
            try await measure(client: CodClient(host: apiHost, port: apiPort), label: "cluster at \(apiHost):\(apiPort)")
            return
        }
        try await Self.withDevstack(computes: computes, logger: logger) { client in
            // Wait for every compute node to join.
            for _ in 0..<200 {
                if try await client.nodes().filter({ $0.connection == .connected }).count >= computes { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            try await measure(client: client, label: "in-process devstack with \(computes) compute nodes")
        }
    }

    /// Runs `body` against an in-process devstack in a scratch folder, then shuts the devstack
    /// down gracefully whether `body` succeeded or not (cancelling it mid-shutdown can hang).
    static func withDevstack(
        computes: Int, engineOptions: EngineOptions? = nil, logger: Logger, body: (CodClient) async throws -> Void
    ) async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-bench-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: base) }
        let signal = PortSignal()
        let stack = try DevstackServices(
            base: base, token: "bench", port: 0, computes: computes, nodeTimeout: .seconds(30), engineOptions: engineOptions,
            logger: logger
        ) { port in await signal.set(port) }
        let group = ServiceGroup(configuration: .init(services: stack.services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let port = await signal.wait()
            var outcome: Result<Void, any Error> = .success(())
            do {
                try await body(CodClient(host: "127.0.0.1", port: port))
            } catch {
                outcome = .failure(error)
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try outcome.get()
        }
    }

    func measure(client: CodClient, label: String) async throws {
        let job = Self.trivialJob()
        print("cod bench: trivial WASM job (\(Self.trivialModule.count)-byte module, noop publisher) on \(label)")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB\n")
        // Warm up connections, caches and the runner binary.
        for _ in 0..<10 { _ = try await Self.runOne(job, client: client) }

        var latencies: [Double] = []
        var failures = 0
        for _ in 0..<jobs {
            let (seconds, state) = try await Self.runOne(job, client: client)
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
