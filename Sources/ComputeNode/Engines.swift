import Foundation
import Models

/// A host folder seen at a guest path inside an execution.
struct Mount: Sendable, Hashable {
    let host: URL
    let guest: String
}

/// What every engine is given to run one execution: its folders, mounts, environment and log
/// files. Inputs are already in place under `root`.
struct EngineContext: Sendable {
    let execution: Execution
    let job: Job
    /// The execution's scratch folder (the engine may keep files here).
    let directory: URL
    /// Inputs laid out at their targets.
    let root: URL
    /// One per input, at its target; engines that mount them make them read-only.
    let inputs: [Mount]
    /// One per result path (and its `/<Name>` alias), writable.
    let results: [Mount]
    /// The task's `Env`.
    let taskEnvironment: [String: String]
    /// Variables the system sets (`BACALHAU_*`, `COD_*`); they win over the job's.
    let systemEnvironment: [String: String]
    let stdout: URL
    let stderr: URL
    /// Where the engine leaves what it measured of the program's CPU and memory.
    let meter: UsageMeter

    /// The task's variables, then the engine's own, then the system's.
    func environment(adding engine: [String: String]) -> [String: String] {
        taskEnvironment.merging(engine) { _, engine in engine }.merging(systemEnvironment) { _, system in system }
    }
}

/// How an engine's run ended, before publishing.
enum EngineStatus: Sendable {
    /// The program ran and exited with this code (any code: non-zero is still a completed run).
    case exited(Int32)
    /// It could not run to an exit: the message says why, the failure what kind of failure it
    /// is (retryable when another node might succeed).
    case failed(message: String, failure: ExecutionFailure, exitCode: Int?)

    /// Stopped on request before it exited.
    static func stopped(_ message: String = "stopped", exitCode: Int? = nil) -> EngineStatus {
        .failed(message: message, failure: ExecutionFailure(.cancelled, retryable: false), exitCode: exitCode)
    }

    /// The engine could not run the program; `retryable` when another node might.
    static func engineError(_ message: String, retryable: Bool = false, exitCode: Int? = nil) -> EngineStatus {
        .failed(message: message, failure: ExecutionFailure(.engineError, retryable: retryable), exitCode: exitCode)
    }
}

/// An execution's failure thrown from deep inside a run (fetching inputs, preparing the
/// folder), carried to the report as it is.
struct ExecutionError: Error, CustomStringConvertible {
    var failure: ExecutionFailure
    var message: String

    init(_ reason: ExecutionFailure.Reason, retryable: Bool, _ message: String) {
        self.failure = ExecutionFailure(reason, retryable: retryable)
        self.message = message
    }

    var description: String { message }
}

/// A one-shot switch that stops an execution: actions registered before or after it is
/// thrown all run exactly once.
final class StopSwitch: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var actions: [@Sendable () -> Void] = []

    var isStopped: Bool { lock.withLock { stopped } }

    /// Runs `action` when the switch is thrown (at once if it already was).
    func onStop(_ action: @escaping @Sendable () -> Void) {
        let runNow: Bool = lock.withLock {
            if stopped { return true }
            actions.append(action)
            return false
        }
        if runNow { action() }
    }

    func stop() {
        let toRun: [@Sendable () -> Void] = lock.withLock {
            if stopped { return [] }
            stopped = true
            defer { actions.removeAll() }
            return actions
        }
        for action in toRun { action() }
    }
}

/// What runs one execution's program: WASM modules, containers, sandboxed processes.
protocol Engine: Sendable {
    /// The engine's name in job specs (`Engine.Type`), lower case.
    var name: String { get }
    /// Whether the program sees its inputs through read-only mounts (then a dataset file may be
    /// a hard link to the node's own verified copy; a writable input must be a copy).
    var mountsInputsReadOnly: Bool { get }
    /// Runs the program to an exit, or until `stop` is thrown.
    func run(_ context: EngineContext, stop: StopSwitch) async throws -> EngineStatus
}

/// The engines a compute node has, found by probing at start.
struct Engines: Sendable {
    let wasm: RunnerPool
    let docker: DockerExecutor?
    let process: SandboxExecutor?

    private var all: [any Engine] {
        [WasmEngine(pool: wasm)] + [docker as (any Engine)?, process].compactMap { $0 }
    }

    func engine(named name: String) -> (any Engine)? {
        all.first { $0.name == name }
    }

    /// Engine names, as advertised.
    var available: [String] { all.map(\.name) }
}
