import APIClient
import CodTestKit
import ArgumentParser
import Crypto
import Foundation
import HummingbirdWSClient
import Logging
import Models
import Wire

/// `cod bench scale`: one orchestrator process and many simulated compute nodes,
/// lightweight WebSocket clients in this process that speak the node protocol (hello,
/// heartbeats, acknowledged reports) and finish every execution at once. Measures what the
/// orchestrator spends on membership (CPU and memory for the heartbeats of N nodes) and how
/// long scheduling takes with that many nodes to choose from.
struct ScaleBench {
    var nodes: Int
    var heartbeatSeconds: Double
    var idleSeconds: Double
    var jobs: Int

    func run(logger: Logger) async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("cod-scale-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: base) }
        let port = try Ports.free()
        print("cod bench scale: \(nodes) simulated compute nodes (one process, one WebSocket each) and one orchestrator process")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB; "
            + "heartbeat every \(heartbeatSeconds) s")
        let cluster = ChildProcesses(executable: executable, logs: base)
        defer { cluster.stopAll() }
        let orchestrator = try cluster.orchestrator(
            port: port, data: base, token: "scale",
            ["--heartbeat-interval", String(heartbeatSeconds), "--node-timeout", String(max(30, Int(heartbeatSeconds * 6)))])
        let client = CodClient(host: "127.0.0.1", port: port, credential: .apiKey(try await cluster.adminKey(data: base)))
        let up = ContinuousClock.now + .seconds(30)
        while (try? await client.alive()) == nil {
            guard ContinuousClock.now < up, orchestrator.isRunning else { throw ValidationError("the orchestrator did not start; see \(base.path)") }
            try await Task.sleep(for: .milliseconds(100))
        }
        let pid = orchestrator.processIdentifier
        let baseline = SoakBench.memory(of: pid)

        // Connect every simulated node.
        let connectStart = ContinuousClock.now
        let fleet = SimulatedFleet(url: "ws://127.0.0.1:\(port)/api/v1/compute/connect", token: "scale", logger: logger)
        let tasks = (0..<nodes).map { index in Task { await fleet.runNode(index) } }
        defer { for task in tasks { task.cancel() } }
        while await fleet.welcomed < nodes {
            guard ContinuousClock.now - connectStart < .seconds(120) else {
                throw ValidationError("only \(await fleet.welcomed) of \(nodes) nodes were welcomed in 120 s")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let connected = ContinuousClock.now - connectStart
        let listed = try await client.nodes().filter { $0.connection == .connected }.count

        // Idle: the orchestrator only handles heartbeats.
        let cpuBefore = Self.cpuSeconds(of: pid)
        let heartbeatsBefore = await fleet.heartbeats
        let idleStart = ContinuousClock.now
        try await Task.sleep(for: .milliseconds(Int64(idleSeconds * 1000)))
        let idle = (ContinuousClock.now - idleStart).inSeconds
        let cpuIdle = Self.cpuSeconds(of: pid) - cpuBefore
        let heartbeats = await fleet.heartbeats - heartbeatsBefore
        let memoryIdle = SoakBench.memory(of: pid)
        let healthy = try await client.nodes().filter { $0.liveness == .healthy }.count

        // Scheduling: one job at a time, submit to Completed, among all those nodes.
        let job = Bench.trivialJob()
        for _ in 0..<5 { _ = try await Bench.runOne(job, client: client) }
        var latencies: [Double] = []
        for _ in 0..<jobs { latencies.append(try await Bench.runOne(job, client: client).0) }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1000 }
        // And many at once.
        let (completed, burstSeconds) = try await burst(job, client: client)
        let executions = await fleet.executions
        let final = SoakBench.memory(of: pid)

        print("\nResults:")
        print(String(format: "  %d nodes connected and welcomed in %.1f s; the orchestrator lists %d connected", nodes, connected.inSeconds, listed))
        print(String(format: "  idle %.0f s: %d heartbeats handled (%.0f/s), orchestrator CPU %.1f%% of one core (%.2f ms per heartbeat), %d nodes healthy",
            idle, heartbeats, Double(heartbeats) / idle, cpuIdle / idle * 100, heartbeats > 0 ? cpuIdle / Double(heartbeats) * 1000 : 0, healthy))
        print("  orchestrator memory: \(SoakBench.mib(baseline.rss)) with no nodes, \(SoakBench.mib(memoryIdle.rss)) with \(nodes) nodes, "
            + "\(SoakBench.mib(final.rss)) after the jobs (peak \(SoakBench.mib(final.peak)))")
        print(String(format: "  scheduling latency, submit to Completed, %d sequential jobs: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms",
            jobs, percentile(0.5), percentile(0.9), percentile(0.99)))
        print(String(format: "  1000 jobs at once: %d completed in %.1f s (%.0f jobs/s); %d executions ran on the simulated nodes",
            completed, burstSeconds, Double(completed) / burstSeconds, executions))
    }

