#if canImport(Glibc)
import Glibc
#endif
import APIClient
import Foundation
import JobSpec
import Models
import SafeFS
import Wire

/// The spawn folder of an execution that may start children, `/cod/spawn` in its sandbox: the
/// job writes `<name>.json`, a job spec; its node submits it as a child with the execution's
/// key (the job needs neither network nor credentials of its own, so this works in WASM and in
/// a sandbox without network) and keeps `<name>.status` up to date as JSON: `Name`, `JobID`,
/// `State`, `Message`, `ResultCIDs`, and once the child completed, `ResultPath`: its result
/// (stdout, stderr, exitCode and its result folders), copied in as `<name>.result`.
///
/// Everything in the folder is the job's: a spec is read only if it is a regular file (never
/// through a link) of at most 1 MiB, and a status is written to a new file that is then renamed
/// over the name, so no link the job leaves there is ever written through.
final class SpawnFolder: Sendable {
    let folder: URL
    /// The parent: its children are read in one listing per pass.
    let jobID: String
    let client: CodClient
    /// Told whether any child is unfinished: while one is, the parent is taken to wait on it,
    /// and its CPU is lent to other work.
    let waiting: @Sendable (Bool) async -> Void
    /// Writes a result DAG at a path on this node (from its store, peers or the orchestrator).
    let fetch: @Sendable (String, URL) async throws -> Void

    init(
        folder: URL, jobID: String, client: CodClient, waiting: @escaping @Sendable (Bool) async -> Void,
        fetch: @escaping @Sendable (String, URL) async throws -> Void
    ) {
        self.folder = folder
        self.jobID = jobID
        self.client = client
        self.waiting = waiting
        self.fetch = fetch
    }

    static let maxSpecBytes = 1 << 20
    /// The most specs one execution may leave (its parent's MaxJobs refuses children before).
    static let maxEntries = 10_000

    /// What the node knows of one spec.
    struct Child: Codable, Sendable, Equatable {
        var name: String
        var jobID: String?
        var state: String
        var message: String
        var resultCIDs: [String]?
        var resultPath: String?
        /// Passes the spec did not parse in (a writer should write `<name>.json.tmp` and
        /// rename it; one that does not gets a second).
        var unreadablePasses = 0

        enum CodingKeys: String, CodingKey {
            case name = "Name", jobID = "JobID", state = "State", message = "Message", resultCIDs = "ResultCIDs", resultPath = "ResultPath"
        }

        var isFinal: Bool { ["Completed", "Failed", "Stopped", "Refused"].contains(state) }
    }

