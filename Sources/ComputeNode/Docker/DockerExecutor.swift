import AsyncHTTPClient
import Foundation
import Models

/// When a node fetches images it does not have.
public enum PullPolicy: String, Sendable, CaseIterable {
    /// Pull only when the image is not present (the default).
    case missing
    /// Never pull: for air-gapped nodes; jobs whose image is absent fail with that reason.
    case never
    /// Pull before every run, to pick up a moved tag.
    case always
}

/// Runs `docker` engine tasks as containers through the Docker Engine API: inputs as read-only
/// bind mounts, result paths as writable ones, logs streamed into the execution's files,
/// resource limits from the allocation, and every container labelled with the node so a
/// restarted node removes what an earlier run of it left behind.
final class DockerExecutor: Engine {
    var name: String { "docker" }
    var mountsInputsReadOnly: Bool { true }

    let client: DockerClient
    let nodeID: String
    let pullPolicy: PullPolicy
    /// What answered the probe, e.g. `podman 4.3.1`.
    let daemon: String
    static let nodeLabel = "io.cod.node"
    static let executionLabel = "io.cod.execution"
    static let jobLabel = "io.cod.job"

    /// Capabilities containers keep (the operator's `--container-cap-add`); all others drop.
    let capabilities: [String]
    /// Where a group per execution is made for the daemon to put the container's group in, so
    /// its CPU time and memory can be read after it exited; nil: containers are not metered.
    let cgroups: CgroupController?

    private init(client: DockerClient, nodeID: String, pullPolicy: PullPolicy, daemon: String, capabilities: [String], cgroups: CgroupController?) {
        self.capabilities = capabilities
        self.cgroups = cgroups
        self.client = client
        self.nodeID = nodeID
        self.pullPolicy = pullPolicy
        self.daemon = daemon
    }

    /// Connects to the daemon on `socket`; nil (with the reason) when nothing answers there.
    static func probe(
        socket: String, http: HTTPClient, nodeID: String, pullPolicy: PullPolicy, capabilities: [String] = []
    ) async -> (DockerExecutor?, String) {
        var client = DockerClient(socketPath: socket, http: http)
        guard FileManager.default.fileExists(atPath: socket) else {
            return (nil, "no Docker socket at \(socket) (set DOCKER_HOST or --docker-host)")
        }
        do {
            let daemon = try await client.ping()
            client.isPodman = daemon.hasPrefix("podman")
            let executor = DockerExecutor(
                client: client, nodeID: nodeID, pullPolicy: pullPolicy, daemon: daemon, capabilities: capabilities, cgroups: CgroupController.onHost)
            return (executor, "\(daemon) at \(socket)")
        } catch {
            return (nil, "the Docker API at \(socket) does not answer: \(error)")
        }
    }

    /// Removes containers an earlier run of this node left (it was killed mid-execution).
    @discardableResult
    func removeOrphans() async -> Int {
        guard let ids = try? await client.containers(label: Self.nodeLabel, value: nodeID) else { return 0 }
        for id in ids { try? await client.remove(id) }
        return ids.count
    }

    func run(_ context: EngineContext, stop: StopSwitch) async throws -> EngineStatus {
        var problems: [ValidationProblem] = []
        guard let spec = DockerEngineSpec.parse(context.job.task.engine, path: "Engine.Params", problems: &problems) else {
            throw CodError(.executionFailed, JobValidator.describe(problems))
        }
        if pullPolicy == .always, let failure = try await pull(spec.image, present: try await client.hasImage(spec.image)) {
            return failure
        }
        if stop.isStopped { return .stopped("stopped before the container started") }

        let resources = context.execution.allocatedResources
        var config = containerConfig(spec, context: context, resources: resources)
        let name = "cod-\(context.execution.id)"
        // The container's group goes inside one made here, which keeps counting after the
        // daemon removed the container's own.
        var parent = try? cgroups?.create(name: name, resources: Resources(), maxProcesses: nil, delegating: true)
        defer { if let parent { DispatchQueue.global().async { parent.destroyTree() } } }
        if let parent, var host = config["HostConfig"] as? [String: Any] {
            host["CgroupParent"] = cgroups?.path(of: parent.name)
            config["HostConfig"] = host
        }
        let id: String
        do {
            do {
                id = try await create(name: name, config: config)
            } catch let error as DockerClient.APIError where error.status == 404 {
                // The image is not here: pull it (policy permitting), then create again.
                if let failure = try await pull(spec.image, present: false) { return failure }
                id = try await create(name: name, config: config)
            } catch let error as DockerClient.APIError where parent != nil && error.message.lowercased().contains("cgroup") {
                // A daemon that manages groups its own way (systemd slices): run unmetered.
                parent = nil
                config["HostConfig"] = (config["HostConfig"] as? [String: Any])?.filter { $0.key != "CgroupParent" }
                id = try await create(name: name, config: config)
            }
        } catch let error as DockerClient.APIError where (400..<500).contains(error.status) {
            return .engineError("the container could not be created: \(error.message)")
        }
        guard let parent else { return try await run(id, context: context, stop: stop, resources: resources) }
        return try await ContainerMeter(parent: parent).metering(into: context.meter) {
            try await run(id, context: context, stop: stop, resources: resources)
        }
    }