    /// Submits 1,000 jobs at once and waits for each; returns how many completed and the seconds it took.
    func burst(_ job: Job, client: CodClient) async throws -> (completed: Int, seconds: Double) {
        let burst = ContinuousClock.now
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<1000 { group.addTask { try await client.submit(job).jobID } }
            var ids: [String] = []
            for try await id in group { ids.append(id) }
            return ids
        }
        var completed = 0
        for id in ids {
            var final = try await client.wait(id, afterRevision: 0, timeoutSeconds: 120)
            while !final.state.stateType.isTerminal { final = try await client.wait(id, afterRevision: final.revision, timeoutSeconds: 120) }
            if final.state.stateType == .completed { completed += 1 }
        }
        let burstSeconds = (ContinuousClock.now - burst).inSeconds
        return (completed, burstSeconds)
    }

    /// User plus system CPU seconds a process has used, from /proc.
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// Simulated compute nodes: each keeps a WebSocket, heartbeats, and answers every execution
/// it is given with "running" then a completed result, numbered and acknowledged as a real node
/// does.
actor SimulatedFleet {
    let url: String
    let token: String
    let logger: Logger
    private(set) var welcomed = 0
    private(set) var heartbeats = 0
    private(set) var executions = 0

    init(url: String, token: String, logger: Logger) {
        self.url = url
        self.token = token
        self.logger = logger
    }

    private func count(welcome: Bool = false, heartbeat: Bool = false, execution: Bool = false) {
        if welcome { welcomed += 1 }
        if heartbeat { heartbeats += 1 }
        if execution { executions += 1 }
    }

    nonisolated func runNode(_ index: Int) async {
        // Each simulated node has a key of its own and signs a challenge, as a real node does.
        let key = Curve25519.Signing.PrivateKey()
        let nodeID = NodeIdentity.nodeID(publicKey: key.publicKey)
        let base = url.replacingOccurrences(of: "ws://", with: "http://").replacingOccurrences(of: "/api/v1/compute/connect", with: "")
        guard let challenge = try? await CodClient(baseURL: base).nodeChallenge() else { return }
        let session = UUID().uuidString
        let capacity = Resources(cpu: 4, memory: 8 << 30, disk: 100 << 30)
        let info = NodeInfo(
            nodeID: nodeID, labels: ["sim": String(index % 10)],
            computeNodeInfo: ComputeNodeInfo(
                executionEngines: ["wasm"], publishers: ["noop", "local"], storageSources: ["inline"], maxCapacity: capacity,
                availableCapacity: capacity, maxJobRequirements: capacity))
        var hello = NodeMessage.Hello(info: info, token: token, lastOrchestratorSeq: 0, activeExecutions: [])
        hello.publicKey = NodeIdentity.encode(key.publicKey)
        hello.challenge = challenge
        hello.signature = try? key.signature(for: NodeIdentity.helloPayload(challenge: challenge, nodeID: nodeID, session: session)).base64EncodedString()
        guard let helloText = try? Self.encode(Envelope(message: .hello(hello))) + "\u{0}" + session else { return }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 26)
        var quiet = logger
        quiet.logLevel = .critical
        _ = try? await WebSocketClient.connect(url: url, configuration: configuration, logger: quiet) { inbound, writer, _ in
            let (stream, outbox) = AsyncStream<String>.makeStream()
            try await writer.write(.text(helloText))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await text in stream { try await writer.write(.text(text)) }
                }
                var interval: Duration = .seconds(5)
                var seq: UInt64 = 0
                var lastIn: UInt64 = 0
                var heartbeatTask: Task<Void, Never>?
                defer { heartbeatTask?.cancel() }
                for try await message in inbound.messages(maxSize: 1 << 26) {
                    guard case .text(let text) = message, let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(text.utf8))
                    else { continue }
                    switch envelope.message {
                    case .welcome(let welcome):
                        interval = .milliseconds(welcome.heartbeatIntervalMillis)
                        await self.count(welcome: true)
                        // Heartbeats start at a random point in the interval, as real nodes'
                        // start times are spread.
                        let every = interval
                        heartbeatTask = Task { [outbox] in
                            try? await Task.sleep(for: every * Double.random(in: 0...1))
                            while !Task.isCancelled {
                                let beat = NodeMessage.Heartbeat(availableCapacity: capacity, runningExecutions: 0)
                                if let text = try? Self.encode(Envelope(message: .heartbeat(beat))) { outbox.yield(text) }
                                await self.count(heartbeat: true)
                                try? await Task.sleep(for: every)
                            }
                        }
                    case .runExecution(let run):
                        lastIn = max(lastIn, envelope.seq)
                        let id = run.execution.id
                        outbox.yield(try Self.encode(Envelope(ack: lastIn, message: .ack)))
                        seq += 1
                        outbox.yield(try Self.encode(Envelope(
                            seq: seq, ack: lastIn, message: .executionProgress(.init(executionID: id, state: .running)))))
                        seq += 1
                        let result = NodeMessage.RunResult(
                            executionID: id, output: RunCommandResult(exitCode: 0), resultBundleSize: -1, resultBundleSHA256: "")
                        outbox.yield(try Self.encode(Envelope(seq: seq, ack: lastIn, message: .runResult(result))))
                        await self.count(execution: true)
                    case .cancelExecution:
                        lastIn = max(lastIn, envelope.seq)
                        outbox.yield(try Self.encode(Envelope(ack: lastIn, message: .ack)))
                    case .reject(let reject):
                        throw ValidationError("node refused: \(reject.reason)")
                    default:
                        break
                    }
                }
                outbox.finish()
                group.cancelAll()
            }
        }
    }

    static func encode(_ envelope: Envelope) throws -> String {
        String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
    }
}
