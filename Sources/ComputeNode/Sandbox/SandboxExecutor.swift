import Foundation
import Models

/// Runs `process` engine tasks: a host program inside a bubblewrap sandbox with new
/// namespaces (no network unless allowed), the host's system folders read-only, inputs
/// read-only at their targets, result paths writable, a private /tmp, and nothing else of the
/// host. Processes, memory and CPU are bounded by a cgroup per execution when the node may make
/// cgroups, and by rlimits otherwise; a deadline or cancellation kills the whole process tree.
final class SandboxExecutor: Engine {
    var name: String { "process" }
    var mountsInputsReadOnly: Bool { true }

    let bwrap: String
    let setpriv: String?
    let prlimit: String?
    let cgroups: CgroupController?
    let python: PythonEnvironments
    /// The most processes one execution may have.
    let maxProcesses: Int

    private init(bwrap: String, setpriv: String?, prlimit: String?, cgroups: CgroupController?, python: PythonEnvironments, maxProcesses: Int) {
        self.bwrap = bwrap
        self.setpriv = setpriv
        self.prlimit = prlimit
        self.cgroups = cgroups
        self.python = python
        self.maxProcesses = maxProcesses
    }

    /// Finds bubblewrap and checks that it can make a sandbox here; nil (with the reason) when
    /// it cannot.
    static func probe(dataDirectory: URL, pythonIndexURL: String? = nil, maxProcesses: Int = 1024) async -> (SandboxExecutor?, String) {
        guard let bwrap = findExecutable("bwrap") else {
            return (nil, "bubblewrap (bwrap) is not installed")
        }
        let trial = Process()
        trial.executableURL = URL(fileURLWithPath: bwrap)
        // The same system mounts as a real sandbox: binding all of / would race with mounts
        // that come and go (a container engine's overlays) and fail the probe for nothing.
        trial.arguments = ["--unshare-all", "--die-with-parent"] + systemMounts() + ["--", "/usr/bin/true"]
        trial.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        trial.standardError = errors
        do {
            try trial.run()
            trial.waitUntilExit()
        } catch {
            return (nil, "bwrap cannot be started: \(error)")
        }
        guard trial.terminationStatus == 0 else {
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            return (nil, "bwrap cannot create namespaces here: \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        let cgroups = CgroupController.onHost
        let executor = SandboxExecutor(
            bwrap: bwrap, setpriv: findExecutable("setpriv"), prlimit: findExecutable("prlimit"), cgroups: cgroups,
            python: PythonEnvironments(root: dataDirectory.appendingPathComponent("python"), bwrap: bwrap, indexURL: pythonIndexURL),
            maxProcesses: maxProcesses)
        return (executor, "bubblewrap at \(bwrap), limits by \(cgroups?.description ?? "rlimits")")
    }

    /// `/usr` read-only, and the top-level program and library folders as they are here (the
    /// links of a merged `/usr`, or read-only binds).
    static func systemMounts() -> [String] {
        var arguments = ["--ro-bind", "/usr", "/usr"]
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: top) {
                arguments += ["--symlink", target, top]
            } else if FileManager.default.fileExists(atPath: top) {
                arguments += ["--ro-bind", top, top]
            }
        }
        return arguments
    }

    static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    func run(_ context: EngineContext, stop: StopSwitch) async throws -> EngineStatus {
        var problems: [ValidationProblem] = []
        guard let spec = ProcessEngineSpec.parse(context.job.task.engine, path: "Engine.Params", problems: &problems) else {
            throw CodError(.executionFailed, JobValidator.describe(problems))
        }
        let environment: [String: String]
        let extraBinds: [String]
        switch await sandboxEnvironment(for: spec, context: context, stop: stop) {
        case .success(let prepared): (environment, extraBinds) = prepared
        case .failure(let ended): return ended.status
        }
        let network = NetworkMode.of(context.job.task)
        let resources = context.execution.allocatedResources
        var arguments = sandboxArguments(context: context, network: network, gpus: resources.gpu, extraBinds: extraBinds)
        arguments += ["--chdir", spec.workingDirectory ?? "/", "--clearenv"]
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) { arguments += ["--setenv", key, value] }
        arguments += ["--", spec.command] + spec.arguments

