/// What a compute node says about itself when it connects and in every heartbeat.
public struct NodeInfo: Codable, Sendable, Hashable {
    public var nodeID: String
    public var nodeType: String
    public var labels: [String: String]
    public var version: BuildVersionInfo
    public var computeNodeInfo: ComputeNodeInfo

    public init(
        nodeID: String, nodeType: String = "Compute", labels: [String: String] = [:],
        version: BuildVersionInfo = .current, computeNodeInfo: ComputeNodeInfo = ComputeNodeInfo()
    ) {
        self.nodeID = nodeID
        self.nodeType = nodeType
        self.labels = labels
        self.version = version
        self.computeNodeInfo = computeNodeInfo
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "NodeID", nodeType = "NodeType", labels = "Labels", version = "BacalhauVersion"
        case computeNodeInfo = "ComputeNodeInfo"
    }
}

/// The compute side of ``NodeInfo``: engines, publishers, input types and capacity.
public struct ComputeNodeInfo: Codable, Sendable, Hashable {
    public var executionEngines: [String]
    public var publishers: [String]
    public var storageSources: [String]
    public var maxCapacity: Resources
    public var availableCapacity: Resources
    public var maxJobRequirements: Resources
    public var runningExecutions: Int
    public var enqueuedExecutions: Int
    /// Where the node's own HTTP API (gateway, data API) answers, when it has one.
    public var address: String
    /// Roots of the DAGs the node holds whole (its pins), as CIDv1 strings.
    public var heldRoots: [String]
    /// The network modes jobs may use on this node (`none`, `host`, `full`); none but `none`
    /// unless the operator allows more.
    public var networks: [String]
    /// The GPUs the node found (their count is `maxCapacity.gpu`).
    public var gpus: [GPUInfo]
    /// The operator's prices (`--price-list`), nil when the node sets none, and the CID of
    /// their canonical JSON (raw, SHA-256), which the orchestrator computes itself.
    public var priceList: PriceList?
    public var priceListCID: String?

    public init(
        executionEngines: [String] = [], publishers: [String] = [], storageSources: [String] = [],
        maxCapacity: Resources = Resources(), availableCapacity: Resources = Resources(),
        maxJobRequirements: Resources = Resources(), runningExecutions: Int = 0, enqueuedExecutions: Int = 0,
        address: String = "", heldRoots: [String] = [], networks: [String] = ["none"], gpus: [GPUInfo] = []
    ) {
        self.executionEngines = executionEngines
        self.publishers = publishers
        self.storageSources = storageSources
        self.maxCapacity = maxCapacity
        self.availableCapacity = availableCapacity
        self.maxJobRequirements = maxJobRequirements
        self.runningExecutions = runningExecutions
        self.enqueuedExecutions = enqueuedExecutions
        self.address = address
        self.heldRoots = heldRoots
        self.networks = networks
        self.gpus = gpus
    }

    enum CodingKeys: String, CodingKey {
        case executionEngines = "ExecutionEngines", publishers = "Publishers", storageSources = "StorageSources"
        case maxCapacity = "MaxCapacity", availableCapacity = "AvailableCapacity"
        case maxJobRequirements = "MaxJobRequirements", runningExecutions = "RunningExecutions"
        case enqueuedExecutions = "EnqueuedExecutions", address = "Address", heldRoots = "HeldRoots"
        case networks = "Networks", gpus = "GPUs", priceList = "PriceList", priceListCID = "PriceListCID"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        executionEngines = try c.decodeIfPresent([String].self, forKey: .executionEngines) ?? []
        publishers = try c.decodeIfPresent([String].self, forKey: .publishers) ?? []
        storageSources = try c.decodeIfPresent([String].self, forKey: .storageSources) ?? []
        maxCapacity = try c.decodeIfPresent(Resources.self, forKey: .maxCapacity) ?? Resources()
        availableCapacity = try c.decodeIfPresent(Resources.self, forKey: .availableCapacity) ?? Resources()
        maxJobRequirements = try c.decodeIfPresent(Resources.self, forKey: .maxJobRequirements) ?? Resources()
        runningExecutions = try c.decodeIfPresent(Int.self, forKey: .runningExecutions) ?? 0
        enqueuedExecutions = try c.decodeIfPresent(Int.self, forKey: .enqueuedExecutions) ?? 0
        address = try c.decodeIfPresent(String.self, forKey: .address) ?? ""
        heldRoots = try c.decodeIfPresent([String].self, forKey: .heldRoots) ?? []
        networks = try c.decodeIfPresent([String].self, forKey: .networks) ?? ["none"]
        gpus = try c.decodeIfPresent([GPUInfo].self, forKey: .gpus) ?? []
        priceList = try c.decodeIfPresent(PriceList.self, forKey: .priceList)
        priceListCID = try c.decodeIfPresent(String.self, forKey: .priceListCID)
    }
}

