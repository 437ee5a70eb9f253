/// The typed parameters of a `wasm` engine, read from a task's ``SpecConfig``.
///
/// `EntryModule` and `ImportModules` name input targets (`/app/main.wasm`); the legacy form,
/// where they were input sources themselves, is rewritten by ``JobNormalizer``.
public struct WasmEngineSpec: Codable, Sendable, Hashable {
    public var entryModule: String
    public var entrypoint: String
    public var parameters: [String]
    public var importModules: [String]
    public var environmentVariables: [String: String]
    /// Cod's extension: an instruction budget; the module fails once it has run that many
    /// WebAssembly operators (deterministic, unlike a timeout).
    public var fuel: UInt64?

    public init(
        entryModule: String, entrypoint: String = "_start", parameters: [String] = [], importModules: [String] = [],
        environmentVariables: [String: String] = [:]
    ) {
        self.entryModule = entryModule
        self.entrypoint = entrypoint
        self.parameters = parameters
        self.importModules = importModules
        self.environmentVariables = environmentVariables
    }

    enum CodingKeys: String, CodingKey {
        case entryModule = "EntryModule", entrypoint = "Entrypoint", parameters = "Parameters"
        case importModules = "ImportModules", environmentVariables = "EnvironmentVariables", fuel = "Fuel"
    }

    /// The engine config form, for building jobs in code (`cod wasm run`).
    public var specConfig: SpecConfig {
        var params: [String: JSONValue] = [
            "EntryModule": .string(entryModule),
            "Entrypoint": .string(entrypoint),
            "Parameters": .array(parameters.map { .string($0) }),
        ]
        if !importModules.isEmpty { params["ImportModules"] = .array(importModules.map { .string($0) }) }
        if !environmentVariables.isEmpty {
            params["EnvironmentVariables"] = .object(environmentVariables.mapValues { .string($0) })
        }
        if let fuel { params["Fuel"] = .int(Int64(clamping: fuel)) }
        return SpecConfig(type: "wasm", params: params)
    }

    /// Reads the spec, reporting each malformed field under `path` (e.g. `Tasks[0].Engine.Params`).
    public static func parse(_ config: SpecConfig, path: String, problems: inout [ValidationProblem]) -> WasmEngineSpec? {
        let params = config.params
        var spec = WasmEngineSpec(entryModule: "")
        var ok = true
        switch params["EntryModule"] {
        case .string(let value) where !value.isEmpty: spec.entryModule = value
        case nil, .null, .string:
            problems.append(.init(path + ".EntryModule", "required: the target path of the input holding the .wasm module"))
            ok = false
        case .some(let other):
            problems.append(.init(path + ".EntryModule", "expected a string (an input's target path), got \(other.typeName)"))
            ok = false
        }
        let entry = params["Entrypoint"] ?? params["EntryPoint"]
        switch entry {
        case nil, .null: break
        case .string(let value): spec.entrypoint = value.isEmpty ? "_start" : value
        case .some(let other):
            problems.append(.init(path + ".Entrypoint", "expected a string, got \(other.typeName)"))
            ok = false
        }
        if let value = params["Parameters"], value != .null {
            if let strings = value.stringArray {
                spec.parameters = strings
            } else {
                problems.append(.init(path + ".Parameters", "expected a list of strings, got \(value.typeName)"))
                ok = false
            }
        }
        if let value = params["ImportModules"], value != .null {
            if let strings = value.stringArray {
                spec.importModules = strings
            } else {
                problems.append(.init(path + ".ImportModules", "expected a list of input target paths"))
                ok = false
            }
        }
        switch params["Fuel"] {
        case nil, .null: break
        case .int(let value) where value > 0: spec.fuel = UInt64(value)
        case .double(let value) where value >= 1 && value < 1.8e19 && value.rounded() == value: spec.fuel = UInt64(value)
        case .string(let text) where UInt64(text).map({ $0 > 0 }) ?? false: spec.fuel = UInt64(text)
        case .some:
            problems.append(.init(path + ".Fuel", "expected a positive whole number of instructions"))
            ok = false
        }
        if let value = params["EnvironmentVariables"], value != .null {
            switch value {
            case .object(let object):
                for (key, item) in object {
                    guard let string = item.stringValue else {
                        problems.append(.init(path + ".EnvironmentVariables.\(key)", "expected a string"))
                        ok = false
                        continue
                    }
                    spec.environmentVariables[key] = string
                }
            case .array:
                for item in value.stringArray ?? [] {
                    let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    if parts.count == 2 {
                        spec.environmentVariables[String(parts[0])] = String(parts[1])
                    } else {
                        problems.append(.init(path + ".EnvironmentVariables", "entry \"\(item)\" is not KEY=VALUE"))
                        ok = false
                    }
                }
            case .null, .bool, .int, .double, .string:
                problems.append(.init(path + ".EnvironmentVariables", "expected a map or a list of KEY=VALUE"))
                ok = false
            }
        }
        return ok ? spec : nil
    }
}

/// Path helpers shared by validation and executors. Paths here are guest paths, always `/`-rooted.
public enum GuestPath {
    /// Normalises a guest path: makes it absolute, removes `.` and empty segments, and rejects `..`.
    /// Returns nil for paths that try to climb out of the root.
    public static func clean(_ path: String) -> String? {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { return nil }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// Whether `inner` equals `outer` or lies below it.
    public static func isWithin(_ inner: String, _ outer: String) -> Bool {
        if outer == "/" { return true }
        return inner == outer || inner.hasPrefix(outer + "/")
    }
}
