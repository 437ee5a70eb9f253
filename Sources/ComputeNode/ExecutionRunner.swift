import APIClient
import Archives
import BlockStore
public import ContentAddressing
import Crypto
import Foundation
import Wire
import SafeFS
public import Models
import WasmRunner

/// An execution's results, packed for its publisher.
public enum PublishedBundle: Sendable {
    /// `local`: a gzip tarball the orchestrator keeps and serves by URL.
    case tarball(URL)
    /// `ipfs`: a UnixFS directory in this node's store, with its DAG as a CAR to hand on.
    case dag(cid: CID, car: URL)
}

/// The end of one execution on this node.
public enum ExecutionEnd: Sendable {
    /// It ran; `published` holds stdout, stderr, exitCode and the result folders (nil with the
    /// noop publisher).
    case completed(RunCommandResult, published: PublishedBundle?)
    /// It could not run to completion.
    case failed(message: String, failure: ExecutionFailure, output: RunCommandResult?)
    /// It was cancelled.
    case cancelled(String)
}

/// What an execution of a job that may start children gets: its scoped key, the orchestrator's
/// API for `COD_API`, a client with the key for its spawn folder, and where to say that it
/// waits on children.
struct Spawning: Sendable {
    static let guestPath = "/cod/spawn"
    var apiKey: String
    var apiURL: String
    var client: CodClient
    var waiting: @Sendable (Bool) async -> Void
}

/// Prepares an execution's folder, runs its engine under a deadline, and packs the results.
/// One instance per execution.
final class ExecutionRunner: @unchecked Sendable {
    let execution: Execution
    let job: Job
    let directory: URL
    let engines: Engines
    let content: ContentFetcher
    /// Nodes that hold each `ipfs` input, to fetch from before the orchestrator.
    let contentSources: [String: [String]]
    /// Set only on a devstack's deliberately bad nodes: how it alters its outputs.
    let misbehaviour: Misbehaviour?
    /// For a job that may start children: its key, the API it reaches, and how its spawn
    /// folder submits and reports.
    let spawn: Spawning?
    private let stopSwitch = StopSwitch()
    private let lock = NSLock()
    private var cancelReason: String?
    private var inputStats = InputStats()
    private var publishedBytes: UInt64 = 0
    /// What the engine measured of the program's CPU and memory.
    let meter = UsageMeter()

    /// What the execution read of its `ipfs` inputs so far, locally and over the network.
    var readStats: InputStats { lock.withLock { inputStats } }

    /// What the execution used, `wallSeconds` being its whole time on the node.
    func usage(wallSeconds: Double) -> Usage {
        let (stats, published) = lock.withLock { (inputStats, publishedBytes) }
        let measured = meter.value
        return Usage(
            wallSeconds: wallSeconds, cpuSeconds: measured?.cpuSeconds.map { ($0 * 1000).rounded() / 1000 },
            peakMemoryBytes: measured?.peakMemoryBytes, memoryGiBSeconds: measured?.memoryGiBSeconds.map { ($0 * 1e6).rounded() / 1e6 },
            gpuSeconds: Double(execution.allocatedResources.gpu) * wallSeconds, bytesReadLocally: stats.localBytes,
            bytesReadFromPeers: stats.networkBytes - min(stats.networkBytes, stats.outsideBytes), bytesReadFromOutside: stats.outsideBytes,
            bytesPublished: published, meteredBy: measured?.meteredBy)
    }

    init(
        execution: Execution, job: Job, directory: URL, engines: Engines, content: ContentFetcher,
        contentSources: [String: [String]] = [:], misbehaviour: Misbehaviour? = nil, spawn: Spawning? = nil
    ) {
        self.misbehaviour = misbehaviour
        self.spawn = spawn
        self.execution = execution
        self.job = job
        self.directory = directory
        self.engines = engines
        self.content = content
        self.contentSources = contentSources
    }

    /// Stops the run; the result reports `reason`.
    func cancel(reason: String) {
        lock.withLock { cancelReason = cancelReason ?? reason }
        stopSwitch.stop()
    }

    var wasCancelled: String? {
        lock.lock()
        defer { lock.unlock() }
        return cancelReason
    }

    func run() async -> ExecutionEnd {
        do {
            return try await runThrowing()
        } catch let error as ExecutionError {
            if let reason = wasCancelled { return .cancelled(reason) }
            return .failed(message: error.message, failure: error.failure, output: nil)
        } catch let error as CodError {
            if let reason = wasCancelled { return .cancelled(reason) }
            return .failed(message: error.message, failure: ExecutionFailure(.engineError, retryable: false), output: nil)
        } catch {
            if let reason = wasCancelled { return .cancelled(reason) }
            return .failed(message: "node error: \(error)", failure: ExecutionFailure(.engineError, retryable: true), output: nil)
        }
    }

