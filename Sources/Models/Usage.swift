/// What one execution used, as the node that ran it measured it: the counters prices are
/// computed from, and what its signed receipt attests.
///
/// A measurement the node could not make (no cgroup to read, a runner killed before it
/// answered) is nil, never a guess: "not measured" and "zero" are different answers.
public struct Usage: Codable, Sendable, Hashable {
    /// From the start of the execution on the node (inputs fetched) to its end (results packed).
    public var wallSeconds: Double
    /// CPU time of everything the program ran (user and system), across all its cores.
    public var cpuSeconds: Double?
    /// The most memory the program held at once.
    public var peakMemoryBytes: UInt64?
    /// Memory held over time: the integral of held memory, sampled while it ran.
    public var memoryGiBSeconds: Double?
    /// The GPUs allocated to it times the wall time.
    public var gpuSeconds: Double
    /// Input bytes read from this node's own store.
    public var bytesReadLocally: UInt64
    /// Input bytes fetched from other Cod nodes (compute peers and the orchestrator).
    public var bytesReadFromPeers: UInt64
    /// Input bytes fetched from outside the cluster (external gateways).
    public var bytesReadFromOutside: UInt64
    /// The size of the result it published (the CAR or tarball the orchestrator received).
    public var bytesPublished: UInt64
    /// How CPU and memory were measured, e.g. `cgroup v1`, `container cgroup`, `wasm runner`.
    public var meteredBy: String?

    public init(
        wallSeconds: Double, cpuSeconds: Double? = nil, peakMemoryBytes: UInt64? = nil, memoryGiBSeconds: Double? = nil,
        gpuSeconds: Double = 0, bytesReadLocally: UInt64 = 0, bytesReadFromPeers: UInt64 = 0, bytesReadFromOutside: UInt64 = 0,
        bytesPublished: UInt64 = 0, meteredBy: String? = nil
    ) {
        self.wallSeconds = wallSeconds
        self.cpuSeconds = cpuSeconds
        self.peakMemoryBytes = peakMemoryBytes
        self.memoryGiBSeconds = memoryGiBSeconds
        self.gpuSeconds = gpuSeconds
        self.bytesReadLocally = bytesReadLocally
        self.bytesReadFromPeers = bytesReadFromPeers
        self.bytesReadFromOutside = bytesReadFromOutside
        self.bytesPublished = bytesPublished
        self.meteredBy = meteredBy
    }

    enum CodingKeys: String, CodingKey {
        case wallSeconds = "WallSeconds", cpuSeconds = "CPUSeconds", peakMemoryBytes = "PeakMemoryBytes"
        case memoryGiBSeconds = "MemoryGiBSeconds", gpuSeconds = "GPUSeconds", bytesReadLocally = "BytesReadLocally"
        case bytesReadFromPeers = "BytesReadFromPeers", bytesReadFromOutside = "BytesReadFromOutside"
        case bytesPublished = "BytesPublished", meteredBy = "MeteredBy"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        wallSeconds = try c.decode(Double.self, forKey: .wallSeconds)
        cpuSeconds = try c.decodeIfPresent(Double.self, forKey: .cpuSeconds)
        peakMemoryBytes = try c.decodeIfPresent(UInt64.self, forKey: .peakMemoryBytes)
        memoryGiBSeconds = try c.decodeIfPresent(Double.self, forKey: .memoryGiBSeconds)
        gpuSeconds = try c.decodeIfPresent(Double.self, forKey: .gpuSeconds) ?? 0
        bytesReadLocally = try c.decodeIfPresent(UInt64.self, forKey: .bytesReadLocally) ?? 0
        bytesReadFromPeers = try c.decodeIfPresent(UInt64.self, forKey: .bytesReadFromPeers) ?? 0
        bytesReadFromOutside = try c.decodeIfPresent(UInt64.self, forKey: .bytesReadFromOutside) ?? 0
        bytesPublished = try c.decodeIfPresent(UInt64.self, forKey: .bytesPublished) ?? 0
        meteredBy = try c.decodeIfPresent(String.self, forKey: .meteredBy)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(wallSeconds, forKey: .wallSeconds)
        try c.encodeIfPresent(cpuSeconds, forKey: .cpuSeconds)
        try c.encodeIfPresent(peakMemoryBytes, forKey: .peakMemoryBytes)
        try c.encodeIfPresent(memoryGiBSeconds, forKey: .memoryGiBSeconds)
        try c.encode(gpuSeconds, forKey: .gpuSeconds)
        try c.encode(bytesReadLocally, forKey: .bytesReadLocally)
        try c.encode(bytesReadFromPeers, forKey: .bytesReadFromPeers)
        try c.encode(bytesReadFromOutside, forKey: .bytesReadFromOutside)
        try c.encode(bytesPublished, forKey: .bytesPublished)
        try c.encodeIfPresent(meteredBy, forKey: .meteredBy)
    }

    /// Why a node's report of usage cannot be recorded as it is, or nil when it can: a node is
    /// a stranger, and what it claims here is what it is paid by. Times must be finite and not
    /// negative, and no execution runs for more than a year.
    public var problem: String? {
        let year = 366.0 * 86_400
        for (name, value) in [("WallSeconds", wallSeconds), ("CPUSeconds", cpuSeconds), ("MemoryGiBSeconds", memoryGiBSeconds), ("GPUSeconds", gpuSeconds)] {
            guard let value else { continue }
            if !value.isFinite || value < 0 { return "\(name) must be a finite number of 0 or more, got \(value)" }
        }
        if wallSeconds > year { return "WallSeconds \(wallSeconds) is more than a year" }
        if let cpuSeconds, cpuSeconds > wallSeconds * 1024 + 1 { return "CPUSeconds \(cpuSeconds) is more than 1024 cores could use in \(wallSeconds) s" }
        if let meteredBy, meteredBy.utf8.count > 100 { return "MeteredBy is longer than 100 bytes" }
        return nil
    }
}