    /// Runs the created container to its end and removes it.
    private func run(_ id: String, context: EngineContext, stop: StopSwitch, resources: Resources) async throws -> EngineStatus {
        let client = self.client
        do {
            stop.onStop { Task { await client.kill(id) } }
            do {
                try await client.start(id)
            } catch let error as DockerClient.APIError {
                try? await client.remove(id)
                if stop.isStopped { return .stopped() }
                // Usually the program is not in the image, or the working directory is wrong.
                return .engineError("the container could not start: \(error.message)", exitCode: 127)
            }
            // Output is written to the execution's log files as it arrives, where the node
            // streams it to `job logs -f`. Not with podman: its follow stream skips lines when a
            // container writes fast on a busy node (`podman logs -f` loses them too) and ends
            // only a poll interval after the exit, so there the log is read once the container
            // has exited, complete (and appears then). Another daemon's stream that lingers
            // past a short grace after the exit is cut off and the log read the same way.
            let live = client.isPodman ? nil : try LogSink(stdout: context.stdout, stderr: context.stderr)
            let logs = live.map { sink in Task { try await client.followLogs(id, into: sink) } }
            let code = try await client.wait(id)
            if let logs, let live, await Self.finishes(logs, within: .milliseconds(20)) {
                live.close()
            } else {
                logs?.cancel()
                live?.close()
                let full = try LogSink(stdout: context.stdout, stderr: context.stderr, truncate: true)
                defer { full.close() }
                try await client.followLogs(id, into: full, follow: false)
            }
            // Only a SIGKILL can be the OOM killer's work: ask the daemon then.
            let state = code == 137 ? (try? await client.state(id)) ?? [:] : [:]
            try? await client.remove(id)
            if stop.isStopped { return .stopped(exitCode: code) }
            let oomKilled = state["OOMKilled"] as? Bool ?? false
            // Some daemons (podman on cgroup v1) do not report the OOM kill itself; the kernel's
            // SIGKILL under a memory limit that nobody else sent is one.
            if oomKilled || (code == 137 && resources.memory > 0) {
                let limit = ByteCountFormatter.string(fromByteCount: Int64(clamping: resources.memory), countStyle: .binary)
                return .failed(
                    message: "out of memory: the container was killed for going over its memory limit of \(limit) (Resources.Memory)",
                    failure: ExecutionFailure(.outOfMemory, retryable: false), exitCode: code)
            }
            return .exited(Int32(truncatingIfNeeded: code))
        } catch {
            try? await client.remove(id)
            throw error
        }
    }

    /// Whether `task` ends within `limit`. Returns at the limit even if it does not (awaiting a
    /// task's value cannot itself be cancelled, so the two are raced through a continuation).
    static func finishes(_ task: Task<Void, any Error>, within limit: Duration) async -> Bool {
        let answer = FirstAnswer()
        return await withCheckedContinuation { continuation in
            answer.set(continuation)
            Task {
                _ = try? await task.value
                answer.resume(true)
            }
            Task {
                try? await Task.sleep(for: limit)
                answer.resume(false)
            }
        }
    }

    /// Creates the container, replacing one of the same name that an earlier attempt left.
    private func create(name: String, config: [String: Any]) async throws -> String {
        do {
            return try await client.createContainer(name: name, config: config)
        } catch let error as DockerClient.APIError where error.status == 409 {
            try await client.remove(name)
            return try await client.createContainer(name: name, config: config)
        }
    }

    /// Pulls per the pull policy; a failure to report, or nil when the image is there now.
    private func pull(_ image: String, present: Bool) async throws -> EngineStatus? {
        if pullPolicy == .never {
            if present { return nil }
            return .engineError(
                "image \(image) is not on this node and its pull policy is never; load it on the node (docker load / podman load)",
                retryable: true)
        }
        do {
            try await client.pull(image)
            return nil
        } catch let error as DockerClient.APIError {
            if present { return nil }  // `always`, but the registry is unreachable: use what is here.
            return .engineError("cannot pull image \(image): \(error.message)", retryable: true)
        }
    }

