import Crypto
import APIClient
import AsyncHTTPClient
import BlockStore
import ContentAddressing
import Foundation
import NodeAPI
public import Logging
public import Models
public import ServiceLifecycle
import Wire

/// A compute node: a small service composing the orchestrator link (a WebSocket carrying the
/// ``ReliableChannel``), the execution supervisor (one child task per execution, in the run's
/// task group), the ``ResultPublisher`` and the ``EngineProbe``.
public actor ComputeAgent: Service {
    public let config: ComputeNodeConfig
    public let nodeID: String
    let logger: Logger
    let http: HTTPClient
    let pool: RunnerPool
    let content: ContentFetcher
    let publisher: ResultPublisher
    /// The node's identity: it signs the hello (over the orchestrator's challenge) and every
    /// HTTP request to the orchestrator.
    let signer: KeySigner
    let probe: EngineProbe
    /// Who may use this node's own API: its key (`<data>/api.key`) and upload grants.
    let access: ComputeAccess
    private let outboxFile: URL

    /// The reliable half of the link: kept on disk, so reports that were not yet
    /// acknowledged when the process died are delivered by the next one.
    var channel: ReliableChannel
    var outbound: AsyncStream<Envelope>.Continuation?
    /// Settled in the handshake; live logs need version 2.
    var protocolVersion = 1
    /// The nonce the current connection's hello sent; its welcome must sign it.
    var welcomeNonce = ""
    /// The orchestrator's heartbeat interval (from its welcome), else this node's own.
    var heartbeatInterval: Duration
    /// The CID of this node's newest signed receipt (the next one's `Prev`), and of the one
    /// signed but not yet in the saved outbox.
    var receiptHead = ""
    var pendingReceiptHead: String?

    /// Executions the supervisor runs, and what they hold.
    private var handledRuns = Set<String>()
    /// Executions started since this process began (a bad node's `misbehaviourAfter` counts them).
    private var startedRuns = 0
    var runners: [String: ExecutionRunner] = [:]
    /// Running executions' log folders and how far each stream has been sent live.
    var liveLogs: [String: (jobID: String, directory: URL, sent: [Int: Int])] = [:]
    var allocated = Resources()
    /// The CPU of executions waiting on their children, lent to other work meanwhile (their
    /// memory stays theirs), by execution.
    var lent: [String: Resources] = [:]
    /// What new work may use now.
    var free: Resources { lent.values.reduce(capacity - allocated, +) }
    /// New executions for the supervisor's task group.
    private let launches: AsyncStream<Launch>
    private let launchQueue: AsyncStream<Launch>.Continuation

    /// Set by the probe when the node starts.
    var engines: Engines
    var capacity: Resources
    private var gpus: [GPUInfo] = []
    private var apiAddress = ""
    private var apiWaiters: [CheckedContinuation<Void, Never>] = []
    /// The operator's pricing program, when it has one.
    let priceScript: PriceScript?

    /// One execution to run: its runner and scratch folder.
    struct Launch: Sendable {
        let execution: Execution
        let runner: ExecutionRunner
        let directory: URL
    }

    public init(config: ComputeNodeConfig, logger: Logger) throws {
        self.config = config
        try FileManager.default.createDirectory(at: config.dataDirectory, withIntermediateDirectories: true)
        let key = try SigningKeyFile.loadOrCreate(at: config.dataDirectory.appendingPathComponent("node.key"))
        self.signer = KeySigner(key)
        self.nodeID = try config.resolveNodeID(key: key.publicKey)
        self.access = try ComputeAccess(nodeID: nodeID, dataDirectory: config.dataDirectory)
        var logger = logger
        logger[metadataKey: "node"] = "\(shortID(nodeID))"
        self.logger = logger
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        self.http = http
        let pool = RunnerPool(
            command: config.wasmRunnerCommand, log: config.dataDirectory.appendingPathComponent("runner.log"),
            maxRunning: config.maxConcurrentRunners, cgroups: CgroupController.onHost)
        self.pool = pool
        self.engines = Engines(wasm: pool, docker: nil, process: nil)
        self.capacity = config.capacity
        self.heartbeatInterval = config.heartbeatInterval
        self.outboxFile = config.dataDirectory.appendingPathComponent("outbox.json")
        self.channel = Self.loadChannel(from: outboxFile) ?? ReliableChannel(session: UUID().uuidString)
        self.receiptHead = Self.loadReceiptHead(
            file: config.dataDirectory.appendingPathComponent("receipt-head"), outbox: Self.loadSnapshot(from: outboxFile))
        self.content = try ContentFetcher(
            store: FileBlockStore(root: config.dataDirectory.appendingPathComponent("store")),
            source: config.orchestratorURL, sourceTLS: config.orchestratorTLS, gateways: config.ipfsGateways, http: http,
            plainFiles: config.dataDirectory.appendingPathComponent("plain"))
        // Requests are signed with the node's key: the join token only enrolls.
        let signer = self.signer
        let client = CodClient(
            baseURL: ContentFetcher.base(config.orchestratorURL), timeout: .seconds(300), tls: config.orchestratorTLS, http: http)
            .signing(as: NodeRequestSigner(nodeID: nodeID, now: { Int64(Date().timeIntervalSince1970) }, sign: signer.sign))
        self.publisher = ResultPublisher(client: client, nodeID: nodeID)
        self.probe = EngineProbe(config: config, http: http, nodeID: nodeID, pool: pool, logger: logger)
        (launches, launchQueue) = AsyncStream<Launch>.makeStream()
        if let path = config.priceScript {
            guard let ceiling = config.priceList else {
                throw CodError(.badRequest, "--price-script needs --price-list: the list is the most the script may ask")
            }
            let (script, problem) = PriceScript.make(path: path, ceiling: ceiling)
            guard let script else { throw CodError(.badRequest, "--price-script: \(problem ?? "cannot be used")") }
            self.priceScript = script
        } else {
            self.priceScript = nil
        }
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
        var compute = ComputeNodeInfo(
            executionEngines: engines.available, publishers: ["ipfs", "local", "noop"], storageSources: ["inline", "ipfs"],
            maxCapacity: capacity, availableCapacity: free,
            maxJobRequirements: capacity, runningExecutions: runners.count, address: apiAddress,
            heldRoots: heldRoots, networks: config.networks, gpus: gpus)
        compute.priceList = config.priceList
        return NodeInfo(nodeID: nodeID, nodeType: "Compute", labels: labels, computeNodeInfo: compute)
    }

    /// The roots this node holds whole: its pins, as CIDv1 strings.
    var heldRoots: [String] {
        ((try? content.store.pinned()) ?? []).map { $0.toV1.description }
    }

    public func run() async throws {
        // Scratch folders of executions from an earlier run of this node are stale: the
        // orchestrator reschedules that work when this node's new session says hello.
        try? FileManager.default.removeItem(at: config.dataDirectory.appendingPathComponent("executions"))
        try? FileManager.default.createDirectory(at: config.dataDirectory, withIntermediateDirectories: true)
        let (found, gpus) = await probe.probe()
        engines = found
        self.gpus = gpus
        if capacity.gpu == 0 { capacity.gpu = UInt64(gpus.count) }
        await pool.warmUp()
        // Tell the orchestrator where this node's API answers: wait for it to listen.
        if config.apiPort != nil {
            await waitForAPIAddress()
            logger.info("this node's API is at \(apiAddress); its own API key (for uploads, pins and gc here) is in \(access.keyFile.path)")
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.watchForDocker() }
            group.addTask {
                await self.stayConnected()
                // No new work after the link is closed for good; running work is cancelled.
                await self.endLaunches()
            }
            for await launch in launches {
                group.addTask { await self.supervise(launch) }
            }
            group.cancelAll()
        }
        await pool.drain()
        try? await http.shutdown()
    }

    private func endLaunches() {
        launchQueue.finish()
        cancelAll(reason: "compute node stopped")
    }

    /// A Docker daemon that is not there yet (or too busy to answer) is looked for again; when
    /// one answers, the connection is renewed so the hello advertises it (same session:
    /// nothing in flight is lost).
    private func watchForDocker() async {
        guard probe.wanted.contains("docker"), engines.docker == nil, let docker = await probe.waitForDocker() else { return }
        engines = Engines(wasm: engines.wasm, docker: docker, process: engines.process)
        outbound?.finish()
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

    func cancelAll(reason: String) {
        for runner in runners.values { runner.cancel(reason: reason) }
    }

    // MARK: The execution supervisor

    /// Admits an execution the orchestrator sent: a replay of one already handled changes
    /// nothing; one that does not fit is declined; otherwise it starts.
    func start(_ run: NodeMessage.RunExecution) {
        let execution = run.execution
        guard handledRuns.insert(execution.id).inserted else { return }
        let shortfall = execution.allocatedResources.shortfall(against: free)
        if !shortfall.isEmpty {
            sendReliably(.bidResult(.init(
                executionID: execution.id, accepted: false, reason: "not enough free \(shortfall.joined(separator: ", ")) on node \(shortID(nodeID))")))
            return
        }
        allocated = allocated + execution.allocatedResources
        let directory = config.dataDirectory.appendingPathComponent("executions").appendingPathComponent(execution.id)
        let spawn = run.apiKey.map { key in
            Spawning(
                apiKey: key, apiURL: ContentFetcher.base(config.orchestratorURL),
                client: CodClient(
                    baseURL: ContentFetcher.base(config.orchestratorURL), timeout: .seconds(30), token: key, tls: config.orchestratorTLS, http: http),
                waiting: { [weak self] waiting in await self?.lend(execution, waiting) })
        }
        let runner = ExecutionRunner(
            execution: execution, job: run.job, directory: directory, engines: engines, content: content,
            contentSources: run.contentSources ?? [:], misbehaviour: startedRuns >= config.misbehaviourAfter ? config.misbehaviour : nil,
            spawn: spawn)
        startedRuns += 1
        runners[execution.id] = runner
        liveLogs[execution.id] = (run.job.id, directory, [:])
        // The execution was pre-approved, so accepting it starts it: one report says both.
        sendReliably(.executionProgress(.init(executionID: execution.id, state: .running)))
        launchQueue.yield(Launch(execution: execution, runner: runner, directory: directory))
    }

    /// Runs one execution to its end (a child of the run's task group), then reports it.
    private func supervise(_ launch: Launch) async {
        let started = Date()
        // The price script runs beside the execution, not before it.
        let pricing = priceScript.map { script in
            Task { [execution = launch.execution, job = launch.runner.job] in await script.quote(for: execution, job: job) }
        }
        let end = await launch.runner.run()
        var report = await report(of: end, execution: launch.execution, stats: launch.runner.readStats)
        let priced = await pricing?.value
        if let problem = priced?.problem { logger.warning("execution \(launch.execution.id): \(problem)") }
        let finished = Date()
        let usage = launch.runner.usage(wallSeconds: (finished.timeIntervalSince(started) * 1000).rounded() / 1000)
        switch report {
        case .runResult(var result):
            result.usage = usage
            result.quote = priced?.quote
            report = .runResult(result)
        case .computeError(var error):
            error.usage = usage
            error.quote = priced?.quote
            report = .computeError(error)
        default:
            break
        }
        report = signed(report, execution: launch.execution, job: launch.runner.job, started: started, finished: finished, usage: usage)
        // Saved in the outbox first, then the chain moves on: a crash between the two is
        // repaired at the next start from the outbox.
        sendReliably(report)
        commitReceiptHead()
        let execution = launch.execution
        runners[execution.id] = nil
        liveLogs[execution.id] = nil
        allocated = allocated - execution.allocatedResources
        lent[execution.id] = nil
        try? FileManager.default.removeItem(at: launch.directory)
    }

    /// While an execution waits on its children its CPU is lent to other work (a parent on a
    /// one-slot node must leave room for its child), and taken back when none is unfinished.
    func lend(_ execution: Execution, _ waiting: Bool) {
        guard runners[execution.id] != nil else { return }
        lent[execution.id] = waiting ? Resources(cpu: execution.allocatedResources.cpu) : nil
    }

    /// The report of how an execution ended, after publishing what it produced.
    private func report(of end: ExecutionEnd, execution: Execution, stats: InputStats) async -> NodeMessage {
        let stats = stats.files == 0 ? nil : stats
        switch end {
        case .completed(let output, let published):
            sendReliably(.executionProgress(.init(executionID: execution.id, state: .publishing)))
            do {
                var result = NodeMessage.RunResult(
                    executionID: execution.id, output: output, resultBundleSize: -1, resultBundleSHA256: "", resultCID: nil, inputStats: stats)
                switch published {
                case .tarball(let file)?:
                    let data = try Data(contentsOf: file)
                    result.resultBundleSize = Int64(data.count)
                    result.resultBundleSHA256 = ExecutionRunner.sha256(data)
                    try await publisher.publish(bundle: data, executionID: execution.id, sha256: result.resultBundleSHA256)
                case .dag(let cid, let car)?:
                    // The orchestrator verifies and pins the DAG, so anyone can fetch the result
                    // by CID through it, even when this node cannot be reached.
                    try await publisher.publish(dag: car, expecting: cid, executionID: execution.id)
                    result.resultCID = cid.description
                    // The orchestrator holds the result now; this node's copy would only fill
                    // its disk (blocks that pinned data here shares stay).
                    _ = try? content.store.release([cid])
                case nil:
                    break
                }
                return .runResult(result)
            } catch {
                return .computeError(.init(
                    executionID: execution.id, failure: ExecutionFailure(.engineError, retryable: true),
                    message: "publishing results failed: \(error)", output: output, inputStats: stats))
            }
        case .failed(let message, let failure, let output):
            return .computeError(.init(executionID: execution.id, failure: failure, message: message, output: output, inputStats: stats))
        case .cancelled(let reason):
            return .computeError(.init(
                executionID: execution.id, failure: ExecutionFailure(.cancelled, retryable: false), message: "cancelled: \(reason)", output: nil))
        }
    }

    // MARK: The reliable channel

    /// Sends a message that must arrive: kept (on disk too) until acknowledged and resent on
    /// reconnect, by this process or the next.
    func sendReliably(_ message: NodeMessage) {
        perform(channel.send(message))
    }

    /// Carries out what the channel decided.
    func perform(_ directives: [ReliableChannel.Directive]) {
        for directive in directives {
            switch directive {
            case .persist: saveChannel()
            case .write(let envelope): outbound?.yield(envelope)
            }
        }
    }

    private func saveChannel() {
        do {
            try JSONEncoder().encode(channel.snapshot).write(to: outboxFile, options: .atomic)
        } catch {
            logger.error("cannot save the outbox to \(outboxFile.path): \(error); reports survive only while this process runs")
        }
    }

    static func loadChannel(from file: URL) -> ReliableChannel? {
        loadSnapshot(from: file).map { ReliableChannel(resuming: $0) }
    }

    static func loadSnapshot(from file: URL) -> ReliableChannel.Snapshot? {
        guard let data = try? Data(contentsOf: file) else { return nil }
        return try? JSONDecoder().decode(ReliableChannel.Snapshot.self, from: data)
    }
}
