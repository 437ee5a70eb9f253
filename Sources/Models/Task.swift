/// The unit of work inside a job: which engine runs what, with which inputs, outputs and limits.
public struct JobTask: Codable, Sendable, Hashable {
    public var name: String
    public var engine: SpecConfig
    public var publisher: SpecConfig
    public var env: [String: String]
    public var meta: [String: String]
    public var inputSources: [InputSource]
    public var resultPaths: [ResultPath]
    public var resources: ResourcesConfig
    public var network: NetworkConfig
    public var timeouts: TimeoutConfig

    public init(
        name: String = "main", engine: SpecConfig = SpecConfig(type: ""), publisher: SpecConfig = SpecConfig(type: ""),
        env: [String: String] = [:], meta: [String: String] = [:], inputSources: [InputSource] = [],
        resultPaths: [ResultPath] = [], resources: ResourcesConfig = ResourcesConfig(),
        network: NetworkConfig = NetworkConfig(), timeouts: TimeoutConfig = TimeoutConfig()
    ) {
        self.name = name
        self.engine = engine
        self.publisher = publisher
        self.env = env
        self.meta = meta
        self.inputSources = inputSources
        self.resultPaths = resultPaths
        self.resources = resources
        self.network = network
        self.timeouts = timeouts
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", engine = "Engine", publisher = "Publisher", env = "Env", meta = "Meta"
        case inputSources = "InputSources", resultPaths = "ResultPaths", resources = "Resources"
        case network = "Network", timeouts = "Timeouts"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        engine = try c.decodeIfPresent(SpecConfig.self, forKey: .engine) ?? SpecConfig(type: "")
        publisher = try c.decodeIfPresent(SpecConfig.self, forKey: .publisher) ?? SpecConfig(type: "")
        env = try c.decodeIfPresent([String: String].self, forKey: .env) ?? [:]
        meta = try c.decodeIfPresent([String: String].self, forKey: .meta) ?? [:]
        inputSources = try c.decodeIfPresent([InputSource].self, forKey: .inputSources) ?? []
        resultPaths = try c.decodeIfPresent([ResultPath].self, forKey: .resultPaths) ?? []
        resources = try c.decodeIfPresent(ResourcesConfig.self, forKey: .resources) ?? ResourcesConfig()
        network = try c.decodeIfPresent(NetworkConfig.self, forKey: .network) ?? NetworkConfig()
        timeouts = try c.decodeIfPresent(TimeoutConfig.self, forKey: .timeouts) ?? TimeoutConfig()
    }
}

/// Data a task reads: where it comes from (`Source`) and where it appears (`Target`).
public struct InputSource: Codable, Sendable, Hashable {
    public var source: SpecConfig
    public var alias: String
    public var target: String

    public init(source: SpecConfig, alias: String = "", target: String) {
        self.source = source
        self.alias = alias
        self.target = target
    }

    enum CodingKeys: String, CodingKey {
        case source = "Source", alias = "Alias", target = "Target"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decodeIfPresent(SpecConfig.self, forKey: .source) ?? SpecConfig(type: "")
        alias = try c.decodeIfPresent(String.self, forKey: .alias) ?? ""
        target = try c.decodeIfPresent(String.self, forKey: .target) ?? ""
    }
}

/// A folder the task writes whose contents become part of the result, under `Name`.
public struct ResultPath: Codable, Sendable, Hashable {
    public var name: String
    public var path: String

    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name", path = "Path"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        path = try c.decodeIfPresent(String.self, forKey: .path) ?? ""
    }
}

/// Requested resources as the user writes them: `CPU: 500m`, `Memory: 512Mb`.
public struct ResourcesConfig: Codable, Sendable, Hashable {
    public var cpu: String
    public var memory: String
    public var disk: String
    public var gpu: String

    public init(cpu: String = "", memory: String = "", disk: String = "", gpu: String = "") {
        self.cpu = cpu
        self.memory = memory
        self.disk = disk
        self.gpu = gpu
    }

    enum CodingKeys: String, CodingKey {
        case cpu = "CPU", memory = "Memory", disk = "Disk", gpu = "GPU"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        cpu = try Self.decodeLoose(c, .cpu)
        memory = try Self.decodeLoose(c, .memory)
        disk = try Self.decodeLoose(c, .disk)
        gpu = try Self.decodeLoose(c, .gpu)
    }

    /// Accepts numbers as well as strings (`GPU: 1`, `CPU: 0.5`), as YAML users write both.
    private static func decodeLoose(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> String {
        guard let value = try c.decodeIfPresent(JSONValue.self, forKey: key) else { return "" }
        switch value {
        case .string(let string): return string
        case .int(let int): return String(int)
        case .double(let double): return String(double)
        case .null: return ""
        case .bool, .array, .object:
            throw DecodingError.typeMismatch(
                String.self,
                .init(codingPath: c.codingPath + [key], debugDescription: "expected a string or a number, got \(value.typeName)"))
        }
    }
}

/// Network access a task asks for.
public struct NetworkConfig: Codable, Sendable, Hashable {
    public var type: String
    public var domains: [String]

    public init(type: String = "", domains: [String] = []) {
        self.type = type
        self.domains = domains
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type", domains = "Domains"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? ""
        domains = try c.decodeIfPresent([String].self, forKey: .domains) ?? []
    }
}

/// Timeouts in seconds; 0 means "use the default" (execution) or "none" (queue, total).
public struct TimeoutConfig: Codable, Sendable, Hashable {
    public var executionTimeout: Int64
    public var queueTimeout: Int64
    public var totalTimeout: Int64

    /// The execution timeout a node uses when a job sets none (batch and ops jobs), seconds.
    public static let defaultExecutionTimeout: Int64 = 1800

    /// The deadline a node enforces on one execution, in seconds; nil for none. Job types that
    /// run until stopped get none unless they set one, as in Bacalhau (a service killed after
    /// 30 minutes is a bug, not a limit).
    public func executionDeadline(jobType: JobType) -> Int64? {
        if executionTimeout > 0 { return executionTimeout }
        return jobType.isLongRunning ? nil : Self.defaultExecutionTimeout
    }

    public init(executionTimeout: Int64 = 0, queueTimeout: Int64 = 0, totalTimeout: Int64 = 0) {
        self.executionTimeout = executionTimeout
        self.queueTimeout = queueTimeout
        self.totalTimeout = totalTimeout
    }

    enum CodingKeys: String, CodingKey {
        case executionTimeout = "ExecutionTimeout", queueTimeout = "QueueTimeout", totalTimeout = "TotalTimeout"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        executionTimeout = try c.decodeIfPresent(Int64.self, forKey: .executionTimeout) ?? 0
        queueTimeout = try c.decodeIfPresent(Int64.self, forKey: .queueTimeout) ?? 0
        totalTimeout = try c.decodeIfPresent(Int64.self, forKey: .totalTimeout) ?? 0
    }
}