/// One GPU a compute node found, in Bacalhau's shape.
public struct GPUInfo: Codable, Sendable, Hashable {
    public var index: Int
    public var name: String
    public var vendor: String
    /// Memory in MiB.
    public var memory: UInt64
    public var pciAddress: String

    public init(index: Int, name: String, vendor: String = "NVIDIA", memory: UInt64 = 0, pciAddress: String = "") {
        self.index = index
        self.name = name
        self.vendor = vendor
        self.memory = memory
        self.pciAddress = pciAddress
    }

    /// Parses `nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id
    /// --format=csv,noheader,nounits` output; lines that do not fit are skipped.
    public static func parseNvidiaSMI(_ text: String) -> [GPUInfo] {
        text.split(whereSeparator: \.isNewline).compactMap { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
            guard fields.count >= 3, let index = Int(fields[0]), !fields[1].isEmpty else { return nil }
            return GPUInfo(
                index: index, name: fields[1], vendor: "NVIDIA", memory: UInt64(fields[2]) ?? 0,
                pciAddress: fields.count > 3 ? fields[3] : "")
        }
    }

    enum CodingKeys: String, CodingKey {
        case index = "Index", name = "Name", vendor = "Vendor", memory = "Memory", pciAddress = "PCIAddress"
    }
}

/// Version information reported by `/api/v1/agent/version` and in ``NodeInfo``.
public struct BuildVersionInfo: Codable, Sendable, Hashable {
    public var major: String
    public var minor: String
    public var gitVersion: String
    public var gitCommit: String
    public var buildDate: String
    public var goos: String
    public var goarch: String

    public init(
        major: String, minor: String, gitVersion: String, gitCommit: String = "", buildDate: String = "",
        goos: String = "linux", goarch: String = "amd64"
    ) {
        self.major = major
        self.minor = minor
        self.gitVersion = gitVersion
        self.gitCommit = gitCommit
        self.buildDate = buildDate
        self.goos = goos
        self.goarch = goarch
    }

    enum CodingKeys: String, CodingKey {
        case major = "Major", minor = "Minor", gitVersion = "GitVersion", gitCommit = "GitCommit"
        case buildDate = "BuildDate", goos = "GOOS", goarch = "GOARCH"
    }

    /// This build of Cod.
    public static let current: BuildVersionInfo = {
        #if arch(arm64)
            let arch = "arm64"
        #else
            let arch = "amd64"
        #endif
        return BuildVersionInfo(
            major: "0", minor: "1", gitVersion: CodVersion.string, goos: "linux", goarch: arch)
    }()
}

/// The version string of this build.
public enum CodVersion {
    public static let string = "v0.1.0"
}

/// Whether the orchestrator lets a node take work.
public enum NodeMembership: String, Codable, Sendable, Hashable, CaseIterable {
    case pending = "PENDING"
    case approved = "APPROVED"
    case rejected = "REJECTED"
}

/// Whether a node's connection is alive.
public enum NodeConnection: String, Codable, Sendable, Hashable, CaseIterable {
    case connected = "CONNECTED"
    case disconnected = "DISCONNECTED"
}

