import AsyncHTTPClient
import BlockStore
import ContentAddressing
import Foundation
import HummingbirdWSClient
public import Logging
public import Models
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
public import ServiceLifecycle
import Wire

/// A compute node: keeps a WebSocket to the orchestrator, runs the executions it is given and
/// reports back. Reliable messages are numbered and kept until the orchestrator acknowledges
/// them, then resent after any reconnect.
public actor ComputeAgent: Service {
    public let config: ComputeNodeConfig
    public let nodeID: String
    let logger: Logger
    /// The node's message session: kept across restarts with its outbox, so reports that were
    /// not yet acknowledged when the process died are delivered by the next one.
    private var session: String
    /// Set when this process resumed a session a previous process left: the executions that
    /// process ran are gone, and the hello says so.
    private var resumed = false
    private let outboxFile: URL
    let http: HTTPClient

    // Outgoing reliable messages not yet acknowledged, by sequence number.
    private var pending: [(seq: UInt64, message: NodeMessage)] = []
    private var nextSeq: UInt64 = 1
    private var lastOrchestratorSeq: UInt64 = 0
    private var handledRuns = Set<String>()
    private var runners: [String: ExecutionRunner] = [:]
    /// Running executions' log folders and how far each stream has been sent live.
    private var liveLogs: [String: (jobID: String, directory: URL, sent: [Int: Int])] = [:]
    /// Settled in the handshake; live logs need version 2.
    private var protocolVersion = 1
    /// The orchestrator's heartbeat interval (from its welcome), else this node's own.
    private var heartbeatInterval: Duration
    private var allocated = Resources()
    private var outbound: AsyncStream<Envelope>.Continuation?
    let pool: RunnerPool
    let content: ContentFetcher
    /// Set by the probe when the node starts.
    private var engines: Engines
    private var capacity: Resources
    private var gpus: [GPUInfo] = []
    private var connected = false
    private var apiAddress = ""
    private var apiWaiters: [CheckedContinuation<Void, Never>] = []

    public init(config: ComputeNodeConfig, logger: Logger) throws {
        self.config = config
        self.nodeID = try config.resolveNodeID()
        var logger = logger
        logger[metadataKey: "node"] = "\(shortID(nodeID))"
        self.logger = logger
        self.http = HTTPClient(eventLoopGroupProvider: .singleton)
        self.pool = RunnerPool(
            command: config.wasmRunnerCommand, log: config.dataDirectory.appendingPathComponent("runner.log"),
            maxRunning: config.maxConcurrentRunners)
        self.engines = Engines(wasm: pool, docker: nil, process: nil)
        self.capacity = config.capacity
        self.heartbeatInterval = config.heartbeatInterval
        self.outboxFile = config.dataDirectory.appendingPathComponent("outbox.json")
        self.session = UUID().uuidString
        if let saved = DurableOutbox.load(from: outboxFile) {
            session = saved.session
            nextSeq = saved.nextSeq
            lastOrchestratorSeq = saved.lastOrchestratorSeq
            pending = saved.pending.map { ($0.seq, $0.message) }
            resumed = true
        }
        self.content = try ContentFetcher(
            store: FileBlockStore(root: config.dataDirectory.appendingPathComponent("store")),
            source: config.orchestratorURL, gateways: config.ipfsGateways, http: http)
    }

    /// What this node tells the orchestrator about itself.
    public var info: NodeInfo {
        var labels = config.labels
        labels["os_type"] = "linux"
        labels["os_arch"] = BuildVersionInfo.current.goarch
        if let gpu = gpus.first {
            // Automatic labels for constraints such as `gpu_model in [...]`.
            labels["gpu_count"] = String(gpus.count)
            labels["gpu_vendor"] = gpu.vendor
            labels["gpu_model"] = gpu.name
        }
        return NodeInfo(
            nodeID: nodeID, nodeType: "Compute", labels: labels,
            computeNodeInfo: ComputeNodeInfo(
                executionEngines: engines.available, publishers: ["ipfs", "local", "noop"], storageSources: ["inline", "ipfs"],
                maxCapacity: capacity, availableCapacity: capacity - allocated,
                maxJobRequirements: capacity, runningExecutions: runners.count, address: apiAddress,
                heldRoots: heldRoots, networks: config.networks, gpus: gpus))
    }

    public func run() async throws {
        // Scratch folders of executions from an earlier run of this node are stale: the
        // orchestrator reschedules that work when this node's new session says hello.
        try? FileManager.default.removeItem(at: config.dataDirectory.appendingPathComponent("executions"))
        try? FileManager.default.createDirectory(at: config.dataDirectory, withIntermediateDirectories: true)
        await probeEngines()
        // A Docker daemon that is not there yet (or too busy to answer) is looked for again.
        let dockerWatch = Task { await self.watchForDocker() }
        defer { dockerWatch.cancel() }
        await pool.warmUp()
        if config.apiPort != nil {
            // Tell the orchestrator where this node's API answers: wait for it to listen.
            await waitForAPIAddress()
        }
        var backoff: Duration = .milliseconds(100)
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    // Shutdown closes the connection; the loop then ends.
                    try await cancelWhenGracefulShutdown { try await self.connectOnce() }
                    backoff = .milliseconds(100)
                } catch {
                    logger.debug("connection to orchestrator ended: \(error)")
                }
                connected = false
                outbound?.finish()
                outbound = nil
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                // Exponential backoff with jitter, capped at 5 s.
                let jitter = Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: backoff * jitter)
                backoff = min(backoff * 2, .seconds(5))
            }
        } onGracefulShutdown: {
            Task { await self.cancelAll(reason: "compute node shutting down") }
        }
        cancelAll(reason: "compute node stopped")
        await pool.drain()
        try? await http.shutdown()
    }

    /// Finds the engines and GPUs this node really has; only those are advertised, so the
    /// scheduler never places work here that cannot run.
    private func probeEngines() async {
        let wanted = wantedEngines
        var docker: DockerExecutor?
        if wanted.contains("docker") {
            let (executor, note) = await probeDocker()
            docker = executor
            if let executor {
                let removed = await executor.removeOrphans()
                logger.info("docker engine: \(note)\(removed > 0 ? "; removed \(removed) orphaned containers" : "")")
            } else if config.engines != nil {
                logger.warning("docker engine unavailable: \(note)")
            } else {
                logger.info("docker engine unavailable: \(note)")
            }
        }
        var sandbox: SandboxExecutor?
        if wanted.contains("process") {
            let (executor, note) = await SandboxExecutor.probe(dataDirectory: config.dataDirectory, pythonIndexURL: config.pythonIndexURL)
            sandbox = executor
            if executor != nil {
                logger.info("process engine: \(note)")
            } else {
                logger.log(level: config.engines != nil ? .warning : .info, "process engine unavailable: \(note)")
            }
        }
        engines = Engines(wasm: pool, docker: docker, process: sandbox)
        let (found, note) = GPUDetector.detect(command: config.nvidiaSMI)
        gpus = found
        if capacity.gpu == 0 { capacity.gpu = UInt64(found.count) }
        logger.info("\(note)")
    }

    /// While the docker engine is wanted but missing, probes again with a growing interval (2 s
    /// up to a minute). When a daemon answers, docker is added to the engines and the connection
    /// is renewed so the hello advertises it (same session: nothing in flight is lost).
    private func watchForDocker() async {
        guard wantedEngines.contains("docker") else { return }
        var wait: Duration = .seconds(2)
        while engines.docker == nil && !Task.isCancelled {
            try? await Task.sleep(for: wait)
            wait = min(wait * 2, .seconds(60))
            let (executor, note) = await probeDocker()
            guard let executor, !Task.isCancelled else { continue }
            let removed = await executor.removeOrphans()
            engines = Engines(wasm: engines.wasm, docker: executor, process: engines.process)
            logger.info("docker engine now available: \(note)\(removed > 0 ? "; removed \(removed) orphaned containers" : "")")
            // Ending the outbound stream closes the connection; the reconnect says hello anew.
            outbound?.finish()
        }
    }

    /// The engines the operator asked for (all three by default).
    private var wantedEngines: Set<String> {
        Set((config.engines ?? ["wasm", "docker", "process"]).map { $0.lowercased() })
    }

    /// Asks the configured Docker socket (else DOCKER_HOST's, else the default) for a daemon.
    private func probeDocker() async -> (DockerExecutor?, String) {
        let socket = config.dockerSocket.map(DockerClient.socketPath(fromHost:)) ?? DockerClient.defaultSocket()
        return await DockerExecutor.probe(
            socket: socket, http: http, nodeID: nodeID, pullPolicy: config.pullPolicy, capabilities: config.containerCapabilities)
    }

    /// Records where this node's HTTP API listens (called once it is bound).
    public func setAPIAddress(_ address: String) {
        apiAddress = address
        for waiter in apiWaiters { waiter.resume() }
        apiWaiters.removeAll()
    }

    private func waitForAPIAddress() async {
        guard apiAddress.isEmpty else { return }
        await withCheckedContinuation { apiWaiters.append($0) }
    }

    private func cancelAll(reason: String) {
        for runner in runners.values { runner.cancel(reason: reason) }
    }

    private func connectOnce() async throws {
        let url = Self.webSocketURL(config.orchestratorURL)
        var configuration = WebSocketClientConfiguration(maxFrameSize: NodeMessage.maxFrameBytes)
        configuration.additionalHeaders[.authorization] = "Bearer \(config.token)"
        let (stream, continuation) = AsyncStream<Envelope>.makeStream()
        outbound = continuation
        var hello = NodeMessage.Hello(
            info: info, token: config.token, lastOrchestratorSeq: lastOrchestratorSeq, activeExecutions: Array(runners.keys))
        if resumed {
            // A new process on the old session: nothing from before runs any more; the work
            // whose end it still has to report is accounted for.
            hello.resumed = true
            hello.reportedExecutions = Array(Set(pending.compactMap { Self.endedExecutionID(of: $0.message) }))
        }
        var helloEnvelope = Envelope(message: .hello(hello))
        helloEnvelope.ack = lastOrchestratorSeq
        let helloText = try Self.encode(helloEnvelope) + "\u{0}" + session
        try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, writer, _ in
            try await writer.write(.text(helloText))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await envelope in stream {
                        try await writer.write(.text(try Self.encode(envelope)))
                    }
                }
                group.addTask {
                    // Ticks finely so the interval the welcome sets applies at once.
                    var last = ContinuousClock.now
                    while true {
                        try await Task.sleep(for: .milliseconds(50))
                        if ContinuousClock.now - last >= (await self.heartbeatInterval) {
                            last = ContinuousClock.now
                            await self.sendHeartbeat()
                        }
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .milliseconds(200))
                        await self.sendLiveLogs()
                    }
                }
                group.addTask {
                    for try await message in inbound.messages(maxSize: NodeMessage.maxFrameBytes) {
                        guard case .text(let text) = message else { continue }
                        try await self.receive(text)
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        }
    }

    static func webSocketURL(_ base: String) -> String {
        var url = base
        if url.hasPrefix("http://") { url = "ws://" + url.dropFirst(7) }
        if url.hasPrefix("https://") { url = "wss://" + url.dropFirst(8) }
        if !url.hasPrefix("ws://") && !url.hasPrefix("wss://") { url = "ws://" + url }
        while url.hasSuffix("/") { url.removeLast() }
        return url + "/api/v1/compute/connect"
    }

    static func encode(_ envelope: Envelope) throws -> String {
        String(decoding: try JSONEncoder().encode(envelope), as: UTF8.self)
    }

    /// The roots this node holds whole: its pins, as CIDv1 strings.
    private var heldRoots: [String] {
        ((try? content.store.pinned()) ?? []).map { $0.toV1.description }
    }

    private func sendHeartbeat() {
        guard connected else { return }
        let heartbeat = NodeMessage.Heartbeat(
            availableCapacity: capacity - allocated, runningExecutions: runners.count, heldRoots: heldRoots)
        outbound?.yield(Envelope(ack: lastOrchestratorSeq, message: .heartbeat(heartbeat)))
    }

    /// Sends what running executions wrote since the last call (at most 256 KiB per stream
    /// each time, and ``liveLogLimit`` in all), for `job logs --follow`.
    private func sendLiveLogs() {
        guard connected, protocolVersion >= 2 else { return }
        for (executionID, entry) in liveLogs {
            for (stream, name) in [(1, "stdout"), (2, "stderr")] {
                let offset = entry.sent[stream] ?? 0
                guard offset < liveLogLimit,
                    let file = try? FileHandle(forReadingFrom: entry.directory.appendingPathComponent(name))
                else { continue }
                defer { try? file.close() }
                guard (try? file.seek(toOffset: UInt64(offset))) != nil,
                    let data = try? file.read(upToCount: min(256 << 10, liveLogLimit - offset)), !data.isEmpty
                else { continue }
                let chunk = NodeMessage.LogChunk(executionID: executionID, jobID: entry.jobID, stream: stream, offset: offset, data: data)
                outbound?.yield(Envelope(ack: lastOrchestratorSeq, message: .logChunk(chunk)))
                liveLogs[executionID]?.sent[stream] = offset + data.count
            }
        }
    }

    /// Sends a message that must arrive: it is kept (on disk too) until acknowledged and resent
    /// on reconnect, by this process or the next.
    private func sendReliably(_ message: NodeMessage) {
        let seq = nextSeq
        nextSeq += 1
        pending.append((seq, message))
        saveOutbox()
        if connected { outbound?.yield(Envelope(seq: seq, ack: lastOrchestratorSeq, message: message)) }
    }

    /// Writes the session, sequence numbers and unacknowledged reports (atomically replaced).
    private func saveOutbox() {
        let state = DurableOutbox(
            session: session, nextSeq: nextSeq, lastOrchestratorSeq: lastOrchestratorSeq,
            pending: pending.map { DurableOutbox.Item(seq: $0.seq, message: $0.message) })
        do {
            try state.save(to: outboxFile)
        } catch {
            logger.error("cannot save the outbox to \(outboxFile.path): \(error); reports survive only while this process runs")
        }
    }

    /// The execution a report ends, if it ends one (a progress report does not: the work it
    /// speaks of died with the process).
    static func endedExecutionID(of message: NodeMessage) -> String? {
        switch message {
        case .bidResult(let bid) where !bid.accepted: return bid.executionID
        case .runResult(let result): return result.executionID
        case .computeError(let failure): return failure.executionID
        default: return nil
        }
    }

    private func receive(_ text: String) async throws {
        let envelope = try JSONDecoder().decode(Envelope.self, from: Data(text.utf8))
        // Drop what the orchestrator has acknowledged.
        if envelope.ack > 0, pending.contains(where: { $0.seq <= envelope.ack }) {
            pending.removeAll { $0.seq <= envelope.ack }
            saveOutbox()
        }
        switch envelope.message {
        case .welcome(let welcome):
            connected = true
            protocolVersion = welcome.protocolVersion ?? 1
            // Heartbeat as often as the orchestrator expects (it judges liveness by it).
            if welcome.heartbeatIntervalMillis > 0 { heartbeatInterval = .milliseconds(welcome.heartbeatIntervalMillis) }
            // The orchestrator may have lost live output (it restarted): send it again.
            for id in liveLogs.keys { liveLogs[id]?.sent = [:] }
            logger.info("connected to orchestrator \(config.orchestratorURL)")
            pending.removeAll { $0.seq <= welcome.lastComputeSeq }
            // The orchestrator knows now that the old process's work is gone.
            resumed = false
            saveOutbox()
            for item in pending {
                outbound?.yield(Envelope(seq: item.seq, ack: lastOrchestratorSeq, message: item.message))
            }
        case .reject(let reject):
            logger.error("the orchestrator refused this node: \(reject.reason)")
            throw CodError(.unauthorized, reject.reason)
        case .runExecution(let run):
            acknowledge(envelope.seq)
            start(run)
        case .cancelExecution(let cancel):
            acknowledge(envelope.seq)
            runners[cancel.executionID]?.cancel(reason: cancel.reason)
        case .ack:
            break
        case .hello, .heartbeat, .bidResult, .executionProgress, .runResult, .computeError, .logChunk:
            logger.warning("unexpected message from orchestrator")
        }
    }

    private func acknowledge(_ seq: UInt64) {
        guard seq > lastOrchestratorSeq else { return }
        lastOrchestratorSeq = seq
        saveOutbox()
        outbound?.yield(Envelope(ack: seq, message: .ack))
    }

    private func start(_ run: NodeMessage.RunExecution) {
        let execution = run.execution
        // Replays of a message already handled change nothing.
        guard handledRuns.insert(execution.id).inserted else { return }
        let free = capacity - allocated
        let shortfall = execution.allocatedResources.shortfall(against: free)
        if !shortfall.isEmpty {
            sendReliably(.bidResult(.init(executionID: execution.id, accepted: false, reason: "not enough free \(shortfall.joined(separator: ", ")) on node \(shortID(nodeID))")))
            return
        }
        allocated = allocated + execution.allocatedResources
        let directory = config.dataDirectory.appendingPathComponent("executions").appendingPathComponent(execution.id)
        let runner = ExecutionRunner(
            execution: execution, job: run.job, directory: directory, engines: engines, content: content,
            contentSources: run.contentSources ?? [:])
        runners[execution.id] = runner
        liveLogs[execution.id] = (run.job.id, directory, [:])
        // The execution was pre-approved, so accepting it starts it: one report says both.
        sendReliably(.executionProgress(.init(executionID: execution.id, state: .running)))
        Task {
            let end = await runner.run()
            await self.finish(execution: execution, end: end, directory: directory, stats: runner.readStats)
        }
    }

    private func finish(execution: Execution, end: ExecutionEnd, directory: URL, stats: InputStats) async {
        let stats = stats.files == 0 ? nil : stats
        switch end {
        case .completed(let output, let published):
            sendReliably(.executionProgress(.init(executionID: execution.id, state: .publishing)))
            do {
                var size: Int64 = -1
                var digest = ""
                var resultCID: String?
                switch published {
                case .tarball(let file)?:
                    let data = try Data(contentsOf: file)
                    size = Int64(data.count)
                    digest = ExecutionRunner.sha256(data)
                    try await upload(data, executionID: execution.id, sha256: digest)
                case .dag(let cid, let car)?:
                    // The orchestrator verifies and pins the DAG, so anyone can fetch the result
                    // by CID through it, even when this node cannot be reached.
                    try await uploadCAR(car, expecting: cid, executionID: execution.id)
                    resultCID = cid.description
                    // The orchestrator holds the result now; this node's copy would only fill
                    // its disk (blocks that pinned data here shares stay).
                    _ = try? content.store.release([cid])
                case nil:
                    break
                }
                sendReliably(.runResult(.init(
                    executionID: execution.id, output: output, resultBundleSize: size, resultBundleSHA256: digest,
                    resultCID: resultCID, inputStats: stats)))
            } catch {
                sendReliably(.computeError(.init(
                    executionID: execution.id, failure: ExecutionFailure(.engineError, retryable: true),
                    message: "publishing results failed: \(error)", output: output,
                    inputStats: stats)))
            }
        case .failed(let message, let failure, let output):
            sendReliably(.computeError(.init(
                executionID: execution.id, failure: failure, message: message, output: output, inputStats: stats)))
        case .cancelled(let reason):
            sendReliably(.computeError(.init(
                executionID: execution.id, failure: ExecutionFailure(.cancelled, retryable: false), message: "cancelled: \(reason)",
                output: nil)))
        }
        runners[execution.id] = nil
        liveLogs[execution.id] = nil
        allocated = allocated - execution.allocatedResources
        try? FileManager.default.removeItem(at: directory)
    }

    /// Sends a result DAG to the orchestrator as a CAR, pinned there.
    private func uploadCAR(_ car: URL, expecting cid: CID, executionID: String) async throws {
        try await retryingWhileUnreachable {
            // Pinned as this execution's result: released when its job is garbage-collected.
            let holder = PinHolder.result(of: executionID)
            var request = HTTPClientRequest(url: "\(self.orchestratorBase)/api/v1/data/car?pin=true&holder=\(holder)")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(self.config.token)")
            request.headers.add(name: "Content-Type", value: "application/vnd.ipld.car")
            // Streamed from the file: results can be far larger than memory.
            let chunks = FileChunks(car)
            request.body = .stream(chunks, length: .known(chunks.length))
            let body = try await self.send(request)
            let stored = try JSONDecoder().decode(DataImportResponse.self, from: Data(buffer: body))
            guard stored.roots.first == cid.description else {
                throw CodError(.internalError, "orchestrator stored \(stored.roots) instead of \(cid)")
            }
        }
    }

    /// Uploads a result bundle to the orchestrator, which keeps it so clients never need to
    /// reach this node.
    private func upload(_ data: Data, executionID: String, sha256: String) async throws {
        try await retryingWhileUnreachable {
            var request = HTTPClientRequest(url: "\(self.orchestratorBase)/api/v1/compute/results/\(executionID)")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(self.config.token)")
            request.headers.add(name: "X-Cod-Node-ID", value: self.nodeID)
            request.headers.add(name: "X-Cod-SHA256", value: sha256)
            request.headers.add(name: "Content-Type", value: "application/gzip")
            request.body = .bytes(ByteBuffer(bytes: data))
            _ = try await self.send(request)
        }
    }

    private var orchestratorBase: String { ContentFetcher.base(config.orchestratorURL) }

    /// Sends a request; a non-2xx answer becomes a CodError (below 500 when retrying cannot help).
    private func send(_ request: HTTPClientRequest) async throws -> ByteBuffer {
        let response = try await http.execute(request, timeout: .seconds(300))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            let code: CodError.Code = response.status.code < 500 ? .badRequest : .unavailable
            throw CodError(code, "orchestrator answered \(response.status.code): \(String(buffer: body))")
        }
        return body
    }

    /// Runs `body`, retrying with exponential backoff (8 tries) while the orchestrator is
    /// unreachable or failing; an answer that says the request itself is wrong is final.
    private func retryingWhileUnreachable(_ body: () async throws -> Void) async throws {
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await body()
                return
            } catch let error as CodError where error.code.httpStatus < 500 {
                throw error
            } catch {
                if attempt >= 8 { throw error }
                try await Task.sleep(for: .milliseconds(200 * (1 << min(attempt, 5))))
            }
        }
    }
}

/// What a compute node keeps on disk so a restarted process can finish delivering reports.
struct DurableOutbox: Codable {
    struct Item: Codable {
        var seq: UInt64
        var message: NodeMessage
    }

    var session: String
    var nextSeq: UInt64
    var lastOrchestratorSeq: UInt64
    var pending: [Item]

    static func load(from file: URL) -> DurableOutbox? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode(DurableOutbox.self, from: data)
    }

    func save(to file: URL) throws {
        try JSONEncoder().encode(self).write(to: file, options: .atomic)
    }
}
