/// One thing wrong with a job spec: where (`Tasks[0].Resources.Memory`) and what is expected.
public struct ValidationProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// Defaults a submitted job the way Bacalhau's transformers do, before validation.
public struct JobNormalizer: Sendable {
    /// The execution timeout used when a task sets none, in seconds.
    public var defaultExecutionTimeout: Int64

    public init(defaultExecutionTimeout: Int64 = TimeoutConfig.defaultExecutionTimeout) {
        self.defaultExecutionTimeout = defaultExecutionTimeout
    }

    public func normalize(_ input: Job) -> Job {
        var job = input
        if job.namespace.isEmpty { job.namespace = "default" }
        if job.type.isEmpty { job.type = "batch" }
        job.type = job.type.lowercased()
        if job.count == nil || job.count == 0 { job.count = 1 }
        job.meta = job.meta.filter { !$0.key.hasPrefix("bacalhau.org/") }
        job.tasks = job.tasks.map { normalize($0, longRunning: JobType(spec: job.type)?.isLongRunning == true) }
        return job
    }

    func normalize(_ input: JobTask, longRunning: Bool = false) -> JobTask {
        var task = input
        if task.name.isEmpty { task.name = "main" }
        // Results are published by CID unless the job asks otherwise.
        if task.publisher.isEmpty { task.publisher = SpecConfig(type: "ipfs") }
        // Daemons and services run until stopped: no default execution timeout for them.
        if task.timeouts.executionTimeout == 0, !longRunning {
            // The default, but never more than what a total timeout leaves after queueing.
            // Timeouts are not validated yet here: the subtraction must not trap on any pair.
            let total = task.timeouts.totalTimeout
            let (left, overflow) = total.subtractingReportingOverflow(task.timeouts.queueTimeout)
            task.timeouts.executionTimeout = total > 0
                ? min(defaultExecutionTimeout, max(1, overflow ? 1 : left)) : defaultExecutionTimeout
        }
        if task.engine.normalizedType == "wasm" { rewriteLegacyWasm(&task) }
        return task
    }

    /// The legacy WASM format embedded the modules as input sources inside the engine params;
    /// move them into `InputSources` at Bacalhau's default targets and point the params there.
    private func rewriteLegacyWasm(_ task: inout JobTask) {
        var params = task.engine.params
        if case .object = params["EntryModule"], let source = decodeLegacySource(params["EntryModule"]!) {
            let target = source.target.isEmpty ? "/wasm/entry.wasm" : source.target
            task.inputSources.append(InputSource(source: source.source, alias: source.alias, target: target))
            params["EntryModule"] = .string(target)
        }
        if case .array(let items) = params["ImportModules"], items.contains(where: { $0.objectValue != nil }) {
            var targets: [JSONValue] = []
            for (index, item) in items.enumerated() {
                if let source = decodeLegacySource(item) {
                    let target = source.target.isEmpty ? "/wasm/imports/module_\(index).wasm" : source.target
                    task.inputSources.append(InputSource(source: source.source, alias: source.alias, target: target))
                    targets.append(.string(target))
                } else {
                    targets.append(item)
                }
            }
            params["ImportModules"] = .array(targets)
        }
        if params["Entrypoint"] == nil, let legacy = params["EntryPoint"] {
            params["Entrypoint"] = legacy
            params["EntryPoint"] = nil
        }
        task.engine.params = params
    }

    private func decodeLegacySource(_ value: JSONValue) -> InputSource? {
        guard case .object(let object) = value else { return nil }
        guard case .object(let sourceObject)? = object["Source"] else { return nil }
        let type = sourceObject["Type"]?.stringValue ?? ""
        let params = sourceObject["Params"]?.objectValue ?? [:]
        return InputSource(
            source: SpecConfig(type: type, params: params), alias: object["Alias"]?.stringValue ?? "",
            target: object["Target"]?.stringValue ?? "")
    }
}

