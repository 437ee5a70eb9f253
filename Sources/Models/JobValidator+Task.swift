/// A task's checks: inputs, results, engine, publisher, environment, resources, network and
/// timeouts, each with its field path.
extension JobValidator {
    func validate(_ task: JobTask, path: String, into problems: inout [ValidationProblem]) {
        if task.name.isEmpty { problems.append(.init(path + ".Name", "required")) }
        for (field, count) in [("InputSources", task.inputSources.count), ("ResultPaths", task.resultPaths.count), ("Env", task.env.count)]
        where count > Self.maxListItems {
            problems.append(.init("\(path).\(field)", "at most \(Self.maxListItems) entries, got \(count)"))
        }
        let targets = validateInputs(task, path: path, into: &problems)
        validateResults(task, path: path, targets: targets, into: &problems)
        validateEngine(task, path: path + ".Engine", targets: targets, into: &problems)
        if !Self.publisherTypes.contains(task.publisher.normalizedType) {
            problems.append(.init(path + ".Publisher.Type", "unknown publisher \"\(task.publisher.type)\"; expected one of \(Self.publisherTypes.joined(separator: ", "))"))
        }
        validateEnv(task, path: path, into: &problems)
        validateResources(task.resources, path: path, into: &problems)
        validateNetwork(task, path: path, into: &problems)
        validateTimeouts(task.timeouts, path: path, into: &problems)
    }

    /// Each input's target and alias; returns the targets (results may not overlap them).
    func validateInputs(_ task: JobTask, path: String, into problems: inout [ValidationProblem]) -> Set<String> {
        var targets = Set<String>()
        var aliases = Set<String>()
        for (index, input) in task.inputSources.enumerated() {
            let inputPath = "\(path).InputSources[\(index)]"
            if input.target.isEmpty {
                problems.append(.init(inputPath + ".Target", "required: where the input appears, e.g. /inputs"))
            } else if let clean = GuestPath.clean(input.target) {
                if clean == "/" { problems.append(.init(inputPath + ".Target", "cannot be the root /")) }
                if !targets.insert(clean).inserted {
                    problems.append(.init(inputPath + ".Target", "duplicate target \(clean)"))
                }
            } else {
                problems.append(.init(inputPath + ".Target", "must not contain '..'"))
            }
            if !input.alias.isEmpty, !aliases.insert(input.alias).inserted {
                problems.append(.init(inputPath + ".Alias", "duplicate alias \(input.alias)"))
            }
            validate(input.source, path: inputPath + ".Source", into: &problems)
        }
        return targets
    }

    func validateResults(_ task: JobTask, path: String, targets: Set<String>, into problems: inout [ValidationProblem]) {
        var names = Set<String>()
        var resultPaths = Set<String>()
        for (index, result) in task.resultPaths.enumerated() {
            let resultPath = "\(path).ResultPaths[\(index)]"
            if result.name.isEmpty {
                problems.append(.init(resultPath + ".Name", "required"))
            } else if result.name.contains("/") || result.name == "." || result.name == ".."
                || ["stdout", "stderr", "exitCode"].contains(result.name)
            {
                problems.append(.init(resultPath + ".Name", "\"\(result.name)\" is not a valid folder name (no '/', not stdout, stderr or exitCode)"))
            } else if !names.insert(result.name).inserted {
                problems.append(.init(resultPath + ".Name", "duplicate name \(result.name)"))
            }
            if result.path.isEmpty {
                problems.append(.init(resultPath + ".Path", "required: the folder the task writes, e.g. /outputs"))
            } else if let clean = GuestPath.clean(result.path) {
                if clean == "/" { problems.append(.init(resultPath + ".Path", "cannot be the root /")) }
                if !resultPaths.insert(clean).inserted {
                    problems.append(.init(resultPath + ".Path", "duplicate path \(clean)"))
                }
                if let clash = targets.first(where: { GuestPath.isWithin(clean, $0) || GuestPath.isWithin($0, clean) }) {
                    problems.append(.init(resultPath + ".Path", "overlaps the input target \(clash); inputs are read-only"))
                }
            } else {
                problems.append(.init(resultPath + ".Path", "must not contain '..'"))
            }
        }
    }

    func validateEnv(_ task: JobTask, path: String, into problems: inout [ValidationProblem]) {
        for key in task.env.keys.sorted() {
            if !Self.isEnvName(key) {
                problems.append(.init("\(path).Env.\(key)", "not a valid variable name: use letters, digits and _, not starting with a digit"))
            } else if key.uppercased().hasPrefix("BACALHAU_") {
                problems.append(.init("\(path).Env.\(key)", "names starting with BACALHAU_ are reserved for the system"))
            }
        }
    }

    func validateResources(_ r: ResourcesConfig, path: String, into problems: inout [ValidationProblem]) {
        if !r.cpu.isEmpty, ResourceParsing.cpu(r.cpu) == nil {
            problems.append(.init(path + ".Resources.CPU", "\"\(r.cpu)\" is not a CPU amount; use cores (1, 0.5) or millicores (500m)"))
        }
        if !r.memory.isEmpty, ResourceParsing.bytes(r.memory) == nil {
            problems.append(.init(path + ".Resources.Memory", "\"\(r.memory)\" is not a size; use e.g. 512Mb, 1Gb, 256MiB"))
        }
        if !r.disk.isEmpty, ResourceParsing.bytes(r.disk) == nil {
            problems.append(.init(path + ".Resources.Disk", "\"\(r.disk)\" is not a size; use e.g. 1Gb"))
        }
        if !r.gpu.isEmpty, ResourceParsing.gpu(r.gpu) == nil {
            problems.append(.init(path + ".Resources.GPU", "\"\(r.gpu)\" is not a whole number of GPUs"))
        }
    }

    func validateNetwork(_ task: JobTask, path: String, into problems: inout [ValidationProblem]) {
        let network = task.network.type.lowercased()
        if !network.isEmpty, !Self.networkTypes.contains(network) {
            problems.append(.init(path + ".Network.Type", "unknown network type \"\(task.network.type)\"; expected one of Default, None, Host, Full, HTTP, Bridge"))
        }
        if !task.network.domains.isEmpty, network != "http" {
            problems.append(.init(path + ".Network.Domains", "only allowed with Network.Type HTTP"))
        }
    }

    func validateTimeouts(_ t: TimeoutConfig, path: String, into problems: inout [ValidationProblem]) {
        var timeoutsInRange = true
        for (field, value) in [("ExecutionTimeout", t.executionTimeout), ("QueueTimeout", t.queueTimeout), ("TotalTimeout", t.totalTimeout)] {
            if value < 0 {
                problems.append(.init("\(path).Timeouts.\(field)", "must not be negative"))
                timeoutsInRange = false
            } else if value > Self.maxTimeoutSeconds {
                problems.append(.init("\(path).Timeouts.\(field)", "at most \(Self.maxTimeoutSeconds) seconds (100 years), got \(value)"))
                timeoutsInRange = false
            }
        }
        if timeoutsInRange, t.totalTimeout > 0, t.executionTimeout + t.queueTimeout > t.totalTimeout {
            problems.append(.init(path + ".Timeouts", "ExecutionTimeout (\(t.executionTimeout)s) + QueueTimeout (\(t.queueTimeout)s) must not exceed TotalTimeout (\(t.totalTimeout)s)"))
        }
    }
}