    /// Watches the folder until the task is cancelled (the execution ended).
    func watch() async {
        var children: [String: Child] = [:]
        var lastWaiting = false
        while !Task.isCancelled {
            for name in specNames() where children[name] == nil || children[name]?.state == "Waiting" {
                let child = await submit(name, previous: children[name])
                guard child != children[name] else { continue }
                children[name] = child
                write(child)
            }
            await refresh(&children)
            let nowWaiting = children.values.contains { $0.jobID != nil && !$0.isFinal }
            if nowWaiting != lastWaiting {
                lastWaiting = nowWaiting
                await waiting(nowWaiting)
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        if lastWaiting { await waiting(false) }
    }

    /// The names of the specs in the folder (`<name>.json`, plain names), in order.
    func specNames() -> [String] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return entries.prefix(Self.maxEntries).compactMap { entry -> String? in
            guard entry.hasSuffix(".json"), !entry.hasPrefix(".") else { return nil }
            let name = String(entry.dropLast(5))
            return ConfinedTree.isPlainName(name) && name.utf8.count <= 100 ? name : nil
        }.sorted()
    }

    /// Reads a spec without following links; a failure with the reason while it does not
    /// parse (it may still be being written).
    func read(_ name: String) -> Result<Job, CodError> {
        let fd = open(folder.appendingPathComponent(name + ".json").path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .failure(CodError(.badRequest, "\(name).json cannot be opened (a link is not followed)")) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var status = stat()
        guard fstat(fd, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            return .failure(CodError(.badRequest, "\(name).json is not a regular file"))
        }
        guard status.st_size <= Self.maxSpecBytes else {
            return .failure(CodError(.badRequest, "\(name).json is \(status.st_size) bytes; a spec may be at most \(Self.maxSpecBytes)"))
        }
        let data = (try? handle.read(upToCount: Self.maxSpecBytes)) ?? Data()
        do {
            return .success(try JobSpecParser.parse(String(decoding: data, as: UTF8.self)))
        } catch let error as CodError {
            return .failure(error)
        } catch {
            return .failure(CodError(.badRequest, "\(name).json is not a job spec: \(error)"))
        }
    }

    /// Submits one spec as a child. A spec that does not parse is taken to be still being
    /// written for a second, then refused; a child over `MaxConcurrent` waits its turn.
    func submit(_ name: String, previous: Child?) async -> Child {
        var job: Job
        switch read(name) {
        case .failure(let error):
            let passes = (previous?.unreadablePasses ?? 0) + 1
            guard passes > 5 else {
                var waiting = Child(name: name, state: "Waiting", message: "cannot be read yet: \(error.message)")
                waiting.unreadablePasses = passes
                return waiting
            }
            return Child(name: name, state: "Refused", message: error.message)
        case .success(let parsed):
            job = parsed
        }
        if job.name.isEmpty { job.name = name }
        do {
            let response = try await client.submit(job)
            return Child(name: name, jobID: response.jobID, state: "Pending", message: "")
        } catch let error as CodError where error.code == .conflict && error.message.hasPrefix("Children.MaxConcurrent") {
            return Child(name: name, state: "Waiting", message: error.message)
        } catch let error as CodError {
            return Child(name: name, state: "Refused", message: error.message + (error.hint.map { " (\($0))" } ?? ""))
        } catch {
            return Child(name: name, state: "Waiting", message: "the orchestrator did not answer: \(error)")
        }
    }

    /// Brings the unfinished children up to date from one listing of the parent's children,
    /// writing the status of each that changed. A completed child counts as done once its
    /// result CIDs are known (and its result copied in); until then it is asked again.
    func refresh(_ children: inout [String: Child]) async {
        guard children.values.contains(where: { $0.jobID != nil && !$0.isFinal }), let listed = try? await client.children(jobID)
        else { return }
        let jobs = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for (name, child) in children where !child.isFinal {
            guard let id = child.jobID, let job = jobs[id] else { continue }
            var updated = child
            updated.state = job.state.stateType.rawValue
            updated.message = job.state.message
            if job.state.stateType == .completed {
                guard let results = try? await client.results(id) else { continue }
                let cids = results.compactMap { $0.params["CID"]?.stringValue }
                updated.resultCIDs = cids
                if cids.count == 1 {
                    let destination = folder.appendingPathComponent(child.name + ".result")
                    var existing = stat()
                    // Whatever the job put at that name is left alone (and never written through).
                    if lstat(destination.path, &existing) != 0, (try? await fetch(cids[0], destination)) != nil {
                        updated.resultPath = Spawning.guestPath + "/" + child.name + ".result"
                    } else {
                        updated.message = "the result is not copied in: \(child.name).result exists or could not be written"
                    }
                }
            }
            guard updated != child else { continue }
            children[name] = updated
            write(updated)
        }
    }

    /// Writes `<name>.status` as a new file renamed over the name.
    func write(_ child: Child) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard var data = try? encoder.encode(child) else { return }
        data.append(0x0A)
        let temporary = folder.appendingPathComponent(".\(child.name).status.\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.close()
            if rename(temporary.path, folder.appendingPathComponent(child.name + ".status").path) != 0 { unlink(temporary.path) }
        } catch {
            unlink(temporary.path)
        }
    }
}