/// The orchestrator's record of a node: what it said, whether it may work, whether it is there.
public struct NodeState: Codable, Sendable, Hashable {
    public var info: NodeInfo
    public var membership: NodeMembership
    public var connection: NodeConnection
    /// Unix nanoseconds of the last heartbeat or message.
    public var lastHeartbeat: Int64
    public var connectedSince: Int64
    /// Healthy, suspect or lost (``NodeLivenessMachine``).
    public var liveness: NodeLiveness
    /// Why the last hello naming this node was refused (another key claimed its ID); nil
    /// when none was. Not stored with the node: the store adds it when listing.
    public var lastRefusal: String?
    /// Its results that verification found invalid, over all work (from its reputation; not
    /// stored with the node).
    public var invalidResults: Int = 0
    /// Why it gets no new work, when the orchestrator quarantined it (too many invalid
    /// results); nil otherwise. Decided when read, from `invalidResults` and the setting.
    public var quarantine: String?
    /// The Ed25519 public key (base64) it enrolled with, which verifies its receipts; added
    /// when listing.
    public var publicKey: String?

    public init(
        info: NodeInfo, membership: NodeMembership = .approved, connection: NodeConnection = .connected,
        lastHeartbeat: Int64 = 0, connectedSince: Int64 = 0, liveness: NodeLiveness? = nil
    ) {
        self.info = info
        self.membership = membership
        self.connection = connection
        self.lastHeartbeat = lastHeartbeat
        self.connectedSince = connectedSince
        self.liveness = liveness ?? (connection == .connected ? .healthy : .lost)
    }

    enum CodingKeys: String, CodingKey {
        case info = "Info", membership = "Membership", connection = "Connection"
        case connectionState = "ConnectionState", liveness = "Liveness", lastRefusal = "LastRefusal"
        case invalidResults = "InvalidResults", quarantine = "Quarantine", publicKey = "PublicKey"
    }

    enum ConnectionStateKeys: String, CodingKey {
        case status = "Status", lastHeartbeat = "LastHeartbeat", connectedSince = "ConnectedSince"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        info = try c.decode(NodeInfo.self, forKey: .info)
        membership = try c.decodeIfPresent(NodeMembership.self, forKey: .membership) ?? .approved
        connection = try c.decodeIfPresent(NodeConnection.self, forKey: .connection) ?? .disconnected
        if c.contains(.connectionState) {
            let s = try c.nestedContainer(keyedBy: ConnectionStateKeys.self, forKey: .connectionState)
            lastHeartbeat = try s.decodeIfPresent(Int64.self, forKey: .lastHeartbeat) ?? 0
            connectedSince = try s.decodeIfPresent(Int64.self, forKey: .connectedSince) ?? 0
        } else {
            lastHeartbeat = 0
            connectedSince = 0
        }
        liveness = try c.decodeIfPresent(NodeLiveness.self, forKey: .liveness) ?? (connection == .connected ? .healthy : .lost)
        lastRefusal = try c.decodeIfPresent(String.self, forKey: .lastRefusal)
        invalidResults = try c.decodeIfPresent(Int.self, forKey: .invalidResults) ?? 0
        quarantine = try c.decodeIfPresent(String.self, forKey: .quarantine)
        publicKey = try c.decodeIfPresent(String.self, forKey: .publicKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(info, forKey: .info)
        try c.encode(membership, forKey: .membership)
        // Both the older flat `Connection` and the current nested `ConnectionState` are sent,
        // so clients of either generation read it.
        try c.encode(connection, forKey: .connection)
        var s = c.nestedContainer(keyedBy: ConnectionStateKeys.self, forKey: .connectionState)
        try s.encode(connection, forKey: .status)
        try s.encode(lastHeartbeat, forKey: .lastHeartbeat)
        try s.encode(connectedSince, forKey: .connectedSince)
        try c.encode(liveness, forKey: .liveness)
        try c.encodeIfPresent(lastRefusal, forKey: .lastRefusal)
        if invalidResults > 0 { try c.encode(invalidResults, forKey: .invalidResults) }
        try c.encodeIfPresent(quarantine, forKey: .quarantine)
        try c.encodeIfPresent(publicKey, forKey: .publicKey)
    }
}