        // The chain: a shell that joins the execution's cgroup, setpriv to die with the node,
        // prlimit for rlimits, then bwrap. Each execs the next, so one process is killed.
        // CPU is capped only when the job asked for an amount; otherwise the sandbox shares the
        // node's cores fairly. Memory is always capped at the allocation.
        var limits = resources
        if context.job.task.resources.cpu.isEmpty { limits.cpu = 0 }
        let group = try cgroups?.create(name: "cod-\(context.execution.id)", resources: limits, maxProcesses: maxProcesses)
        defer { group?.destroy() }
        var command: [String] = []
        if let setpriv { command += [setpriv, "--pdeathsig", "KILL", "--"] }
        if let prlimit {
            command += [prlimit, "--nofile=4096:4096", "--core=0"]
            if group == nil {
                // No cgroup: rlimits are what bounds processes and memory.
                command.append("--nproc=\(maxProcesses):\(maxProcesses)")
                if resources.memory > 0 { command.append("--as=\(resources.memory):\(resources.memory)") }
            }
            command.append("--")
        }
        command += [bwrap] + arguments
        let process: Process
        if let group {
            process = try await group.metering(group.description, into: context.meter) {
                try await spawnAndWait(command, group: group, context: context, stop: stop)
            }
        } else {
            process = try await spawnAndWait(command, group: group, context: context, stop: stop)
        }
        let status = process.terminationStatus
        if stop.isStopped { return .stopped() }
        if process.terminationReason == .uncaughtSignal {
            if group?.oomKilled() == true || (status == SIGKILL && resources.memory > 0) {
                return .failed(message: outOfMemory(resources), failure: ExecutionFailure(.outOfMemory, retryable: false), exitCode: 128 + Int(status))
            }
            return .engineError("the sandbox was killed by signal \(status)", retryable: true)
        }
        if status == 125, group != nil {
            return .engineError("the sandbox could not join its cgroup", retryable: true)
        }
        // The sandboxed program's own death by signal shows as 128 + signal, as in a shell.
        if group?.oomKilled() == true { return .failed(message: outOfMemory(resources), failure: ExecutionFailure(.outOfMemory, retryable: false), exitCode: Int(status)) }
        return .exited(status)
    }

    /// Why preparing a sandbox ended the run before it started.
    struct Ended: Error {
        let status: EngineStatus
    }

    /// The sandbox's variables and extra binds: the task's and engine's variables, a PATH, and
    /// the Python environment its requirements need (installed, or taken from the cache).
    private func sandboxEnvironment(for spec: ProcessEngineSpec, context: EngineContext, stop: StopSwitch) async -> Result<([String: String], [String]), Ended> {
        var environment = context.environment(adding: spec.environmentVariables)
        var path = "/usr/local/bin:/usr/bin:/bin"
        var extraBinds: [String] = []
        if let requirements = spec.pythonRequirements {
            let file = context.root.appendingPathComponent(String(requirements.dropFirst()))
            let venv: URL
            switch await python.environment(requirements: file) {
            case .success(let url): venv = url
            case .failure(let failure): return .failure(Ended(status: .engineError(failure.message)))
            }
            if stop.isStopped { return .failure(Ended(status: .stopped())) }
            extraBinds += ["--ro-bind", venv.path, venv.path]
            path = venv.appendingPathComponent("bin").path + ":" + path
            environment["VIRTUAL_ENV"] = venv.path
        }
        environment["PATH"] = environment["PATH"].map { $0 + ":" + path } ?? path
        environment["HOME"] = environment["HOME"] ?? "/tmp"
        environment["TMPDIR"] = "/tmp"
        environment["LANG"] = environment["LANG"] ?? "C.UTF-8"

        return .success((environment, extraBinds))
    }

    /// Starts the sandbox chain (a shell that joins the cgroup first) with the execution's
    /// log files as its output, and waits for it to end; `stop` kills it.
    private func spawnAndWait(_ command: [String], group: Cgroup?, context: EngineContext, stop: StopSwitch) async throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = [
            "-c", #"for f in $COD_CGROUP_PROCS; do echo $$ > "$f" || exit 125; done; exec "$@""#, "cod-sandbox",
        ] + command
        var processEnvironment = ProcessInfo.processInfo.environment
        processEnvironment["COD_CGROUP_PROCS"] = group?.procsFiles.joined(separator: " ") ?? ""
        process.environment = processEnvironment
        process.standardInput = FileHandle.nullDevice
        let stdout = try FileHandle(forWritingTo: context.stdout)
        let stderr = try FileHandle(forWritingTo: context.stderr)
        defer {
            try? stdout.close()
            try? stderr.close()
        }
        process.standardOutput = stdout
        process.standardError = stderr
        let ended = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in ended.continuation.finish() }
        do {
            try await ProcessSpawner.shared.run(process)
        } catch {
            throw CodError(.executionFailed, "cannot start the sandbox: \(error)")
        }
        let pid = process.processIdentifier
        stop.onStop {
            // bwrap's child is the pid namespace's init, set to die with bwrap: killing bwrap
            // ends every process in the sandbox. The cgroup catches anything else.
            kill(pid, SIGKILL)
            if let group { DispatchQueue.global().async { group.killAll() } }
        }
        // Stragglers in the cgroup are killed when it is destroyed (by the caller).
        for await _ in ended.stream {}
        return process
    }

    private func outOfMemory(_ resources: Resources) -> String {
        let limit = ByteCountFormatter.string(fromByteCount: Int64(clamping: resources.memory), countStyle: .binary)
        return "out of memory: the program was killed for going over its memory limit of \(limit) (Resources.Memory)"
    }

    /// What every sandbox starts from (jobs' and the pip installs done for them): all
    /// namespaces new (the host's network only when `network`), no capabilities, the system
    /// folders read-only, a short list of harmless `/etc` files, and private `/proc`, `/dev`
    /// and `/tmp`.
    static func isolation(network: Bool) -> [String] {
        var arguments = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if network { arguments += ["--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"] }
        arguments += systemMounts()
        // Only the parts of /etc programs need; never credentials or host configuration.
        for file in systemFiles { arguments += ["--ro-bind-try", file, file] }
        return arguments + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/var/tmp"]
    }

    /// bwrap's arguments up to the command: namespaces, the read-only system, the execution's
    /// mounts, and a read-only root.
    func sandboxArguments(context: EngineContext, network: NetworkMode, gpus: UInt64, extraBinds: [String]) -> [String] {
        var arguments = Self.isolation(network: network == .host || network == .full)
        let fm = FileManager.default
        if gpus > 0 {
            let devices = (try? fm.contentsOfDirectory(atPath: "/dev"))?.filter { $0.hasPrefix("nvidia") }.sorted() ?? []
            for device in devices { arguments += ["--dev-bind", "/dev/\(device)", "/dev/\(device)"] }
        }
        // Parents before children, so a nested target lands inside its parent's mount.
        for input in context.inputs.sorted(by: { $0.guest.count < $1.guest.count }) {
            arguments += ["--ro-bind", input.host.path, input.guest]
        }
        for result in context.results.sorted(by: { $0.guest.count < $1.guest.count }) {
            arguments += ["--bind", result.host.path, result.guest]
        }
        arguments += extraBinds
        arguments += ["--remount-ro", "/"]
        return arguments
    }

    static let systemFiles = [
        "/etc/alternatives", "/etc/ssl", "/etc/ca-certificates", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
        "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/mime.types",
        "/etc/python3", "/etc/python3.11", "/etc/os-release", "/etc/debian_version", "/etc/magic",
    ]
}
