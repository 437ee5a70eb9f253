import Foundation
import Models
import WasmRunner

/// WASM modules, run by a runner process from the pool (a trap or a runaway module cannot
/// take the node down with it).
struct WasmEngine: Engine {
    let pool: RunnerPool
    var name: String { "wasm" }

    func run(_ context: EngineContext, stop: StopSwitch) async throws -> EngineStatus {
        let fm = FileManager.default
        let root = context.root
        let task = context.job.task
        var mounts: [WasmRunSpec.Mount] = []
        for mount in context.results {
            try fm.createDirectory(at: root.appendingPathComponent(String(mount.guest.dropFirst())), withIntermediateDirectories: true)
            mounts.append(.init(guestPath: mount.guest, hostPath: mount.host.path))
        }
        var problems: [ValidationProblem] = []
        guard let spec = WasmEngineSpec.parse(task.engine, path: "Engine.Params", problems: &problems) else {
            throw CodError(.executionFailed, JobValidator.describe(problems))
        }
        func hostPath(_ guest: String) throws -> String {
            guard let clean = GuestPath.clean(guest) else { throw CodError(.executionFailed, "module path \(guest) is invalid") }
            let url = root.appendingPathComponent(String(clean.dropFirst()))
            var isDirectory: ObjCBool = false
            if fm.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
                // A folder holding exactly one .wasm file names that module, as in Bacalhau.
                let wasm = (try fm.contentsOfDirectory(atPath: url.path)).filter { $0.hasSuffix(".wasm") }
                guard wasm.count == 1 else {
                    throw CodError(.executionFailed, "\(guest) is a folder with \(wasm.count) .wasm files; point at one module")
                }
                return url.appendingPathComponent(wasm[0]).path
            }
            return url.path
        }
        let environment = context.environment(adding: spec.environmentVariables)
        let runSpec = WasmRunSpec(
            rootDirectory: root.path, mounts: mounts, entryModule: try hostPath(spec.entryModule),
            importModules: try spec.importModules.map(hostPath), entrypoint: spec.entrypoint,
            arguments: [URL(fileURLWithPath: spec.entryModule).lastPathComponent] + spec.parameters,
            environment: environment, memoryLimitBytes: context.execution.allocatedResources.memory,
            fuel: spec.fuel, stdoutPath: context.stdout.path, stderrPath: context.stderr.path)

        let runner: RunnerProcess
        do {
            runner = try await pool.take()
        } catch {
            throw CodError(.executionFailed, "cannot start the WASM runner \(pool.command[0]): \(error)")
        }
        stop.onStop { runner.kill() }
        let event = await withCheckedContinuation { continuation in
            runner.run(spec: runSpec) { continuation.resume(returning: $0) }
        }
        switch event {
        case .finished(let outcome):
            await pool.giveBack(runner, reusable: true)
            switch outcome.kind {
            case .exited:
                return .exited(outcome.exitCode)
            case .trapped:
                return .failed(message: "the module trapped: \(outcome.message)", failure: ExecutionFailure(.trap, retryable: false), exitCode: Int(outcome.exitCode))
            case .invalid:
                return .engineError(outcome.message)
            }
        case .exited(let reason, let status):
            await pool.giveBack(runner, reusable: false)
            if reason == .uncaughtSignal {
                return .engineError("the WASM runner was killed by signal \(status)", retryable: true)
            }
            return .engineError("the WASM runner ended (status \(status)) without reporting an outcome", retryable: true)
        }
    }
}
