import Foundation
import Models
import WasmRunner

/// WASM modules, run by a runner process from the pool (a trap or a runaway module cannot
/// take the node down with it).
struct WasmEngine: Engine {
    let pool: RunnerPool
    var name: String { "wasm" }
    var mountsInputsReadOnly: Bool { false }

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
        let cpu = CPUMeter(pid: runner.process.processIdentifier, cgroups: pool.cgroups, name: "cod-\(context.execution.id)", cpuLimit: cpuLimit(context))
        stop.onStop {
            cpu.stopping()
            runner.kill()
        }
        let event = await withCheckedContinuation { continuation in
            runner.run(spec: runSpec) { continuation.resume(returning: $0) }
        }
        let (cpuSeconds, meteredBy) = cpu.finish()
        var usage = EngineUsage(cpuSeconds: cpuSeconds, meteredBy: meteredBy)
        if case .finished(let outcome) = event {
            usage.peakMemoryBytes = outcome.peakMemoryBytes
            usage.memoryGiBSeconds = outcome.memoryGiBSeconds
        }
        context.meter.record(usage)
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

    /// The CPU the job asked for, or 0: as with the other engines, only an asked-for amount
    /// is a cap.
    private func cpuLimit(_ context: EngineContext) -> Double {
        context.job.task.resources.cpu.isEmpty ? 0 : context.execution.allocatedResources.cpu
    }
}

/// A pooled runner's CPU time for one execution. With a CPU limit the runner is moved into a
/// group of the execution's own (which holds it to the limit and counts its time) and back out
/// after; without one it stays where it is, weighed by the kernel like any process (a group
/// for all runners would share one process's weight among them on a busy host), and its time
/// is the difference of its CPU time in `/proc`, read before it is killed at a deadline.
final class CPUMeter: @unchecked Sendable {
    let pid: pid_t
    private var group: Cgroup?
    private var home: String?
    private let before: Double?
    private let lock = NSLock()
    private var atStop: Double?

    init(pid: pid_t, cgroups: CgroupController?, name: String, cpuLimit: Double) {
        self.pid = pid
        var limits = Resources()
        limits.cpu = cpuLimit
        if cpuLimit > 0, let cgroups, let group = try? cgroups.create(name: name, resources: limits, maxProcesses: nil) {
            home = Self.unifiedCgroup(of: pid)
            if group.adopt(pid) {
                self.group = group
            } else {
                group.release(pid, home: home)
                group.destroy()
            }
        }
        before = group == nil ? Self.processCPUSeconds(pid) : nil
    }

    /// The runner is about to be killed: its CPU time is read while it can be.
    func stopping() {
        guard group == nil, let now = Self.processCPUSeconds(pid) else { return }
        lock.withLock { atStop = now }
    }

    /// The CPU seconds used since the start (nil when they cannot be read), and how they were
    /// measured; the runner leaves the group.
    func finish() -> (Double?, String) {
        if let group {
            let seconds = group.cpuSeconds()
            group.release(pid, home: home)
            group.destroy()
            return (seconds, "wasm runner, \(group.description)")
        }
        guard let before, let after = Self.processCPUSeconds(pid) ?? lock.withLock({ atStop }) else { return (nil, "wasm runner") }
        return (max(after - before, 0), "wasm runner, /proc")
    }

    /// User and system CPU time of a live process, from `/proc/PID/stat`.
    static func processCPUSeconds(_ pid: pid_t) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // After the command name: state is field 3, utime 14 and stime 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The process's group under cgroup v2 (`0::/path`), to return it to.
    static func unifiedCgroup(of pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
        return text.split(whereSeparator: \.isNewline).first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }
}