    /// The create request: command, environment, mounts, limits, network and labels.
    func containerConfig(_ spec: DockerEngineSpec, context: EngineContext, resources: Resources) -> [String: Any] {
        let task = context.job.task
        let environment = context.environment(adding: spec.environmentVariables)
        var mounts: [[String: Any]] = []
        for input in context.inputs {
            mounts.append(["Type": "bind", "Source": input.host.path, "Target": input.guest, "ReadOnly": true])
        }
        for result in context.results {
            mounts.append(["Type": "bind", "Source": result.host.path, "Target": result.guest, "ReadOnly": false])
        }
        var host: [String: Any] = [
            "Mounts": mounts,
            "NetworkMode": Self.networkMode(NetworkMode.of(task)),
            // Bounds fork bombs; the daemon's default file limit can exceed what this host allows.
            "PidsLimit": 4096,
            "Ulimits": Self.ulimits(),
            "SecurityOpt": ["no-new-privileges"],
            // A root container without capabilities cannot make device nodes, change owners
            // or load anything into the host; the operator can give some back.
            "CapDrop": ["ALL"],
        ]
        if !capabilities.isEmpty { host["CapAdd"] = capabilities }
        if resources.memory > 0 {
            host["Memory"] = Int64(clamping: resources.memory)
            host["MemorySwap"] = Int64(clamping: resources.memory)  // no swap beyond the limit
        }
        // CPU is capped only when the job asked for an amount (as with the process engine).
        if resources.cpu > 0, !task.resources.cpu.isEmpty { host["NanoCpus"] = Int64(exactly: (resources.cpu * 1e9).rounded()) ?? Int64.max }
        if resources.gpu > 0 {
            host["DeviceRequests"] = [["Driver": "nvidia", "Count": Int(clamping: resources.gpu), "Capabilities": [["gpu"]]]]
        }
        var config: [String: Any] = [
            "Image": spec.image,
            "Env": environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            "Labels": [
                Self.nodeLabel: nodeID, Self.executionLabel: context.execution.id, Self.jobLabel: context.job.id,
            ],
            "Tty": false,
            "OpenStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
            "HostConfig": host,
        ]
        if NetworkMode.of(task) == .none { config["NetworkDisabled"] = true }
        if !spec.entrypoint.isEmpty { config["Entrypoint"] = spec.entrypoint }
        if !spec.parameters.isEmpty { config["Cmd"] = spec.parameters }
        if let directory = spec.workingDirectory { config["WorkingDir"] = directory }
        return config
    }

    static func networkMode(_ mode: NetworkMode) -> String {
        switch mode {
        case .none, .http: return "none"
        case .host: return "host"
        case .full: return "bridge"
        }
    }

    /// Open-file and process limits no higher than this node's own.
    static func ulimits() -> [[String: Any]] {
        var files = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
        let nofile = Int64(clamping: min(files.rlim_max, 65536))
        var processes = rlimit()
        getrlimit(Int32(__RLIMIT_NPROC.rawValue), &processes)
        let nproc = Int64(clamping: min(processes.rlim_max, 4096))
        return [
            ["Name": "nofile", "Soft": nofile, "Hard": nofile],
            ["Name": "nproc", "Soft": nproc, "Hard": nproc],
        ]
    }
}

/// Meters a container through the group made for it: CPU time and memory of everything in
/// it, less the daemon's monitor (podman's `conmon`, in a group of its own inside).
struct ContainerMeter: Sendable {
    let parent: Cgroup
    static let monitor = "conmon"

    private func saturating(_ total: UInt64?, _ part: UInt64?) -> UInt64? {
        total.map { $0 - min($0, part ?? 0) }
    }

    func metering<T>(into meter: UsageMeter, _ body: () async throws -> T) async rethrows -> T {
        let parent = self.parent
        let sampler = MemorySampler(
            read: { [self] in saturating(parent.memoryBytes(), parent.memoryBytes(below: Self.monitor)) },
            // The container's own group, while it exists, keeps its exact high-water mark.
            watermark: { parent.childGroups().filter { $0 != Self.monitor }.compactMap { parent.peakMemoryBytes(below: $0) }.max() })
        sampler.start()
        defer {
            let (sampledPeak, gibSeconds) = sampler.stop()
            let kept = saturating(parent.peakMemoryBytes(), parent.peakMemoryBytes(below: Self.monitor))
            let cpu = parent.cpuSeconds().map { max($0 - (parent.cpuSeconds(below: Self.monitor) ?? 0), 0) }
            // A daemon that put the container elsewhere leaves nothing counted here.
            if let cpu, cpu > 0 {
                meter.record(EngineUsage(
                    cpuSeconds: cpu, peakMemoryBytes: [sampledPeak, kept].compactMap { $0 }.max(), memoryGiBSeconds: gibSeconds,
                    meteredBy: "container \(parent.description)"))
            }
        }
        return try await body()
    }
}

/// Resumes a continuation with the first answer given; later ones are ignored.
final class FirstAnswer: @unchecked Sendable {
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Bool, Never>?
    private var early: Bool?

    func set(_ continuation: CheckedContinuation<Bool, Never>) {
        let value: Bool? = lock.withLock {
            if let early { return early }
            self.continuation = continuation
            return nil
        }
        if let value { continuation.resume(returning: value) }
    }

    func resume(_ value: Bool) {
        let waiting: CheckedContinuation<Bool, Never>? = lock.withLock {
            if early != nil { return nil }
            early = value
            defer { continuation = nil }
            return continuation
        }
        waiting?.resume(returning: value)
    }
}