    private func runThrowing() async throws -> ExecutionEnd {
        let fm = FileManager.default
        try? fm.removeItem(at: directory)
        let root = directory.appendingPathComponent("root")
        let results = directory.appendingPathComponent("results")
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        // Only the node's own user may reach what a job leaves here (a root container can
        // leave set-id programs in its result folders until they are published).
        _ = chmod(directory.path, 0o700)
        let task = job.task
        let engineType = task.engine.normalizedType
        guard engines.available.contains(engineType) else {
            throw CodError(.executionFailed, "engine \(task.engine.type) is not available on this node")
        }
        let inputMounts = try await prepareInputs(root: root)
        var resultMounts = try prepareResults(results)
        var spawnFolder: SpawnFolder?
        if let spawn {
            // Writable like a result folder, but never published.
            let folder = directory.appendingPathComponent("spawn")
            try fm.createDirectory(at: folder, withIntermediateDirectories: true)
            resultMounts.append(Mount(host: folder, guest: Spawning.guestPath))
            let content = self.content
            spawnFolder = SpawnFolder(folder: folder, jobID: job.id, client: spawn.client, waiting: spawn.waiting) { cid, destination in
                _ = try await content.materialize(
                    InputSource(source: SpecConfig(type: "ipfs", params: ["CID": .string(cid)]), target: "/" + destination.lastPathComponent),
                    root: destination.deletingLastPathComponent())
            }
        }
        var environment: [String: String] = [:]
        environment["BACALHAU_JOB_ID"] = job.id
        environment["BACALHAU_JOB_TYPE"] = job.type
        environment["BACALHAU_EXECUTION_ID"] = execution.id
        environment["BACALHAU_PARTITION_INDEX"] = String(execution.partitionIndex)
        environment["BACALHAU_PARTITION_COUNT"] = String(job.partitionCount)
        environment["COD_JOB_ID"] = job.id
        environment["COD_EXECUTION_ID"] = execution.id
        if let spawn {
            environment["COD_API"] = spawn.apiURL
            environment["COD_API_KEY"] = spawn.apiKey
            environment["COD_SPAWN_DIR"] = Spawning.guestPath
        }
        let stdoutURL = directory.appendingPathComponent("stdout")
        let stderrURL = directory.appendingPathComponent("stderr")
        _ = fm.createFile(atPath: stdoutURL.path, contents: nil)
        _ = fm.createFile(atPath: stderrURL.path, contents: nil)
        // Nil for daemons and services that set no timeout: they run until stopped.
        let timeout = task.timeouts.executionDeadline(jobType: job.jobType)
        let context = EngineContext(
            execution: execution, job: job, directory: directory, root: root, inputs: inputMounts, results: resultMounts,
            taskEnvironment: task.env, systemEnvironment: environment, stdout: stdoutURL, stderr: stderrURL, meter: meter)

        // The deadline stops whatever the engine runs; the engine then reports how it ended.
        let timedOut = TimeoutFlag()
        let stopSwitch = self.stopSwitch
        let watchdog = DispatchWorkItem {
            timedOut.value = true
            stopSwitch.stop()
        }
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(Int(min(timeout, Int64(Int32.max)))), execute: watchdog)
        }
        defer { watchdog.cancel() }
        guard let engine = engines.engine(named: engineType) else {
            throw CodError(.executionFailed, "engine \(engineType) is not available on this node")
        }
        let watcher = spawnFolder.map { folder in Task { await folder.watch() } }
        defer { watcher?.cancel() }
        let status = try await engine.run(context, stop: stopSwitch)
        watchdog.cancel()
        watcher?.cancel()

        return try end(status, timedOut: timedOut.value ? timeout ?? 0 : nil, stdout: stdoutURL, stderr: stderrURL, results: results)
    }

    /// How the run ended, from the engine's status: with the first 2 KB of each stream for the
    /// execution record (the full logs stay in the result; only that much is read).
    private func end(_ status: EngineStatus, timedOut: Int64?, stdout stdoutURL: URL, stderr stderrURL: URL, results: URL) throws -> ExecutionEnd {
        let (stdout, stdoutTruncated) = Self.head(of: stdoutURL)
        let (stderr, stderrTruncated) = Self.head(of: stderrURL)
        var output = RunCommandResult(
            stdout: stdout, stdoutTruncated: stdoutTruncated, stderr: stderr, stderrTruncated: stderrTruncated, exitCode: 0)
        if let reason = wasCancelled { return .cancelled(reason) }
        if let timedOut {
            output.exitCode = -1
            output.errorMsg = "execution timed out after \(timedOut)s (Timeouts.ExecutionTimeout)"
            return .failed(message: output.errorMsg, failure: ExecutionFailure(.timeout, retryable: false), output: output)
        }
        switch status {
        case .exited(let code):
            output.exitCode = Int(code)
            let bundle = try makeBundle(stdout: stdoutURL, stderr: stderrURL, exitCode: code, results: results)
            return .completed(output, published: bundle)
        case .failed(let message, let failure, let exitCode):
            output.exitCode = exitCode ?? -1
            output.errorMsg = message
            return .failed(message: message, failure: failure, output: output)
        }
    }

    /// Lays out the inputs at their targets inside the execution's root; container and
    /// sandbox engines mount each target read-only.
    private func prepareInputs(root: URL) async throws -> [Mount] {
        let task = job.task
        var inputMounts: [Mount] = []
        for input in task.inputSources {
            if input.source.normalizedType == "ipfs" {
                let readOnly = engines.engine(named: task.engine.normalizedType)?.mountsInputsReadOnly ?? false
                let stats = try await content.materialize(input, root: root, sources: contentSources, readOnly: readOnly)
                lock.withLock { inputStats = inputStats + stats }
            } else {
                try InputPreparer.prepare(input, root: root)
            }
            if let target = GuestPath.clean(input.target), target != "/" {
                inputMounts.append(Mount(host: root.appendingPathComponent(String(target.dropFirst())), guest: target))
            }
        }
        // Engines hand mount sources to bwrap or the container runtime, which follow links:
        // each source is resolved here and must still lie inside this execution's root.
        return try inputMounts.map { mount in
            guard let resolved = PhysicalPath.resolvedInside(mount.host, folder: root) else {
                throw CodError(.executionFailed, "input \(mount.guest) resolves outside the execution's folder; refusing to mount it")
            }
            return Mount(host: URL(fileURLWithPath: resolved), guest: mount.guest)
        }
    }

    /// Each result path is a writable folder, visible at its Path and at /<Name>.
    private func prepareResults(_ results: URL) throws -> [Mount] {
        let fm = FileManager.default
        var resultMounts: [Mount] = []
        for result in job.task.resultPaths {
            guard ConfinedTree.isPlainName(result.name) else {
                throw CodError(.executionFailed, "result path name \(result.name) is not a plain folder name")
            }
            let host = results.appendingPathComponent(result.name)
            try fm.createDirectory(at: host, withIntermediateDirectories: true)
            let guest = GuestPath.clean(result.path) ?? "/" + result.name
            for path in Set([guest, "/" + result.name]).sorted() {
                resultMounts.append(Mount(host: host, guest: path))
            }
        }
        return resultMounts
    }

    /// Packs Bacalhau's result layout: stdout, stderr, exitCode, one folder per ResultPath; as
    /// a UnixFS DAG (CIDv1, raw leaves) for `ipfs`, or a tarball for `local`.
    private func makeBundle(stdout: URL, stderr: URL, exitCode: Int32, results: URL) throws -> PublishedBundle? {
        let publisher = job.task.publisher.normalizedType
        guard publisher != "noop" else { return nil }
        let fm = FileManager.default
        let bundle = directory.appendingPathComponent("bundle")
        try fm.createDirectory(at: bundle, withIntermediateDirectories: true)
        try fm.copyItem(at: stdout, to: bundle.appendingPathComponent("stdout"))
        try fm.copyItem(at: stderr, to: bundle.appendingPathComponent("stderr"))
        try String(exitCode).write(to: bundle.appendingPathComponent("exitCode"), atomically: true, encoding: .utf8)
        for result in job.task.resultPaths {
            let source = results.appendingPathComponent(result.name)
            try Self.sanitize(source)
            try fm.moveItem(at: source, to: bundle.appendingPathComponent(result.name))
        }
        try misbehaviour?.apply(toBundle: bundle, resultNames: job.task.resultPaths.map(\.name))
        if publisher == "ipfs" {
            let store = content.store
            var importer = DiskImporter(options: .cidV1, includeHidden: true, sink: store.put)
            let root = try importer.add(bundle)
            let car = directory.appendingPathComponent("result.car")
            _ = FileManager.default.createFile(atPath: car.path, contents: nil)
            let handle = try FileHandle(forWritingTo: car)
            defer { try? handle.close() }
            var written: UInt64 = 0
            try CARTransfer.export(root.cid, from: store) {
                written += UInt64($0.count)
                try handle.write(contentsOf: Data($0))
            }
            lock.withLock { publishedBytes = written }
            return .dag(cid: root.cid, car: car)
        }
        let archive = try Gzip.compress(try Tar.archive(directory: bundle))
        let file = directory.appendingPathComponent("result.tar.gz")
        try Data(archive).write(to: file)
        lock.withLock { publishedBytes = UInt64(archive.count) }
        return .tarball(file)
    }

    /// Makes a job's output tree safe to publish: set-id and sticky bits are cleared, and
    /// anything but files, folders and symlinks (FIFOs, sockets, devices) fails the run with
    /// its name, since reading one would block or read the host. Links are not followed.
    static func sanitize(_ folder: URL) throws {
        var info = stat()
        guard lstat(folder.path, &info) == 0 else { return }
        let type = info.st_mode & S_IFMT
        if type == S_IFLNK { return }
        guard type == S_IFREG || type == S_IFDIR else {
            throw CodError(
                .executionFailed,
                "the job left \(folder.lastPathComponent), a FIFO, socket or device, in its outputs; results may hold only files, folders and symlinks")
        }
        if info.st_mode & 0o7000 != 0 { _ = chmod(folder.path, info.st_mode & 0o777) }
        if type == S_IFDIR {
            for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
                try sanitize(folder.appendingPathComponent(name))
            }
        }
    }

    /// The first `RunCommandResult.summaryLimit` bytes of a log, and whether there was more.
    static func head(of file: URL) -> (String, Bool) {
        guard let handle = try? FileHandle(forReadingFrom: file) else { return ("", false) }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: RunCommandResult.summaryLimit + 1)) ?? Data()
        return (String(decoding: data.prefix(RunCommandResult.summaryLimit), as: UTF8.self), data.count > RunCommandResult.summaryLimit)
    }

    static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).hexString
    }
}

