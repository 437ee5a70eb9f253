/// Reading of engine parameters shared by the engine specs: each reports every malformed field
/// under its path and leaves the default in place.
struct ParamReader {
    let params: [String: JSONValue]
    let path: String
    var problems: [ValidationProblem] = []

    mutating func string(_ key: String) -> String? {
        switch params[key] {
        case nil, .null: return nil
        case .string(let value): return value
        case .some(let other):
            problems.append(.init("\(path).\(key)", "expected a string, got \(other.typeName)"))
            return nil
        }
    }

    /// A list of strings; a single string is taken as a one-item list.
    mutating func strings(_ key: String) -> [String]? {
        switch params[key] {
        case nil, .null: return nil
        case .string(let value): return [value]
        case .some(let value):
            if let strings = value.stringArray { return strings }
            problems.append(.init("\(path).\(key)", "expected a list of strings, got \(value.typeName)"))
            return nil
        }
    }

    /// Environment variables as a map or as a list of `KEY=VALUE`.
    mutating func environment(_ key: String) -> [String: String] {
        var result: [String: String] = [:]
        switch params[key] {
        case nil, .null: break
        case .object(let object):
            for (name, item) in object {
                guard let string = item.stringValue else {
                    problems.append(.init("\(path).\(key).\(name)", "expected a string"))
                    continue
                }
                result[name] = string
            }
        case .array(let items):
            for item in items {
                guard let text = item.stringValue else {
                    problems.append(.init("\(path).\(key)", "expected KEY=VALUE strings, got \(item.typeName)"))
                    continue
                }
                let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2, !parts[0].isEmpty {
                    result[String(parts[0])] = String(parts[1])
                } else {
                    problems.append(.init("\(path).\(key)", "entry \"\(text)\" is not KEY=VALUE"))
                }
            }
        case .some(let other):
            problems.append(.init("\(path).\(key)", "expected a map or a list of KEY=VALUE, got \(other.typeName)"))
        }
        for name in result.keys.sorted() where !JobValidator.isEnvName(name) {
            problems.append(.init("\(path).\(key).\(name)", "not a valid variable name"))
        }
        return result
    }

    mutating func absolutePath(_ key: String) -> String? {
        guard let value = string(key), !value.isEmpty else { return nil }
        guard value.hasPrefix("/"), GuestPath.clean(value) != nil else {
            problems.append(.init("\(path).\(key)", "must be an absolute path without '..'"))
            return nil
        }
        return value
    }
}

/// The typed parameters of a `docker` engine (Bacalhau's field names).
public struct DockerEngineSpec: Sendable, Hashable {
    public var image: String
    /// Replaces the image's entrypoint when non-empty.
    public var entrypoint: [String]
    /// The command: the image's CMD is replaced by these.
    public var parameters: [String]
    public var workingDirectory: String?
    public var environmentVariables: [String: String]

    public init(
        image: String, entrypoint: [String] = [], parameters: [String] = [], workingDirectory: String? = nil,
        environmentVariables: [String: String] = [:]
    ) {
        self.image = image
        self.entrypoint = entrypoint
        self.parameters = parameters
        self.workingDirectory = workingDirectory
        self.environmentVariables = environmentVariables
    }

    /// The engine config form, for building jobs in code (`cod docker run`, `cod python run`).
    public var specConfig: SpecConfig {
        var params: [String: JSONValue] = ["Image": .string(image)]
        if !entrypoint.isEmpty { params["Entrypoint"] = .array(entrypoint.map { .string($0) }) }
        if !parameters.isEmpty { params["Parameters"] = .array(parameters.map { .string($0) }) }
        if let workingDirectory { params["WorkingDirectory"] = .string(workingDirectory) }
        if !environmentVariables.isEmpty {
            params["EnvironmentVariables"] = .array(environmentVariables.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") })
        }
        return SpecConfig(type: "docker", params: params)
    }

    public static func parse(_ config: SpecConfig, path: String, problems: inout [ValidationProblem]) -> DockerEngineSpec? {
        var reader = ParamReader(params: config.params, path: path)
        let image = reader.string("Image") ?? ""
        if image.isEmpty, reader.problems.isEmpty {
            reader.problems.append(.init(path + ".Image", "required: the container image, e.g. ubuntu:24.04"))
        } else if image.contains(where: { $0.isWhitespace }) {
            reader.problems.append(.init(path + ".Image", "\"\(image)\" is not an image reference"))
        }
        let spec = DockerEngineSpec(
            image: image, entrypoint: reader.strings("Entrypoint") ?? [], parameters: reader.strings("Parameters") ?? [],
            workingDirectory: reader.absolutePath("WorkingDirectory"),
            environmentVariables: reader.environment("EnvironmentVariables"))
        problems += reader.problems
        return reader.problems.isEmpty ? spec : nil
    }
}

/// The typed parameters of a `process` engine: a host command run in a sandbox.
public struct ProcessEngineSpec: Sendable, Hashable {
    /// The program: a name looked up on the sandbox's PATH, or an absolute path.
    public var command: String
    public var arguments: [String]
    public var workingDirectory: String?
    public var environmentVariables: [String: String]
    /// A requirements file (the guest path of an input): the node prepares a Python virtual
    /// environment with those packages, cached by the file's hash, and puts it first on PATH.
    public var pythonRequirements: String?

    public init(
        command: String, arguments: [String] = [], workingDirectory: String? = nil,
        environmentVariables: [String: String] = [:], pythonRequirements: String? = nil
    ) {
        self.command = command
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.environmentVariables = environmentVariables
        self.pythonRequirements = pythonRequirements
    }

    public var specConfig: SpecConfig {
        var params: [String: JSONValue] = ["Command": .string(command)]
        if !arguments.isEmpty { params["Arguments"] = .array(arguments.map { .string($0) }) }
        if let workingDirectory { params["WorkingDirectory"] = .string(workingDirectory) }
        if !environmentVariables.isEmpty { params["EnvironmentVariables"] = .object(environmentVariables.mapValues { .string($0) }) }
        if let pythonRequirements { params["PythonRequirements"] = .string(pythonRequirements) }
        return SpecConfig(type: "process", params: params)
    }

    public static func parse(_ config: SpecConfig, path: String, problems: inout [ValidationProblem]) -> ProcessEngineSpec? {
        var reader = ParamReader(params: config.params, path: path)
        let command = reader.string("Command") ?? ""
        if command.isEmpty, reader.problems.isEmpty {
            reader.problems.append(.init(path + ".Command", "required: the program to run, e.g. sed or /usr/bin/python3"))
        } else if command.contains("/"), !command.hasPrefix("/") {
            reader.problems.append(.init(path + ".Command", "must be a program name or an absolute path"))
        }
        let spec = ProcessEngineSpec(
            command: command, arguments: reader.strings("Arguments") ?? [], workingDirectory: reader.absolutePath("WorkingDirectory"),
            environmentVariables: reader.environment("EnvironmentVariables"),
            pythonRequirements: reader.absolutePath("PythonRequirements"))
        problems += reader.problems
        return reader.problems.isEmpty ? spec : nil
    }
}

/// The network modes a job may ask for, in the form nodes advertise them.
public enum NetworkMode: String, Sendable, CaseIterable {
    case none, host, full, http

    /// The mode a task's `Network.Type` asks for (`Default` and empty mean None; Bridge is Full).
    public static func of(_ task: JobTask) -> NetworkMode {
        switch task.network.type.lowercased() {
        case "host": return .host
        case "full", "bridge": return .full
        case "http": return .http
        default: return .none
        }
    }
}
