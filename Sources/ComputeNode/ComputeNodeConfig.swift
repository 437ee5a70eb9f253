import Foundation
import Crypto
import Wire
public import APIClient
public import Models

/// How a compute node runs: where it connects, what it offers, where it keeps its files.
public struct ComputeNodeConfig: Sendable {
    /// The orchestrator's base URL, e.g. `http://127.0.0.1:1234`.
    public var orchestratorURL: String
    /// The shared join token; must match the orchestrator's.
    public var token: String
    /// Which certificate an `https://` orchestrator may show; nil trusts the system's roots.
    public var orchestratorTLS: ClientTLS?
    /// Folder for this node's identity and execution scratch space.
    public var dataDirectory: URL
    public var labels: [String: String]
    /// What the node offers in total to jobs.
    public var capacity: Resources
    /// The command that runs one WASM module: the `cod` binary and its runner subcommand.
    public var wasmRunnerCommand: [String]
    public var heartbeatInterval: Duration
    /// How many modules run at once on this node; more executions wait their turn here.
    public var maxConcurrentRunners: Int
    /// Where this node's own HTTP API (gateway and data API) listens; nil for none, port 0 for
    /// any free port.
    public var apiHost: String
    public var apiPort: Int?
    /// External IPFS HTTP gateways (trustless, serving `?format=car`) to fetch inputs from when
    /// no Cod node has them.
    public var ipfsGateways: [String]
    /// Stable node ID; read from (or written to) the data folder when nil.
    public var nodeID: String?
    /// The engines to offer; nil offers every engine the probe finds (wasm always; docker when
    /// the Docker API answers; process when bubblewrap works).
    public var engines: [String]?
    /// The Docker API socket; nil reads `DOCKER_HOST`, else `/var/run/docker.sock`.
    public var dockerSocket: String?
    public var pullPolicy: PullPolicy
    /// Network modes jobs may use here (`none`, `host`, `full`).
    public var networks: [String]
    /// Linux capabilities containers keep; every other one is dropped (default: none kept).
    public var containerCapabilities: [String] = []
    /// The package index `cod python run` environments install from (the operator's choice,
    /// never a job's); nil installs nothing from the network (wheels must be on the node).
    public var pythonIndexURL: String?
    /// The operator's prices, published with the node's info.
    public var priceList: PriceList?
    /// The operator's pricing program, asked for each execution's quote below `priceList`.
    public var priceScript: String?
    /// The `nvidia-smi` to ask for GPUs; nil looks it up on PATH.
    public var nvidiaSMI: String?
    /// Makes this node alter the outputs it publishes (a devstack's bad nodes, to show
    /// verification catching them); nil for every real node.
    public var misbehaviour: Misbehaviour?
    /// With `misbehaviour`: how many executions (since the node started) it runs honestly
    /// first, so it can earn a reputation before it lies.
    public var misbehaviourAfter = 0

    public init(
        orchestratorURL: String, token: String, dataDirectory: URL, labels: [String: String] = [:],
        capacity: Resources = ComputeNodeConfig.defaultCapacity(), wasmRunnerCommand: [String] = ComputeNodeConfig.defaultRunnerCommand(),
        heartbeatInterval: Duration = .seconds(5), maxConcurrentRunners: Int = ProcessInfo.processInfo.activeProcessorCount,
        apiHost: String = "127.0.0.1", apiPort: Int? = nil, ipfsGateways: [String] = [], nodeID: String? = nil,
        engines: [String]? = nil, dockerSocket: String? = nil, pullPolicy: PullPolicy = .missing, networks: [String] = ["none"],
        nvidiaSMI: String? = nil
    ) {
        self.orchestratorURL = orchestratorURL
        self.token = token
        self.dataDirectory = dataDirectory
        self.labels = labels
        self.capacity = capacity
        self.wasmRunnerCommand = wasmRunnerCommand
        self.heartbeatInterval = heartbeatInterval
        self.maxConcurrentRunners = maxConcurrentRunners
        self.apiHost = apiHost
        self.apiPort = apiPort
        self.ipfsGateways = ipfsGateways
        self.nodeID = nodeID
        self.engines = engines
        self.dockerSocket = dockerSocket
        self.pullPolicy = pullPolicy
        self.networks = networks
        self.nvidiaSMI = nvidiaSMI
    }

    /// 80% of the machine's cores and memory, as Bacalhau allocates by default.
    public static func defaultCapacity() -> Resources {
        let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
        let memory = ProcessInfo.processInfo.physicalMemory
        let disk: UInt64 = 100_000_000_000
        return Resources(cpu: cores * 0.8, memory: memory / 10 * 8, disk: disk)
    }

    /// This executable, run as `cod wasm-runner SPEC`.
    public static func defaultRunnerCommand() -> [String] {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return [executable, "wasm-runner"]
    }

    /// Reads the node ID from `<data>/node-id`, creating one on first start, so a node keeps
    /// its identity across restarts.
    /// The node's ID: the configured one, else the one a node made before it had a key (kept
    /// in `node-id`, so an upgraded node keeps its identity and its key is enrolled under it),
    /// else the one derived from its key.
    func resolveNodeID(key: Curve25519.Signing.PublicKey) throws -> String {
        if let nodeID { return nodeID }
        let file = dataDirectory.appendingPathComponent("node-id")
        if let existing = try? String(contentsOf: file, encoding: .utf8).trimmingSpaces(), !existing.isEmpty {
            return existing
        }
        // Written for operators and tools that read it; the key stays the identity.
        let id = NodeIdentity.nodeID(publicKey: key)
        try id.write(to: file, atomically: true, encoding: .utf8)
        return id
    }
}
