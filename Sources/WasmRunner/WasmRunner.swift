import CSystemShims
import Foundation
import WASI
@_spi(Fuzzing) import WasmKit
import WasmKitWASI

/// Runs one WASI module in this process. The compute node runs this inside a child process
/// (`cod wasm-runner SPEC`), so a timeout can kill it outright and a crash harms nothing else.
public enum WasmRunner {
    /// Runs the spec and returns the outcome; never throws (every failure is an outcome).
    public static func run(_ spec: WasmRunSpec) -> WasmOutcome {
        let meter = MemoryMeter()
        var outcome = run(spec, meter: meter)
        (outcome.peakMemoryBytes, outcome.memoryGiBSeconds) = meter.finish()
        return outcome
    }

    static func run(_ spec: WasmRunSpec, meter: MemoryMeter) -> WasmOutcome {
        let stdoutFD = open(spec.stdoutPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let stderrFD = open(spec.stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let stdinFD = open("/dev/null", O_RDONLY)
        defer {
            close(stdoutFD)
            close(stderrFD)
            close(stdinFD)
        }
        guard stdoutFD >= 0, stderrFD >= 0, stdinFD >= 0 else {
            return WasmOutcome(kind: .invalid, exitCode: -1, message: "cannot open the log files for stdout/stderr")
        }
        let wasi: WASIBridgeToHost
        do {
            var preopens = [WASIBridgeToHost.Preopen(guestPath: "/", hostPath: spec.rootDirectory)]
            preopens += spec.mounts.map { WASIBridgeToHost.Preopen(guestPath: $0.guestPath, hostPath: $0.hostPath) }
            wasi = try WASIBridgeToHost(
                args: spec.arguments, environment: spec.environment, preopens: preopens, stdin: stdinFD, stdout: stdoutFD,
                stderr: stderrFD)
        } catch {
            return WasmOutcome(kind: .invalid, exitCode: -1, message: "cannot set up WASI: \(error)")
        }
        defer { try? wasi.close() }

        // Fuel metering costs some speed, so it is on only for modules given a budget.
        let engine = Engine(configuration: EngineConfiguration(fuelMetering: spec.fuel != nil))
        let store = Store(engine: engine)
        if let fuel = spec.fuel { store.fuel = Fuel(remaining: fuel) }
        // Always set: it meters linear memory even where nothing limits it.
        let memory = MemoryLimiter(limit: spec.memoryLimitBytes, meter: meter)
        store.resourceLimiter = memory
        var imports = Imports()
        wasi.link(to: &imports, store: store)
        var registered = Set<String>(["wasi_snapshot_preview1"])

        do {
            // Import modules first, each registered under its names so later modules link to it.
            for path in spec.importModules {
                let module = try load(path)
                try resolveDynamicImports(of: module, near: path, spec: spec, store: store, imports: &imports, registered: &registered, depth: 0)
                let instance = try module.instantiate(store: store, imports: imports)
                for name in moduleNames(path: path) where !registered.contains(name) {
                    imports.define(module: name, instance.exports)
                    registered.insert(name)
                }
            }
            let entry = try load(spec.entryModule)
            try resolveDynamicImports(of: entry, near: spec.entryModule, spec: spec, store: store, imports: &imports, registered: &registered, depth: 0)
            let instance: Instance
            do {
                instance = try entry.instantiate(store: store, imports: imports)
            } catch {
                return WasmOutcome(kind: .invalid, exitCode: -1, message: "cannot instantiate the module: \(describe(error))")
            }
            guard let function = instance.exports[function: spec.entrypoint] else {
                let available = entry.exports.map(\.name).sorted().joined(separator: ", ")
                return WasmOutcome(
                    kind: .invalid, exitCode: -1,
                    message: "the module exports no function \"\(spec.entrypoint)\" (exports: \(available.isEmpty ? "none" : available))")
            }
            guard function.type.parameters.isEmpty else {
                return WasmOutcome(kind: .invalid, exitCode: -1, message: "entry point \(spec.entrypoint) must take no parameters")
            }
            do {
                _ = try function()
                return WasmOutcome(kind: .exited, exitCode: 0, message: "")
            } catch let exit as WASIExitCode {
                return WasmOutcome(kind: .exited, exitCode: Int32(bitPattern: exit.code), message: "")
            } catch let trap as Trap {
                let text = firstLine(trap.description)
                return WasmOutcome(kind: .trapped, exitCode: 1, message: text.hasPrefix("Trap: ") ? String(text.dropFirst(6)) : text)
            } catch {
                return WasmOutcome(kind: .trapped, exitCode: 1, message: describe(error))
            }
        } catch let failure as RunnerFailure {
            return WasmOutcome(kind: .invalid, exitCode: -1, message: failure.message)
        } catch {
            return WasmOutcome(kind: .invalid, exitCode: -1, message: describe(error))
        }
    }

    /// Asks the kernel to kill this process when its parent (the compute node) dies, so a
    /// crashed node leaves no module running. Exits at once if the parent is already gone.
    public static func dieWithParent(expectedParent: pid_t) {
        _ = cod_kill_with_parent()
        if getppid() != expectedParent { exit(137) }
    }

    struct RunnerFailure: Error {
        var message: String
    }

    static func load(_ path: String) throws -> Module {
        guard FileManager.default.fileExists(atPath: path) else {
            throw RunnerFailure(message: "module not found at \(path)")
        }
        do {
            return try parseWasm(filePath: path)
        } catch {
            throw RunnerFailure(message: "\(URL(fileURLWithPath: path).lastPathComponent) is not a valid WebAssembly module: \(describe(error))")
        }
    }

    /// The names an import module answers to: its file name without `.wasm`, and the file name.
    static func moduleNames(path: String) -> [String] {
        let file = URL(fileURLWithPath: path).lastPathComponent
        let stem = file.hasSuffix(".wasm") ? String(file.dropLast(5)) : file
        return [stem, file]
    }

    /// Bacalhau's loader links an import of module `X` to a file `X` or `X.wasm` found next to
    /// the importing module or at the root, instantiating it (recursively) on demand.
    static func resolveDynamicImports(
        of module: Module, near path: String, spec: WasmRunSpec, store: Store, imports: inout Imports,
        registered: inout Set<String>, depth: Int
    ) throws {
        let needed = Set(module.imports.map(\.module)).subtracting(registered).sorted()
        for name in needed {
            guard depth < 16 else { throw RunnerFailure(message: "import chain too deep while resolving \(name)") }
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            let candidates = [directory + "/" + name, directory + "/" + name + ".wasm",
                spec.rootDirectory + "/" + name, spec.rootDirectory + "/" + name + ".wasm"]
            guard let found = candidates.first(where: { isRegularFile($0) && isWithin($0, spec.rootDirectory) }) else {
                throw RunnerFailure(
                    message: "the module imports from \"\(name)\", which is neither WASI nor a module given in ImportModules or found as \(name).wasm")
            }
            let dependency = try load(found)
            registered.insert(name)  // guards against import cycles
            try resolveDynamicImports(of: dependency, near: found, spec: spec, store: store, imports: &imports, registered: &registered, depth: depth + 1)
            let instance = try dependency.instantiate(store: store, imports: imports)
            imports.define(module: name, instance.exports)
        }
    }

    static func isRegularFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    static func isWithin(_ path: String, _ root: String) -> Bool {
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        let base = URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        return resolved == base || resolved.hasPrefix(base + "/")
    }

    static func describe(_ error: any Error) -> String {
        firstLine(String(describing: error))
    }

    static func firstLine(_ text: String) -> String {
        text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
    }
}

/// Caps the linear memory a module may hold, and tells the meter of each growth.
final class MemoryLimiter: ResourceLimiter, @unchecked Sendable {
    /// 0: no limit.
    let limit: UInt64
    let meter: MemoryMeter

    init(limit: UInt64, meter: MemoryMeter) {
        self.limit = limit
        self.meter = meter
    }

    func limitMemoryGrowth(to desired: Int) throws -> Bool {
        guard limit == 0 || UInt64(desired) <= limit else { return false }
        meter.grew(to: UInt64(desired))
        return true
    }

    func limitTableGrowth(to desired: Int) throws -> Bool {
        desired <= 10_000_000
    }
}

/// The linear memory of a run's modules over time. Memory changes only when a module grows
/// it, so the peak and the GiB-seconds are exact. Growth is told as a memory's new size, not
/// which memory: a size larger than one already known grows the largest such memory, any
/// other is a new memory (exact with one memory, the usual case).
final class MemoryMeter: @unchecked Sendable {
    private var sizes: [UInt64] = []
    private var peak: UInt64 = 0
    private var gibSeconds: Double = 0
    private var since = ContinuousClock.now
    private let lock = NSLock()

    private var total: UInt64 { sizes.reduce(0, &+) }

    private func advance() {
        let now = ContinuousClock.now
        let elapsed = now - since
        gibSeconds += Double(total) / Double(1 << 30) * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        since = now
    }

    func grew(to size: UInt64) {
        lock.withLock {
            advance()
            if let index = sizes.indices.filter({ sizes[$0] < size }).max(by: { sizes[$0] < sizes[$1] }) {
                sizes[index] = size
            } else {
                sizes.append(size)
            }
            peak = max(peak, total)
        }
    }

    /// The peak and GiB-seconds up to now.
    func finish() -> (UInt64, Double) {
        lock.withLock {
            advance()
            return (peak, gibSeconds)
        }
    }
}