/// Checks a normalised job and reports every problem at once.
public struct JobValidator: Sendable {
    public static let jobTypes = JobType.allCases.map(\.rawValue)
    public static let operators = ["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]
    public static let networkTypes = ["default", "none", "host", "full", "http", "bridge"]
    public static let publisherTypes = ["local", "noop", "ipfs", "s3", "s3managed"]
    public static let inputTypes = ["inline", "ipfs", "urldownload", "s3", "local", "localdirectory"]

    /// The most partitions one job may ask for.
    public var maxCount: Int
    /// Checks a CID's text; returns what is wrong, nil when it is a CID. Models cannot parse
    /// CIDs itself (that is ContentAddressing's job), so the orchestrator passes the parser.
    public var checkCID: (@Sendable (String) -> String?)?

    /// The longest timeout a spec may give, in seconds (100 years): any larger number is a
    /// mistake, and sums of timeouts in nanoseconds stay far from overflowing.
    public static let maxTimeoutSeconds: Int64 = 100 * 365 * 86_400
    /// The most input sources, result paths, environment variables and constraints a task may list.
    public static let maxListItems = 1_000

    public init(maxCount: Int = 10_000, checkCID: (@Sendable (String) -> String?)? = nil) {
        self.maxCount = maxCount
        self.checkCID = checkCID
    }

    /// Normalises and validates; throws one error listing every problem.
    public func prepare(_ job: Job, normalizer: JobNormalizer = JobNormalizer()) throws -> Job {
        let normalized = normalizer.normalize(job)
        let problems = validate(normalized)
        if !problems.isEmpty {
            throw CodError(.invalidJob, Self.describe(problems))
        }
        return normalized
    }

    public func validate(_ job: Job) -> [ValidationProblem] {
        var problems: [ValidationProblem] = []
        if JobType(rawValue: job.type) == nil {
            problems.append(.init("Type", "unknown job type \"\(job.type)\"; expected one of \(Self.jobTypes.joined(separator: ", "))"))
        }
        if let count = job.count, count < 0 || count > maxCount {
            problems.append(.init("Count", "must be between 0 and \(maxCount), got \(count)"))
        }
        if job.name.count > 256 { problems.append(.init("Name", "must be at most 256 characters")) }
        if job.namespace.contains("/") || job.namespace.contains(" ") {
            problems.append(.init("Namespace", "must not contain spaces or slashes"))
        }
        if job.constraints.count > Self.maxListItems {
            problems.append(.init("Constraints", "at most \(Self.maxListItems) constraints, got \(job.constraints.count)"))
        }
        for (index, constraint) in job.constraints.enumerated() {
            validate(constraint, path: "Constraints[\(index)]", into: &problems)
        }
        switch job.tasks.count {
        case 0: problems.append(.init("Tasks", "required: a job needs exactly one task"))
        case 1: validate(job.tasks[0], path: "Tasks[0]", into: &problems)
        case 2:
            // The second task reduces: it runs once, after every partition completed.
            validate(job.tasks[0], path: "Tasks[0]", into: &problems)
            validate(job.tasks[1], path: "Tasks[1]", into: &problems)
            validateReduce(job, into: &problems)
        default:
            problems.append(.init("Tasks", "a job has one task, or two (the second reduces the first's partitions), got \(job.tasks.count)"))
            validate(job.tasks[0], path: "Tasks[0]", into: &problems)
        }
        validatePartitioning(job, into: &problems)
        validateVerification(job, into: &problems)
        validatePricing(job, into: &problems)
        return problems
    }

    /// Prices are in Cod's own credits; a budget is a positive, bounded amount of them.
    func validatePricing(_ job: Job, into problems: inout [ValidationProblem]) {
        if let problem = job.pricing?.maxPrice?.problem { problems.append(.init("Pricing.MaxPrice.Currency", problem)) }
        for (field, message) in job.budget?.problems ?? [] { problems.append(.init(field, message)) }
        for (field, message) in job.children?.problems ?? [] { problems.append(.init(field, message)) }
    }

    /// A verified or spot-checked job is a batch job whose results are DAGs the orchestrator
    /// can compare.
    func validateVerification(_ job: Job, into problems: inout [ValidationProblem]) {
        guard let verification = job.verification else { return }
        problems += verification.problems()
        guard verification.isVerified || (verification.mode == .fast && verification.spotCheck != 0) else { return }
        let (field, what) = verification.isVerified ? ("Verification.Mode", "Verified") : ("Verification.SpotCheck", "SpotCheck")
        if job.jobType != .batch {
            problems.append(.init(field, "\(what) needs a batch job (ops, daemon and service jobs are not re-run for checking), not \(job.type)"))
        }
        let publisher = job.task.publisher.normalizedType
        if !["", "ipfs"].contains(publisher) {
            problems.append(.init("Tasks[0].Publisher.Type", "must be ipfs for \(what): results are compared by CID, not \(publisher)"))
        }
    }

    func validateReduce(_ job: Job, into problems: inout [ValidationProblem]) {
        if job.jobType != .batch {
            problems.append(.init("Tasks[1]", "a reduce task needs a batch job, not \(job.type)"))
        }
        let mapPublisher = job.tasks[0].publisher.normalizedType
        if !["", "ipfs"].contains(mapPublisher) {
            problems.append(.init("Tasks[0].Publisher.Type", "must be ipfs when a reduce task follows: the reduce reads the partitions' results by CID, not \(mapPublisher)"))
        }
        if job.tasks[0].name == job.tasks[1].name, !job.tasks[0].name.isEmpty {
            problems.append(.init("Tasks[1].Name", "must differ from Tasks[0].Name (\(job.tasks[0].name))"))
        }
        for (index, input) in job.tasks[1].inputSources.enumerated() {
            if let target = GuestPath.clean(input.target), GuestPath.isWithin(target, "/inputs") {
                problems.append(.init("Tasks[1].InputSources[\(index)].Target", "\(target) is inside /inputs, where the partitions' outputs appear; choose another target"))
            }
            if PartitionSpec.of(input.source) != nil {
                problems.append(.init("Tasks[1].InputSources[\(index)].Source.Params.Partition", "a reduce task reads whole inputs; partition the first task's input"))
            }
        }
    }

    /// `Params.Partition` on `ipfs` inputs: at most one per task, batch jobs only, and `Count`
    /// left to the partitioning.
    func validatePartitioning(_ job: Job, into problems: inout [ValidationProblem]) {
        guard let task = job.tasks.first else { return }
        var partitioned: [Int] = []
        for (index, input) in task.inputSources.enumerated() {
            let path = "Tasks[0].InputSources[\(index)].Source"
            var found: [ValidationProblem] = []
            let spec = PartitionSpec.parse(input.source, path: path, problems: &found)
            if input.source.normalizedType != "ipfs" {
                if input.source.params["Partition"] != nil {
                    problems.append(.init(path + ".Params.Partition", "only ipfs inputs (datasets) can be partitioned"))
                }
                continue
            }
            problems += found
            if spec != nil { partitioned.append(index) }
        }
        if partitioned.count > 1 {
            problems.append(.init("Tasks[0].InputSources", "only one input can be partitioned, got \(partitioned.count)"))
        }
        if !partitioned.isEmpty, job.jobType != .batch {
            problems.append(.init("Tasks[0].InputSources[\(partitioned[0])].Source.Params.Partition", "partitioned inputs need a batch job, not \(job.type)"))
        }
    }

    func validate(_ constraint: LabelSelectorRequirement, path: String, into problems: inout [ValidationProblem]) {
        if constraint.key.isEmpty { problems.append(.init(path + ".Key", "required")) }
        let op = constraint.operator.lowercased()
        guard Self.operators.contains(op) else {
            problems.append(.init(path + ".Operator", "unknown operator \"\(constraint.operator)\"; expected one of \(Self.operators.joined(separator: ", "))"))
            return
        }
        switch op {
        case "exists", "!":
            if !constraint.values.isEmpty { problems.append(.init(path + ".Values", "must be empty for \(op)")) }
        case "gt", "lt":
            if constraint.values.count != 1 || Int64(constraint.values[0]) == nil {
                problems.append(.init(path + ".Values", "\(op) needs exactly one integer value"))
            }
        case "=", "==", "!=":
            if constraint.values.count != 1 { problems.append(.init(path + ".Values", "\(op) needs exactly one value")) }
        default:
            if constraint.values.isEmpty { problems.append(.init(path + ".Values", "\(op) needs at least one value")) }
        }
    }

    func validateEngine(_ task: JobTask, path: String, targets: Set<String>, into problems: inout [ValidationProblem]) {
        switch task.engine.normalizedType {
        case "":
            problems.append(.init(path + ".Type", "required: e.g. wasm or docker"))
        case "wasm":
            guard let spec = WasmEngineSpec.parse(task.engine, path: path + ".Params", problems: &problems) else { return }
            for (label, module) in [("EntryModule", spec.entryModule)] + spec.importModules.map({ ("ImportModules", $0) }) {
                guard let clean = GuestPath.clean(module) else {
                    problems.append(.init("\(path).Params.\(label)", "must not contain '..'"))
                    continue
                }
                if !targets.contains(where: { GuestPath.isWithin(clean, $0) }) {
                    problems.append(.init("\(path).Params.\(label)", "\"\(module)\" is not the target of any input; add an input with Target \(clean)"))
                }
            }
            if task.network.type.lowercased() != "", !["none", "default"].contains(task.network.type.lowercased()) {
                problems.append(.init("\(path.dropLast(".Engine".count)).Network.Type", "WASM jobs have no network access; use None or leave it empty"))
            }
        case "docker":
            _ = DockerEngineSpec.parse(task.engine, path: path + ".Params", problems: &problems)
        case "process":
            guard let spec = ProcessEngineSpec.parse(task.engine, path: path + ".Params", problems: &problems) else { return }
            if let requirements = spec.pythonRequirements, !targets.contains(where: { GuestPath.isWithin(requirements, $0) }) {
                problems.append(.init(path + ".Params.PythonRequirements", "\"\(requirements)\" is not the target of any input; add an input with Target \(requirements)"))
            }
        case "noop":
            break
        default:
            problems.append(.init(path + ".Type", "unknown engine \"\(task.engine.type)\"; expected wasm, docker, process or noop"))
        }
    }

    func validate(_ source: SpecConfig, path: String, into problems: inout [ValidationProblem]) {
        let type = source.normalizedType
        if type.isEmpty {
            problems.append(.init(path + ".Type", "required: e.g. inline, ipfs, urlDownload"))
            return
        }
        guard Self.inputTypes.contains(type) else {
            problems.append(.init(path + ".Type", "unknown input source \"\(source.type)\"; expected one of inline, ipfs, urlDownload, s3, local"))
            return
        }
        switch type {
        case "inline":
            guard let url = source.params["URL"]?.stringValue, !url.isEmpty else {
                problems.append(.init(path + ".Params.URL", "required: a data: URL"))
                return
            }
            if !url.hasPrefix("data:") || !url.contains(",") {
                problems.append(.init(path + ".Params.URL", "must be a data: URL (data:[<mediatype>][;base64],<data>)"))
            } else if let comma = url.firstIndex(of: ","), url[..<comma].hasSuffix(";base64"),
                url[url.index(after: comma)...].contains(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "+/=\r\n".contains($0))) })
            {
                problems.append(.init(path + ".Params.URL", "the base64 payload holds characters that are not base64"))
            }
        case "ipfs":
            if let cid = source.params["CID"]?.stringValue, !cid.isEmpty {
                if let problem = checkCID?(cid) { problems.append(.init(path + ".Params.CID", problem)) }
            } else {
                problems.append(.init(path + ".Params.CID", "required"))
            }
        case "urldownload":
            let url = source.params["URL"]?.stringValue ?? ""
            if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                problems.append(.init(path + ".Params.URL", "required: an http:// or https:// URL"))
            } else if url.count > 8192 || url.contains(where: { $0 == " " || $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) }) {
                problems.append(.init(path + ".Params.URL", "is not a valid URL (spaces, control characters, or over 8192 characters)"))
            }
        default:
            break
        }
    }

    static func isEnvName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.properties.isAlphabetic && first.isASCII)
        else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" }
    }

    /// One message listing every problem, for error responses and the CLI.
    public static func describe(_ problems: [ValidationProblem]) -> String {
        let noun = problems.count == 1 ? "problem" : "problems"
        return "the job spec has \(problems.count) \(noun):\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
    }
}