final class TimeoutFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool {
        get { lock.withLock { flag } }
        set { lock.withLock { flag = newValue } }
    }
}

/// Materialises input sources inside an execution's root folder.
enum InputPreparer {
    /// The most bytes an inline gzip input may expand to (a gzip bomb stops here).
    static let maxExpandedInlineBytes = 256 << 20

    static func prepare(_ input: InputSource, root: URL) throws {
        guard let target = GuestPath.clean(input.target), target != "/" else {
            throw CodError(.executionFailed, "input target \(input.target) is invalid")
        }
        let destination = root.appendingPathComponent(String(target.dropFirst()))
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        switch input.source.normalizedType {
        case "inline":
            let url = input.source.params["URL"]?.stringValue ?? ""
            let bytes = try DataURL.decode(url)
            var tarball: [UInt8]?
            if Gzip.isGzip(bytes) {
                do {
                    tarball = try Gzip.decompress(bytes, maxSize: maxExpandedInlineBytes)
                } catch {
                    throw CodError(
                        .executionFailed,
                        "inline input for \(input.target) does not decompress to at most \(maxExpandedInlineBytes >> 20) MiB; put large data in the content store (cod data add)")
                }
            }
            var entries: [Tar.Entry] = []
            if let tar = tarball, Tar.looksLikeTar(tar) {
                do {
                    entries = try Tar.entries(tar)
                } catch {
                    throw CodError(.executionFailed, "inline input for \(input.target) is a tarball Cod refuses to unpack: \(error)")
                }
            }
            if let tar = tarball, !entries.isEmpty {
                // Bacalhau stores directories and larger files as gzip tarballs.
                let staging = root.deletingLastPathComponent().appendingPathComponent("staging-\(UUID().uuidString)")
                try Tar.extract(tar, into: staging)
                let items = try FileManager.default.contentsOfDirectory(atPath: staging.path)
                // A tarball of a single file becomes that file at the target.
                if items.count == 1, !isDirectory(staging.appendingPathComponent(items[0])), entries.count == 1 {
                    try FileManager.default.moveItem(at: staging.appendingPathComponent(items[0]), to: destination)
                } else {
                    try FileManager.default.moveItem(at: staging, to: destination)
                }
                try? FileManager.default.removeItem(at: staging)
            } else {
                try Data(bytes).write(to: destination)
            }
        default:
            throw CodError(.executionFailed, "input type \(input.source.type) is not available on this node")
        }
    }

    static func isDirectory(_ url: URL) -> Bool {
        var flag: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &flag) && flag.boolValue
    }
}

/// RFC 2397 `data:` URLs.
public enum DataURL {
    public static func decode(_ url: String) throws -> [UInt8] {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else {
            throw CodError(.invalidJob, "inline input is not a data: URL")
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        let payload = String(url[url.index(after: comma)...])
        if header.hasSuffix(";base64") {
            guard let data = Data(base64Encoded: payload, options: .ignoreUnknownCharacters) else {
                throw CodError(.invalidJob, "inline input's base64 payload is corrupt")
            }
            return Array(data)
        }
        guard let decoded = payload.removingPercentEncoding else {
            throw CodError(.invalidJob, "inline input's percent-encoding is corrupt")
        }
        return Array(decoded.utf8)
    }

    public static func encode(_ bytes: [UInt8], mediaType: String) -> String {
        "data:\(mediaType);base64," + Data(bytes).base64EncodedString()
    }
}
